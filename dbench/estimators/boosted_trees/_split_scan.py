"""The best cut of a node along each feature: a pruned scan of the sorted lists, four features at a time.

Per feature this finds what scikit-learn's scan finds (the first strictly best cut of the plain
scan, bit for bit) while computing only a few percent of the proxies; docs/dci.md explains the
bound and why it is rigorous.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dbench.estimators._numba import kernel
from dbench.estimators.boosted_trees._constants import BLOCK, FEATURE_THRESHOLD


class ScanBuffers(NamedTuple):
    """Scratch of one scan of four features (a lane owns one)."""

    features: np.ndarray  # (4,) int64: the group's features (the last repeated to fill up)
    proxy: np.ndarray  # (4,) float64: each feature's best proxy (-inf: no valid cut)
    position: np.ndarray  # (4,) int64: list position of that cut (first sample on the right)
    first: np.ndarray  # (4, n_blocks) float64: running sum before each block's first cut
    low: np.ndarray  # (4, n_blocks) float64: smallest running sum in each block, then the block's bound
    high: np.ndarray  # (4, n_blocks) float64: largest running sum in each block


def scan_buffers(n_samples: int) -> ScanBuffers:
    """Buffers for nodes of up to ``n_samples`` samples."""
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    return ScanBuffers(
        np.empty(4, dtype=np.int64),
        np.empty(4),
        np.empty(4, dtype=np.int64),
        np.empty((4, n_blocks)),
        np.empty((4, n_blocks)),
        np.empty((4, n_blocks)),
    )


@kernel()
def block_bound(low, high, total, count, first_left, last_left, inverse):
    """An upper bound of the computed proxy ``S^2/n_l + (T-S)^2/n_r`` over a block of cuts.

    The block's cuts have ``n_l`` in [first_left, last_left] and left sums ``S`` in [low, high];
    the node has ``count`` samples summing to ``total``; ``inverse[m]`` is ``1 / m``. Corner and
    end-point maxima of the two factors of the proxy, with margins of 1e-12 (docs/dci.md).
    """
    mean = total / count
    path_first = first_left * mean
    path_last = last_left * mean
    deviation = max(
        max(abs(low - path_first), abs(low - path_last)), max(abs(high - path_first), abs(high - path_last))
    )
    deviation = deviation * (1.0 + 1e-12) + 1e-12 * abs(total)
    factor_first = count * inverse[np.uint64(first_left)] * inverse[np.uint64(count - first_left)]
    factor_last = count * inverse[np.uint64(last_left)] * inverse[np.uint64(count - last_left)]
    factor = max(factor_first, factor_last)
    return (total * total * inverse[np.uint64(count)] + factor * deviation * deviation) * (1.0 + 1e-12)


@kernel()
def best_cuts4(lists, x, g, start, end, total, inverse, scan):
    """Best proxy and cut position of the four features ``scan.features`` in rows [start, end).

    ``lists[d]`` holds feature ``d``'s samples in sorted order, ``x[d]`` its float32 values and ``g``
    the targets; ``total`` is the node's target sum. Results go to ``scan.proxy`` and
    ``scan.position`` (position 0 and proxy -inf for a feature without a valid cut). Two passes:
    running sums of the four features together (:func:`block_sums4`), then per feature only the
    blocks whose bound can still win (:func:`best_cut_in_blocks`). A feature repeated in
    ``scan.features`` (to fill a group of four) is scanned once.
    """
    n_cuts = end - start - 1
    n_blocks = (n_cuts + BLOCK - 1) // BLOCK
    block_sums4(lists, g, start, end, n_blocks, scan)
    features = scan.features
    for f in range(4):
        if f > 0 and features[f] == features[f - 1]:
            scan.proxy[f] = scan.proxy[f - 1]
            scan.position[f] = scan.position[f - 1]
            continue
        best, best_pos = best_cut_in_blocks(
            lists[features[f]], x[features[f]], g, start, end, total, inverse, n_blocks,
            scan.first[f], scan.low[f], scan.high[f],
        )
        scan.proxy[f] = best
        scan.position[f] = best_pos if best > -np.inf else 0


@kernel()
def block_sums4(lists, g, start, end, n_blocks, scan):
    """Pass 1: the running sums of ``g`` along four features' lists, and per block of ``BLOCK`` cuts
    the sum before it (``scan.first``) and the range of its sums (``scan.low``, ``scan.high``).

    The four features are written out one by one (not a loop over a small array) so that the four
    additions of a step are independent and overlap in the CPU, and the sums stay in registers.
    """
    features = scan.features
    # unsigned positions and samples spare numba's negative-index wraparound code
    row0 = lists[features[0]]
    row1 = lists[features[1]]
    row2 = lists[features[2]]
    row3 = lists[features[3]]
    sum0 = 0.0
    sum1 = 0.0
    sum2 = 0.0
    sum3 = 0.0
    for b in range(n_blocks):
        low = start + b * BLOCK
        high = min(low + BLOCK, end - 1)
        scan.first[0, b] = sum0
        scan.first[1, b] = sum1
        scan.first[2, b] = sum2
        scan.first[3, b] = sum3
        min0 = np.inf
        min1 = np.inf
        min2 = np.inf
        min3 = np.inf
        max0 = -np.inf
        max1 = -np.inf
        max2 = -np.inf
        max3 = -np.inf
        for p in range(np.uint64(low), np.uint64(high)):
            sum0 += g[row0[p]]
            sum1 += g[row1[p]]
            sum2 += g[row2[p]]
            sum3 += g[row3[p]]
            min0 = min(min0, sum0)
            min1 = min(min1, sum1)
            min2 = min(min2, sum2)
            min3 = min(min3, sum3)
            max0 = max(max0, sum0)
            max1 = max(max1, sum1)
            max2 = max(max2, sum2)
            max3 = max(max3, sum3)
        scan.low[0, b] = min0
        scan.low[1, b] = min1
        scan.low[2, b] = min2
        scan.low[3, b] = min3
        scan.high[0, b] = max0
        scan.high[1, b] = max1
        scan.high[2, b] = max2
        scan.high[3, b] = max3


@kernel()
def best_cut_in_blocks(rows, xs, g, start, end, total, inverse, n_blocks, first, low, high):
    """Pass 2 for one feature: its first strictly best cut, as ``(proxy, position)``.

    Every block gets its bound (written over ``low``); the block with the highest bound is
    evaluated first, re-adding its terms from its first sum, then every other block whose bound
    reaches the best proxy found so far. Ties go to the earlier cut. No valid cut: ``(-inf, end)``.
    """
    count = end - start
    bounds = low  # overwritten with the bounds
    top = 0
    for b in range(n_blocks):
        first_cut = start + b * BLOCK
        last_cut = min(first_cut + BLOCK, end - 1)
        bounds[b] = block_bound(low[b], high[b], total, count, first_cut + 1 - start, last_cut - start, inverse)
        if bounds[b] > bounds[top]:
            top = b
    best = -np.inf
    best_pos = end
    for t in range(n_blocks + 1):
        b = top if t == 0 else t - 1
        if (t > 0 and b == top) or bounds[b] < best:
            continue
        first_cut = start + b * BLOCK
        last_cut = min(first_cut + BLOCK, end - 1)
        left = first[b]  # the sum before the block; its terms are re-added in order
        for p in range(first_cut, last_cut):
            q = np.uint64(p)
            left += g[rows[q]]
            n_left = p + 1 - start
            right = total - left
            proxy = left * left * inverse[np.uint64(n_left)] + right * right * inverse[np.uint64(count - n_left)]
            # a cut only between values more than FEATURE_THRESHOLD apart (the negation of
            # sklearn's skip test x[p+1] <= x[p] + threshold: features are finite)
            if (proxy > best or (proxy == best and p + 1 < best_pos)) and (
                xs[rows[q + np.uint64(1)]] > xs[rows[q]] + FEATURE_THRESHOLD
            ):
                best = proxy
                best_pos = p + 1
    return best, best_pos
