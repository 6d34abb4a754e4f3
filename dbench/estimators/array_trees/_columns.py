"""Every feature sorted once per fit, and what the split search reads off the sorted order.

All arrays live in the namespace of the codes (NumPy, CuPy, torch, array_api_strict) and are laid out
one row per feature, positions along the row in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbench.estimators.boosted_trees._constants import FEATURE_THRESHOLD


@dataclass(frozen=True)
class SortedColumns:
    """The read-only inputs of a fit (``F`` features, ``n`` samples).

    ``gap_end[d, p]`` is the first position whose value exceeds ``values[d, p] + FEATURE_THRESHOLD``
    (float32 arithmetic): a cut after a node's member at ``p`` is one scikit-learn may take exactly
    when the node has no member in ``(p, gap_end[d, p])`` and at least one after ``p``.
    """

    order: Any  # (F, n) int64: the samples in sorted order (ties by sample index)
    values: Any  # (F, n) float32: the sorted values
    x_rows: Any  # (F, n) float32: the features, one row per feature, in sample order
    gap_end: Any  # (F, n) int64: see above
    rank: Any  # (F, n) int64: dense rank of each sorted value among its feature's values


def sort_columns(xp: Any, x32: Any) -> SortedColumns:
    """Sort every feature of ``x32`` ``(n, F)`` float32 once (a stable sort: ties keep sample order)."""
    n_features = x32.shape[1]
    device = getattr(x32, "device", None)
    x_rows = xp.asarray(xp.matrix_transpose(x32), copy=True)
    order = xp.astype(xp.argsort(x_rows, axis=1, stable=True), xp.int64)
    values = xp.take_along_axis(x_rows, order, axis=1)
    bound = values + FEATURE_THRESHOLD.item()  # float32 + Python float stays float32, as the compiled test
    gap_end = xp.stack([xp.searchsorted(values[d, :], bound[d, :], side="right") for d in range(n_features)])
    gap_end = xp.astype(gap_end, xp.int64)
    new_value = xp.astype(values[:, 1:] != values[:, :-1], xp.int64)
    zeros = xp.zeros((n_features, 1), dtype=xp.int64, device=device)
    rank = xp.cumulative_sum(xp.concat([zeros, new_value], axis=1), axis=1)
    return SortedColumns(order, values, x_rows, gap_end, rank)
