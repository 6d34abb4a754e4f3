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
    loaded = load_encoder(encoder, probe_shape=(channels, height, width))
    return lambda images: loaded.encode(images).mean


def resolve_dataset(dataset: GroundTruthDataset | str) -> GroundTruthDataset:
    """A dataset object, loading it by registry name when given a string."""
    if isinstance(dataset, str):
        from dbench.datasets import (
            get_dataset,  # lazy: the registry may load data files
        )

        return get_dataset(dataset)
    return dataset


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
    from dbench.codes import encode_plan_requests  # lazy: dbench.metrics stays cheap to import

    codes = encode_plan_requests(data, encode, plan.requests)
    return spec.score(plan, codes, params).scores
