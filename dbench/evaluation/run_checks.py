"""Two checks of a run made while it goes, each a one-line warning: is the encoder deterministic, is the run huge.

* :func:`determinism_warning` -- encode a few images of the first batch again (or, when every code came
  from the cache, encode a few and compare with the cache). Codes that differ mean the scores depend
  on the encoder's randomness; they stand (each image is encoded once) and the warning is recorded in
  the result. ``dbench check`` runs the same comparison (:func:`dbench.encoders.check.codes_mismatch`).
* :func:`large_run_warning` -- the cost model (:mod:`dbench.evaluation.cost`) estimates the scoring
  time from the metrics' parameters and the code width; a run far above the defaults is told so up
  front, with the metrics that dominate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dbench._progress import format_seconds
from dbench.codes import CodeTable
from dbench.errors import DbenchError


class DeterminismWarning(UserWarning):
    """The encoder gave different codes for the same images on two calls (the scores stand)."""


class LargeRunWarning(UserWarning):
    """The run is estimated to take far longer than the metrics' defaults would."""


#: Images of the first encoded batch that the determinism probe encodes a second time.
PROBE_IMAGES = 8


def determinism_warning(loaded: Any, table: CodeTable, ds: Any, queries: np.ndarray) -> str | None:
    """Encode a few images again and compare with the codes in ``table``; a one-line warning if they differ.

    The images are the start of the first batch this run encoded, else (every code came from the
    cache) the first requested observations, compared with their cached codes. Nothing is checked
    when every code was given (precomputed).
    """
    from dbench.encoders.check import codes_mismatch
    from dbench.encoders.validation import EncodedBatch

    if table.first_batch is not None:
        indices, against = table.first_batch[:PROBE_IMAGES], "two calls on the same"
    elif table.n_cached and table.cache is not None:
        indices = np.unique(queries)
        indices = indices[table.has(indices)][:PROBE_IMAGES]
        against = f"the codes cached in {table.cache.path} and a new call on the same"
    else:
        return None
    if indices.size == 0:
        return None
    reference = EncodedBatch(table.lookup(indices), table.lookup(indices, part="logvar") if table.has_logvar else None)
    try:
        fresh = loaded.encode(ds.images(indices))
    except DbenchError as exc:
        return f"could not check that encoder {loaded.name!r} is deterministic: {str(exc).split('; ')[0]}"
    problem = codes_mismatch(reference, fresh)
    if problem is None:
        return None
    return (
        f"encoder {loaded.name!r} is not deterministic: {against} {indices.size} images disagree ({problem}); "
        "the scores stand, since each image is encoded once, but depend on the encoder's randomness: make encode "
        "deterministic (model.eval(), no dropout or sampling), or clear a cache made by another version of it"
    )


def large_run_warning(params: Mapping[str, Mapping[str, Any]], n_seeds: int, *, n_latents: int,
                      n_factors: int) -> str | None:
    """A one-line warning when scoring is estimated far above what the metrics' defaults cost."""
    from dbench.evaluation.cost import (
        LARGE_RUN_FACTOR,
        LARGE_RUN_SECONDS,
        estimate_run,
        reference_run,
    )

    estimates = estimate_run(params, n_latents=n_latents, n_factors=n_factors)
    total = n_seeds * sum(estimates.values())
    reference = n_seeds * sum(reference_run(params, n_factors=n_factors).values())
    if total < LARGE_RUN_SECONDS or total < LARGE_RUN_FACTOR * reference:
        return None
    top = sorted(estimates.items(), key=lambda item: -item[1])[:3]
    parts = ", ".join(f"{name} ~{format_seconds(n_seeds * sec)}" for name, sec in top)
    return (
        f"this run is large: scoring {n_latents} latents is estimated at ~{format_seconds(total)} ({parts}), "
        f"against ~{format_seconds(reference)} with the metrics' default sizes on 10 latents; lower sample sizes "
        "(e.g. --set dci.n_train=2000) or the code width to finish sooner"
    )


__all__ = ["PROBE_IMAGES", "DeterminismWarning", "LargeRunWarning", "determinism_warning", "large_run_warning"]
