"""A tiny synthetic ground-truth dataset and table encoders for the sampling-level metric tests.

Each image is a 1x1xK "picture" whose pixel j is factor j rescaled to [0, 1], so an encoder can read
the exact factors back and return any fixed code table row for that observation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from dbench.datasets.base import factors_to_indices, indices_to_factors, num_observations


class GridDataset:
    """A full factor grid whose images spell out the factor values (implements GroundTruthDataset)."""

    def __init__(self, factor_sizes: tuple[int, ...] = (3, 4, 5)) -> None:
        self.name = "grid"
        self.factor_sizes = tuple(factor_sizes)
        self.factor_names = tuple(f"f{j}" for j in range(len(factor_sizes)))
        self.observation_shape = (1, 1, len(factor_sizes))

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, dtype=np.float64)

    def images(self, indices: np.ndarray) -> np.ndarray:
        factors = indices_to_factors(self, indices).astype(np.float32)
        scale = np.maximum(np.asarray(self.factor_sizes, dtype=np.float32) - 1, 1)
        return (factors / scale).reshape(-1, *self.observation_shape)


class TableEncoder:
    """Encoder returning ``table[flat index]`` for each image of a :class:`GridDataset`."""

    def __init__(self, dataset: GridDataset, table: np.ndarray) -> None:
        self.dataset, self.table = dataset, np.asarray(table)

    def encode(self, images: np.ndarray) -> np.ndarray:
        scale = np.maximum(np.asarray(self.dataset.factor_sizes) - 1, 1)
        factors = np.rint(images.reshape(images.shape[0], -1) * scale).astype(np.int64)
        return self.table[factors_to_indices(self.dataset, factors)]


def factor_table(dataset: GridDataset) -> np.ndarray:
    """Codes equal to the ground-truth factor indices, float64 ``(n_observations, n_factors)``."""
    return indices_to_factors(dataset, np.arange(num_observations(dataset))).astype(np.float64)


def noise_table(dataset: GridDataset, n_latents: int, seed: int = 0) -> np.ndarray:
    """Codes independent of the factors: one fixed Gaussian row per observation."""
    return np.random.default_rng(seed).normal(size=(num_observations(dataset), n_latents))


def mixed_table(dataset: GridDataset, noise_scale: float, seed: int = 0) -> np.ndarray:
    """Ground-truth factors (standardised) plus fixed Gaussian noise: scores strictly between chance and 1."""
    factors = factor_table(dataset)
    factors = (factors - factors.mean(0)) / factors.std(0)
    return factors + noise_scale * np.random.default_rng(seed).normal(size=factors.shape)


def plan_codes_from_table(plan: Any, table: np.ndarray) -> dict[str, np.ndarray]:
    """The codes the pipeline would hand ``score``: ``table`` rows at every planned index."""
    return {key: table[np.asarray(idx)] for key, idx in plan.requests.items()}


def iid_noise_codes(plan: Any, n_latents: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Codes drawn fresh for every planned position: independent of the factors *and* of the observation
    (on a tiny grid the same observation recurs, which table-noise codes would leak)."""
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=np.shape(idx) + (n_latents,)) for key, idx in plan.requests.items()}


BACKENDS = ("numpy", "array_api_strict", "torch")


def codes_in_backend(codes: dict[str, np.ndarray], backend: str) -> dict[str, Any]:
    """The same codes as arrays of ``backend`` (skipping the test when it is not installed)."""
    import pytest

    if backend == "numpy":
        return codes
    module = pytest.importorskip(backend)
    return {key: module.asarray(value) for key, value in codes.items()}


# --- parity with disentanglement_lib, from the frozen fixtures tests/fixtures/dlib_golden_*.json ---
FIXTURES = Path(__file__).parent / "fixtures"


def dlib_golden(metric: str) -> dict[str, Any]:
    """The frozen dlib numbers for ``metric`` (see the fixture's ``produced_by``)."""
    return json.loads((FIXTURES / f"dlib_golden_{metric}.json").read_text())


def score_exact_case(spec: Any, case: int) -> tuple[dict[str, float], dict[str, float]]:
    """dbench's score on the plan dlib replayed for fixture case ``case``, and dlib's numbers there."""
    golden = dlib_golden(spec.name)
    config, row = golden["exact_config"], golden["exact"][case]
    dataset = GridDataset(tuple(config["factor_sizes"]))
    table = mixed_table(dataset, row["noise_scale"], seed=config["table_seed"])
    table = np.concatenate([table, config["collapsed_scale"] * table[:, :1]], axis=1)  # a collapsed latent
    params = spec.resolve(config["params"])
    plan = spec.plan(dataset, np.random.default_rng(row["seed"]), params)
    return spec.score(plan, plan_codes_from_table(plan, table), params).scores, row["dlib"]


def distance_from_dlib_in_standard_errors(metric: Any, name: str, n_seeds: int = 5) -> float:
    """|mean dbench eval accuracy over seeds - dlib's mean| in standard errors of the difference.

    ``metric(dataset, encoder, seed=..., **params)`` is the standalone function; dlib's numbers come
    from its own RandomState sampling, so agreement can only be in distribution.
    """
    golden = dlib_golden(name)["statistical"]
    dataset = GridDataset(tuple(golden["factor_sizes"]))
    encoder = TableEncoder(dataset, mixed_table(dataset, golden["noise_scale"], seed=golden["table_seed"]))
    ours = [metric(dataset, encoder, seed=s, **golden["params"])["eval_accuracy"] for s in range(n_seeds)]
    dlib = golden["dlib_eval_accuracy"]
    standard_error = math.sqrt(dlib["sd"] ** 2 / dlib["n"] + np.var(ours, ddof=1) / n_seeds)
    return abs(float(np.mean(ours)) - dlib["mean"]) / standard_error
