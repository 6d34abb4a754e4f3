"""Plumbing shared by the sampling-level metrics (Higgins beta-VAE score, FactorVAE score).

These metrics intervene on factors, so they need a dataset and an encoder rather than a fixed table
of codes. This module holds what they share and nothing metric-specific: parameter checks, the check
that the codes handed to ``score`` match the plan, and the standalone runner (dataset name or object,
any encoder, one seed -> plan, encode, score).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from array_api_compat import array_namespace

from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._validation import check_codes
from dbench.metrics.spec import MetricSpec, Plan


def check_int_param(params: Mapping[str, Any], name: str, minimum: int) -> int:
    """``params[name]`` as an int ``>= minimum``; otherwise a ValueError naming the parameter."""
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def check_nonnegative_param(params: Mapping[str, Any], name: str) -> float:
    """``params[name]`` as a finite float ``>= 0``; otherwise a ValueError naming the parameter."""
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    if not math.isfinite(float(value)) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value}")
    return float(value)


def check_dataset_factors(dataset: GroundTruthDataset) -> int:
    """Number of factors of ``dataset``; a ValueError if it is not a usable ground-truth dataset."""
    if not isinstance(dataset, GroundTruthDataset):
        raise ValueError(
            f"dataset must be a GroundTruthDataset or a dataset name; got {type(dataset).__name__}"
        )
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(
            f"dataset {dataset.name!r} must have at least one factor, each with >= 1 value; got {sizes}"
        )
    return len(sizes)


def plan_codes(plan: Plan, codes: Mapping[str, Any], keys: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """Check ``codes[key]`` has shape ``plan.requests[key].shape + (D,)`` with one D and finite values.

    Returns the common array namespace and the arrays, cast to a real floating dtype (integer codes are
    promoted to float64 so variances and means are defined in every namespace).
    """
    missing = [key for key in keys if key not in codes]
    if missing:
        raise ValueError(f"codes is missing the planned request(s) {missing}; pass the codes of every plan.requests key")
    xp = array_namespace(*(codes[key] for key in keys))
    n_latents, first_key = None, keys[0]
    checked = {}
    for key in keys:
        array = codes[key]
        expected = tuple(plan.requests[key].shape)
        if tuple(array.shape[:-1]) != expected or array.ndim != len(expected) + 1:
            raise ValueError(
                f"codes[{key!r}] must have shape {expected} + (n_latents,); got {tuple(array.shape)}"
            )
        n_latents = array.shape[-1] if n_latents is None else n_latents
        if array.shape[-1] != n_latents:
            raise ValueError(
                f"codes[{key!r}] has {array.shape[-1]} latents but codes[{first_key!r}] has {n_latents}; "
                "every request must be encoded by the same encoder"
            )
        check_codes(xp.reshape(array, (-1, array.shape[-1])), name=f"codes[{key!r}]")
        if not xp.isdtype(array.dtype, "real floating"):
            array = xp.astype(array, xp.float64)
        checked[key] = array
    return xp, checked


def encode_function(encoder: Any, dataset: GroundTruthDataset) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``images -> (n, D) NumPy codes``: the posterior mean, which is dlib's representation."""
    from dbench.encoders import load_encoder  # lazy: loading may import torch

    loaded = load_encoder(encoder, probe_shape=tuple(dataset.observation_shape))
    return lambda images: loaded.encode(images).mean


def resolve_dataset(dataset: GroundTruthDataset | str) -> GroundTruthDataset:
    """A dataset object, loading it by registry name when given a string."""
    if isinstance(dataset, str):
        from dbench.datasets import get_dataset  # lazy: the registry may load data files

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
    return spec.score(plan, codes, params)
