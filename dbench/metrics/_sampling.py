"""The standalone runner of the sampling-level metrics (Higgins beta-VAE score, FactorVAE score).

These metrics intervene on factors, so their public functions take a dataset and an encoder rather
than a table of codes: dataset name or object, any encoder, one seed -> plan, encode, score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._plans import check_dataset_factors
from dbench.metrics._spec import MetricSpec


def encode_function(encoder: Any, dataset: GroundTruthDataset) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``images -> (n, D) NumPy codes``: the posterior mean, which is dlib's representation."""
    from dbench.encoders import load_encoder  # lazy: loading may import torch

    channels, height, width = (int(size) for size in dataset.observation_shape)
    loaded = load_encoder(encoder, representation="mean", probe_shape=(channels, height, width))
    return lambda images: loaded.encode(images).mean


def resolve_dataset(dataset: GroundTruthDataset | str) -> GroundTruthDataset:
    """A dataset object, loading it by registry name when given a string."""
    if isinstance(dataset, str):
        from dbench.datasets import (
            get_dataset,  # lazy: the registry may load data files
        )

        return get_dataset(dataset)
    return dataset


def _encode_requests(
    dataset: GroundTruthDataset, encode: Callable[[np.ndarray], np.ndarray], requests: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Codes of every planned request, each unique observation encoded once.

    The one import of this package that points upward (into the code table of the evaluation
    layer); it is lazy so ``dbench.metrics`` never imports the evaluation package at module load.
    """
    from dbench.evaluation.codes import encode_plan_requests

    return encode_plan_requests(dataset, encode, requests)


def run_standalone(
    spec: MetricSpec, dataset: GroundTruthDataset | str, encoder: Any, seed: Any, overrides: Mapping[str, Any]
) -> dict[str, float]:
    """Plan with ``np.random.default_rng(seed)``, encode every planned observation once, score."""
    if seed is None:
        raise ValueError("seed must be given (an int) so the score is reproducible")
    params = spec.resolve(overrides)
    data = resolve_dataset(dataset)
    check_dataset_factors(data)  # before loading the encoder, which reads the observation shape
    encode = encode_function(encoder, data)
    plan = spec.plan(data, np.random.default_rng(seed), params)
    return spec.score(plan, _encode_requests(data, encode, plan.requests), params).scores
