"""Histogram discretisation, discrete mutual information and entropy on the array API.

These are the building blocks disentanglement_lib (Locatello et al. 2019) shares between MIG,
modularity, IRS and the unsupervised scores (``evaluation/metrics/utils.py``):

* :func:`histogram_discretize` reproduces ``_histogram_discretize``: per column, ``n_bins`` equal-width
  bins over ``[min, max]`` with the edges of ``np.histogram`` and the bin lookup of ``np.digitize``
  (``edges[i] <= x < edges[i + 1]``; the maximum falls in the last bin). A constant column has the
  edges ``np.histogram`` gives it (``[c - 0.5, c + 0.5]``), so it becomes one label.
* :func:`mutual_info_matrix` is ``sklearn.metrics.mutual_info_score`` (plug-in estimate, nats) for
  every pair of columns of two label arrays at once, from one contingency table.
* :func:`discrete_entropy` is ``mutual_info_score(y, y)``, the plug-in entropy in nats.
* :func:`mutual_information_codes_factors` is dlib's ``discrete_mutual_info`` and
  ``discrete_entropy`` of binned codes against factors (MIG, modularity).

Labels are handled as *level arrays*: integer labels ``(n, D)`` with column ``d`` taking values
``0 .. levels[d] - 1`` (see :func:`compact_labels`). Everything is exact integer counting, so every
backend gives the same numbers up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import (
    array_namespace,
    is_cupy_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)
from array_api_compat import device as device_of

# Upper bound on the one-hot block materialised at once by the generic (matmul) counting path.
_ONE_HOT_CHUNK_ELEMENTS = 1 << 23
# Upper bound on the contingency-table entries held at once by mutual_info_matrix.
_TABLE_ELEMENTS = 1 << 21


def histogram_discretize(values: Any, n_bins: int) -> Any:
    """Bin each column of ``values`` ``(n, D)`` into ``n_bins`` equal-width bins; int64 labels in ``[0, n_bins)``.

    Bit-for-bit the bins of disentanglement_lib's ``_histogram_discretize``: the edges are
    ``min + i * (max - min) / n_bins`` computed in the input's floating dtype (as ``np.linspace``
    inside ``np.histogram`` does), and a value ``x`` goes to the last edge ``<= x`` (``np.digitize``
    with the top edge dropped). dlib's labels are these plus one; only the partition matters.
    """
    xp = array_namespace(values)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    n_bins = int(n_bins)
    if not xp.isdtype(values.dtype, "real floating"):
        # np.histogram promotes integer data to float64 edges; comparing in float64 is the same.
        values = xp.astype(values, xp.float64)
    dtype = values.dtype
    low = xp.min(values, axis=0)
    high = xp.max(values, axis=0)
    constant = low == high
    # np.histogram widens an empty range to [c - 0.5, c + 0.5].
    low = xp.where(constant, low - 0.5, low)
    high = xp.where(constant, high + 0.5, high)
    step = (high - low) / n_bins

    def edge(i: Any) -> Any:
        # edges[i] = i * step + low: np.linspace's arithmetic, so the same float bit for bit.
        return xp.astype(i, dtype) * step + low

    # Estimate the bin arithmetically, then settle values within rounding of an edge by comparing
    # with the edges themselves (np.digitize semantics: edges[i] <= x < edges[i + 1]).
    guess = xp.astype(xp.floor((values - low) / step), xp.int64)
    labels = xp.clip(guess, min=0, max=n_bins - 1)
    labels = xp.where((values < edge(labels)) & (labels > 0), labels - 1, labels)
    above = xp.clip(labels + 1, max=n_bins - 1)
    labels = xp.where((values >= edge(above)) & (labels < n_bins - 1), above, labels)
    return labels


def compact_labels(labels: Any) -> tuple[Any, tuple[int, ...]]:
    """Relabel each column of integer ``labels`` ``(n, D)`` to ``0 .. k_d - 1`` (sorted order); return ``(labels, k)``.

    Only the partition a column induces matters for mutual information and entropy, so this
    changes no score; it keeps contingency tables as small as the number of observed values.
    """
    xp = array_namespace(labels)
    columns = []
    levels = []
    for d in range(labels.shape[1]):
        values, inverse = xp.unique_inverse(labels[:, d])
        columns.append(xp.astype(xp.reshape(inverse, (-1,)), xp.int64))
        levels.append(int(values.shape[0]))
    return xp.stack(columns, axis=1), tuple(levels)


def _offsets(levels: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(levels, dtype=np.int64))])


def _native_bincount(xp: Any):
    """The backend's own ``bincount`` where it has one (NumPy, CuPy, torch), else ``None``."""
    if is_numpy_namespace(xp):
        return lambda x, size: np.bincount(x, minlength=size)
    if is_torch_namespace(xp):
        import torch

        return lambda x, size: torch.bincount(x, minlength=size)
    if is_cupy_namespace(xp):
        import cupy

        return lambda x, size: cupy.bincount(x, minlength=size)
    return None


