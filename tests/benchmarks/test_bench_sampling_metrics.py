"""Speed of the sampling-level metrics at disentanglement_lib's default sizes, encoding excluded.

``plan`` (drawing every index) and ``score`` (the maths on precomputed codes) are timed separately: the
encode-once pipeline runs the encoder in between. Codes are a fixed 10-latent representation of the
dSprites factor grid (standardised factors mixed with noise) looked up at the planned indices.
Run: ``pytest tests/benchmarks/test_bench_sampling_metrics.py --benchmark-only``.
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.datasets.base import indices_to_factors, num_observations
from dbench.metrics import get_metric


class _DspritesGrid:
    """dSprites' factor grid (sizes only: plan and score never render an image)."""

    name = "dsprites_grid"
    factor_names = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
    factor_sizes = (1, 3, 6, 40, 32, 32)
    observation_shape = (1, 64, 64)

    def factor_values(self, factors):
        return np.asarray(factors, dtype=np.float64)

    def images(self, indices):
        raise AssertionError("the benchmark must not render images")


@pytest.fixture(scope="module")
def dataset():
    return _DspritesGrid()


@pytest.fixture(scope="module")
def code_table(dataset):
    rng = np.random.default_rng(0)
    factors = indices_to_factors(dataset, np.arange(num_observations(dataset))).astype(np.float32)
    factors = (factors - factors.mean(0)) / np.maximum(factors.std(0), 1e-6)
    mixing = rng.normal(size=(factors.shape[1], 10)).astype(np.float32)
    return factors @ mixing + 0.5 * rng.normal(size=(factors.shape[0], 10)).astype(np.float32)


def _codes(plan, table):
    return {key: table[idx] for key, idx in plan.requests.items()}


@pytest.mark.parametrize("name", ["beta_vae", "factor_vae"])
def test_plan_at_default_sizes(benchmark, dataset, name):
    spec = get_metric(name)
    params = spec.resolve()
    plan = benchmark.pedantic(lambda: spec.plan(dataset, np.random.default_rng(0), params), rounds=3, iterations=1)
    assert plan.extra["train_labels"].shape == (params["n_train"],)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["beta_vae", "factor_vae"])
def test_score_at_default_sizes(benchmark, dataset, code_table, name, backend):
    spec = get_metric(name)
    params = spec.resolve()
    plan = spec.plan(dataset, np.random.default_rng(0), params)
    codes = _codes(plan, code_table)
    if backend == "torch":
        torch = pytest.importorskip("torch")
        codes = {key: torch.from_numpy(value) for key, value in codes.items()}
    scores = benchmark.pedantic(lambda: spec.score(plan, codes, params).scores, rounds=3, iterations=1)
    assert 0.0 <= scores["eval_accuracy"] <= 1.0
