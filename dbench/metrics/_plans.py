"""Plans shared by several metrics, and the check that the codes handed to ``score`` match a plan.

* :func:`plan_factor_samples` / :func:`split_codes`: i.i.d. ``(code, factor)`` pairs, the plan of the
  array-level metrics (MIG, SAP, DCI, modularity, IRS, unsupervised scores);
* :func:`plan_codes`: ``codes[key]`` has the planned shape ``plan.requests[key].shape + (D,)``, one
  ``D`` for all, finite values (every ``score`` calls it, directly or through ``split_codes``);
* :func:`check_dataset_factors`: the dataset is a usable ground-truth dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.metrics._spec import Plan
from dbench.metrics._validation import check_codes


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


def plan_factor_samples(dataset: GroundTruthDataset, rng: np.random.Generator, sizes: Mapping[str, int]) -> Plan:
    """Draw i.i.d. factor vectors for each split (in the order given, as dlib draws train then test).

    ``requests[split]`` holds their flat indices and ``extra[split]`` the int64 factor indices.
    """
    requests, extra = {}, {}
    for split, n in sizes.items():
        factors = sample_factors(dataset, int(n), rng)
        requests[split] = factors_to_indices(dataset, factors)
        extra[split] = factors
    return Plan(requests=requests, extra=extra)


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


def split_codes(plan: Plan, codes: Mapping[str, Any], splits: tuple[str, ...]) -> list[tuple[Any, Any]]:
    """``(codes, factors)`` per split, the factors moved into the codes' namespace and device."""
    xp, checked = plan_codes(plan, codes, splits)
    pairs = []
    for split in splits:
        array = checked[split]
        pairs.append((array, xp.asarray(np.asarray(plan.extra[split]), device=device_of(array))))
    return pairs