def _one_hot(xp: Any, labels: Any, offsets: np.ndarray) -> Any:
    """Float64 one-hot ``(n, sum(levels))`` of a level array, column ``d`` in its own block."""
    flat = labels + xp.asarray(offsets[:-1], dtype=xp.int64, device=device_of(labels))[None, :]
    width = int(offsets[-1])
    hits = flat[:, :, None] == xp.arange(width, dtype=xp.int64, device=device_of(labels))[None, None, :]
    return xp.astype(xp.any(hits, axis=1), xp.float64)


def joint_counts(
    labels_a: Any, levels_a: Sequence[int], labels_b: Any, levels_b: Sequence[int]
) -> Any:
    """Contingency counts of every column pair: float64 ``(sum(levels_a), sum(levels_b))``.

    Block ``(a, b)`` (rows ``offsets_a[a]:offsets_a[a+1]``, columns likewise) counts the samples with
    ``labels_a[:, a] == i`` and ``labels_b[:, b] == j``. Backends with a ``bincount`` (NumPy, CuPy,
    torch) count directly in ``O(n * D_a * D_b)``; others (array_api_strict) multiply one-hot
    matrices in row chunks. Both give exact integer counts.
    """
    xp = array_namespace(labels_a, labels_b)
    off_a, off_b = _offsets(levels_a), _offsets(levels_b)
    width_b = int(off_b[-1])
    bincount = _native_bincount(xp)
    if bincount is not None:
        shifted_b = labels_b + xp.asarray(off_b[:-1], dtype=xp.int64, device=device_of(labels_b))[None, :]
        blocks = []
        for a in range(labels_a.shape[1]):
            size = levels_a[a] * width_b
            index = xp.reshape(labels_a[:, a : a + 1] * width_b + shifted_b, (-1,))
            blocks.append(xp.reshape(bincount(index, size), (levels_a[a], width_b)))
        return xp.astype(xp.concat(blocks, axis=0), xp.float64)
    n = labels_a.shape[0]
    width = int(off_a[-1]) + width_b
    chunk = max(1, _ONE_HOT_CHUNK_ELEMENTS // max(1, width * max(labels_a.shape[1], labels_b.shape[1])))
    total = None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)  # the standard leaves out-of-bounds slice stops unspecified
        one_hot_a = _one_hot(xp, labels_a[start:stop, :], off_a)
        one_hot_b = _one_hot(xp, labels_b[start:stop, :], off_b)
        part = xp.matmul(xp.matrix_transpose(one_hot_a), one_hot_b)
        total = part if total is None else total + part
    return total


def _segment_sum(xp: Any, x: Any, levels: Sequence[int], axis: int) -> Any:
    """Sum ``x`` over consecutive blocks of sizes ``levels`` along ``axis`` (a level array's columns)."""
    zero_shape = list(x.shape)
    zero_shape[axis] = 1
    zero = xp.zeros(tuple(zero_shape), dtype=x.dtype, device=device_of(x))
    padded = xp.concat([zero, xp.cumulative_sum(x, axis=axis)], axis=axis)
    bounds = _offsets(levels)
    device = device_of(x)
    return xp.take(padded, xp.asarray(bounds[1:], device=device), axis=axis) - xp.take(
        padded, xp.asarray(bounds[:-1], device=device), axis=axis
    )


def mutual_info_matrix(
    labels_a: Any, levels_a: Sequence[int], labels_b: Any, levels_b: Sequence[int]
) -> Any:
    """Discrete mutual information (nats) between every column of ``labels_a`` and of ``labels_b``.

    Entry ``[a, b]`` equals ``sklearn.metrics.mutual_info_score(labels_b[:, b], labels_a[:, a])``:
    ``sum_ij p_ij log(p_ij / (p_i p_j))`` over observed cells, 0 when either column is constant,
    never negative. Returns float64 ``(D_a, D_b)``. Columns of ``labels_a`` are processed in chunks
    so the contingency table in memory stays near ``_TABLE_ELEMENTS`` entries.
    """
    xp = array_namespace(labels_a, labels_b)
    width_b = int(sum(levels_b))
    per_chunk = max(1, _TABLE_ELEMENTS // max(1, width_b * max(levels_a)))
    blocks = []
    for start in range(0, labels_a.shape[1], per_chunk):
        stop = min(labels_a.shape[1], start + per_chunk)
        blocks.append(_mutual_info_block(xp, labels_a[:, start:stop], levels_a[start:stop], labels_b, levels_b))
    return xp.concat(blocks, axis=0)


def _mutual_info_block(xp: Any, labels_a: Any, levels_a: Sequence[int], labels_b: Any, levels_b: Sequence[int]) -> Any:
    n = labels_a.shape[0]
    counts = joint_counts(labels_a, levels_a, labels_b, levels_b)
    # Marginal counts: any block row of the table sums to the marginal of its a-level (likewise b).
    marginal_a = xp.sum(counts[:, : levels_b[0]], axis=1)
    marginal_b = xp.sum(counts[: levels_a[0], :], axis=0)
    observed = counts > 0
    safe = xp.where(observed, counts, xp.ones_like(counts))
    log_n = float(np.log(n))
    log_ratio = xp.log(safe) + log_n - xp.log(xp.where(marginal_a > 0, marginal_a, 1.0))[:, None]
    log_ratio = log_ratio - xp.log(xp.where(marginal_b > 0, marginal_b, 1.0))[None, :]
    # A constant column carries no information: sklearn returns exactly 0 there; so do we.
    informative = (marginal_a < n)[:, None] & (marginal_b < n)[None, :]
    terms = xp.where(observed & informative, counts / n * log_ratio, xp.zeros_like(counts))
    mi = _segment_sum(xp, _segment_sum(xp, terms, levels_a, axis=0), levels_b, axis=1)
    return xp.clip(mi, min=0.0)


def discrete_entropy(labels: Any, levels: Sequence[int]) -> Any:
    """Plug-in entropy (nats) of each column of a level array: float64 ``(D,)``.

    Equal to ``sklearn.metrics.mutual_info_score(y, y)`` (0 for a constant column).
    """
    xp = array_namespace(labels)
    n = labels.shape[0]
    offsets = _offsets(levels)
    bincount = _native_bincount(xp)
    if bincount is not None:
        shifted = labels + xp.asarray(offsets[:-1], dtype=xp.int64, device=device_of(labels))[None, :]
        counts = xp.astype(bincount(xp.reshape(shifted, (-1,)), int(offsets[-1])), xp.float64)
    else:
        counts = xp.sum(_one_hot(xp, labels, offsets), axis=0)
    p = counts / n
    terms = xp.where(counts > 0, -p * xp.log(xp.where(counts > 0, p, 1.0)), xp.zeros_like(p))
    entropy = _segment_sum(xp, terms, levels, axis=0)
    return xp.clip(entropy, min=0.0)


def mutual_information_codes_factors(codes: Any, factors: Any, n_bins: int) -> tuple[Any, Any]:
    """dlib's ``discrete_mutual_info`` and ``discrete_entropy``: ``(MI (D, K), H(factors) (K,))`` in nats."""
    code_labels = histogram_discretize(codes, n_bins)
    factor_labels, factor_levels = compact_labels(factors)
    mi = mutual_info_matrix(code_labels, (n_bins,) * codes.shape[1], factor_labels, factor_levels)
    return mi, discrete_entropy(factor_labels, factor_levels)
