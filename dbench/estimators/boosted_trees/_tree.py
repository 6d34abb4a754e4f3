"""One depth-3 squared-error regression tree, grown level by level on samples kept in sorted order.

A node is a range ``[start, end)`` of every feature's sorted list. Growing a node: its sums
(:func:`node_sums`), then either a leaf (:func:`leaf_value`, added to the raw scores) or the best
split over all features (:func:`best_split`), its threshold (:func:`split_threshold`), the
impurity decrease credited to the split feature (:func:`credit_importance`) and the stable
partition of the lists into the two children (:func:`partition`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dbench.estimators._numba import kernel
from dbench.estimators.boosted_trees._constants import (
    EPSILON,
    HEAP_SIZE,
    MAX_DEPTH,
    TIE_TOLERANCE,
)
from dbench.estimators.boosted_trees._split_scan import ScanBuffers, best_cuts4


class SortedFeatures(NamedTuple):
    """The read-only inputs of a fit, one row per feature."""

    order: np.ndarray  # (n_features, n) uint32: the samples in sorted order (ties by index)
    x: np.ndarray  # (n_features, n) float32: the feature values
    ranks: np.ndarray  # (n_features, n) int32: dense rank of each value among its feature's values
    inverse: np.ndarray  # (n + 1,) float64: inverse[m] = 1 / m (inverse[0] = 0)


class HeapTree(NamedTuple):
    """One tree's heap arrays (slot ``j``'s children at ``2j+1``, ``2j+2``), filled while growing."""

    feature: np.ndarray  # (15,) int32: split feature, -1 at a leaf
    threshold: np.ndarray  # (15,) float64: go left where x <= threshold
    value: np.ndarray  # (15,) float64: leaf value (the Newton step, not yet shrunk)


class LaneBuffers(NamedTuple):
    """Scratch of one lane (a thread growing trees one after another)."""

    lists: np.ndarray  # (2, n_features, n) uint32: sorted lists partitioned by node (depth 1 and 3 in [0], 2 in [1])
    go_left: np.ndarray  # (n,) uint8: side of each sample of the node being split
    importance: np.ndarray  # (n_features,) float64: impurity decreases of the tree being grown
    proxy: np.ndarray  # (n_features,) float64: each feature's best proxy in the node (-inf: none)
    position: np.ndarray  # (n_features,) int64: list position of that cut
    scan: ScanBuffers
    softmax: np.ndarray  # (T + 2, GRADIENT_BLOCK) float64: scratch of the softmax gradients


@kernel()
def grow_tree(data, g, h, leaf_scale, lane, tree, raw_column, learning_rate, tie_draws):
    """Grow one tree on targets ``g`` (hessians ``h``), fill ``tree``, add its shrunk leaves to ``raw_column``.

    ``data`` is the fit's :class:`SortedFeatures`, ``lane`` a :class:`LaneBuffers` and ``tree`` a
    :class:`HeapTree`; ``lane.importance`` receives the tree's impurity decreases. ``tie_draws``
    ``(15,)`` holds one uniform draw per heap slot for the random tie rule of :func:`best_split`
    (negative: the deterministic rule). Returns the number of nodes (1 means the tree is a lone leaf).
    """
    n_features, n = data.order.shape
    starts = np.zeros(HEAP_SIZE, dtype=np.int64)
    ends = np.zeros(HEAP_SIZE, dtype=np.int64)
    active = np.zeros(HEAP_SIZE, dtype=np.bool_)
    starts[0] = 0
    ends[0] = n
    active[0] = True
    node_count = 0
    for slot in range(HEAP_SIZE):
        if not active[slot]:
            continue
        node_count += 1
        depth = slot_depth(slot)
        # The root reads the fit's sorted lists; its split writes the partitioned copies to the lane.
        lists = data.order if slot == 0 else lane.lists[(depth - 1) % 2]  # sample at position p of list d: lists[d, p]
        start = starts[slot]
        end = ends[slot]
        count = end - start
        total, sq_total = node_sums(lists[0], g, start, end)
        impurity = node_impurity(total, sq_total, count)
        for d in range(n_features):
            lane.proxy[d] = -np.inf
        best_feature = -1
        best_pos = -1
        best_proxy = -np.inf
        if not (depth >= MAX_DEPTH or count < 2 or impurity <= EPSILON):
            best_feature, best_pos, best_proxy = best_split(lists, data, g, start, end, total, lane, tie_draws[slot])
        if best_feature < 0:
            value = leaf_value(lists[0], g, h, start, end, leaf_scale)
            tree.feature[slot] = -1
            tree.value[slot] = value
            add_to_raw(raw_column, lists[0], start, end, learning_rate * value)
            continue
        tree.feature[slot] = best_feature
        tree.threshold[slot] = split_threshold(data.x[best_feature], lists[best_feature], best_pos)
        left_sum, left_sq = mark_sides(lists[best_feature], g, lane.go_left, start, best_pos, end)
        n_left = best_pos - start
        n_right = end - best_pos
        impurity_left = node_impurity(left_sum, left_sq, n_left)
        impurity_right = node_impurity(total - left_sum, sq_total - left_sq, n_right)
        decrease = (count * impurity - n_left * impurity_left - n_right * impurity_right) / n
        credit_importance(lane.proxy, best_proxy, decrease, lane.importance)
        # Children of a depth-2 node are leaves: they only need their members, so one list is enough.
        n_lists = 1 if depth + 1 >= MAX_DEPTH else n_features
        partition(lists, lane.lists[depth % 2], lane.go_left, start, best_pos, end, n_lists)
        left = 2 * slot + 1
        starts[left] = start
        ends[left] = best_pos
        active[left] = True
        starts[left + 1] = best_pos
        ends[left + 1] = end
        active[left + 1] = True
    return node_count


@kernel()
def slot_depth(slot):
    """Depth of a heap slot (the root is 0)."""
    depth = 0
    j = slot
    while j > 0:
        j = (j - 1) // 2
        depth += 1
    return depth


@kernel()
def node_sums(first_list, g, start, end):
    """Sum and sum of squares of the node's targets, in the order of feature 0's list."""
    total = 0.0
    sq_total = 0.0
    for p in range(start, end):
        gi = g[first_list[p]]
        total += gi
        sq_total += gi * gi
    return total, sq_total


@kernel()
def node_impurity(total, sq_total, count):
    """Squared-error impurity (variance) of ``count`` targets with these sums."""
    return sq_total / count - (total / count) * (total / count)


@kernel()
def best_split(lists, data, g, start, end, total, lane, tie_draw):
    """The node's split ``(feature, position, proxy)``; feature -1 when no feature can be cut.

    Features are scanned in groups of four (:func:`best_cuts4`; the last group repeats its last
    feature to fill up) into ``lane.proxy`` / ``lane.position``. Among features tied with the best
    (within rounding), the split goes

    * with ``tie_draw < 0``, to the one whose cut spans the widest gap in global ranks, then the lowest
      index: a choice that does not depend on the order of the latents nor on monotone rescaling of
      any of them;
    * with ``0 <= tie_draw < 1``, to tied feature ``floor(tie_draw * n_tied)`` in index order: a
      uniformly random one, as scikit-learn's first strictly best feature in its random feature order.
    """
    n_features = lists.shape[0]
    scan = lane.scan
    for d_first in range(0, n_features, 4):
        scan.features[0] = d_first
        for q in range(1, 4):
            scan.features[q] = min(d_first + q, n_features - 1)
        best_cuts4(lists, data.x, g, start, end, total, data.inverse, scan)
        for q in range(4):
            d = scan.features[q]
            # feature constant in this node (sklearn: last <= first + FEATURE_THRESHOLD):
            # no cut of it passes the threshold test, its proxy stayed -inf
            if scan.proxy[q] > -np.inf:
                lane.proxy[d] = scan.proxy[q]
                lane.position[d] = scan.position[q]
    best_proxy = -np.inf
    for d in range(n_features):
        best_proxy = max(best_proxy, lane.proxy[d])
    best_feature = -1
    best_pos = -1
    if tie_draw >= 0.0:
        n_tied = 0
        for d in range(n_features):
            if lane.proxy[d] >= best_proxy * (1.0 - TIE_TOLERANCE) and lane.proxy[d] > -np.inf:
                n_tied += 1
        pick = min(int(tie_draw * n_tied), n_tied - 1)
        for d in range(n_features):
            if lane.proxy[d] >= best_proxy * (1.0 - TIE_TOLERANCE) and lane.proxy[d] > -np.inf:
                if pick == 0:
                    return d, lane.position[d], best_proxy
                pick -= 1
        return best_feature, best_pos, best_proxy
    best_gap = -1
    for d in range(n_features):
        if lane.proxy[d] >= best_proxy * (1.0 - TIE_TOLERANCE) and lane.proxy[d] > -np.inf:
            row = lists[d]
            gap = data.ranks[d, row[lane.position[d]]] - data.ranks[d, row[lane.position[d] - 1]]
            if gap > best_gap:
                best_gap = gap
                best_feature = d
                best_pos = lane.position[d]
    return best_feature, best_pos, best_proxy


@kernel()
def leaf_value(first_list, g, h, start, end, leaf_scale):
    """Newton step ``leaf_scale * sum(g) / sum(h)`` (0 when the hessian sum is below 1e-150)."""
    count = end - start
    numerator = 0.0
    denominator = 0.0
    for p in range(start, end):
        i = first_list[p]
        numerator += g[i]
        denominator += h[i]
    numerator = numerator / count * leaf_scale
    denominator = denominator / count
    return 0.0 if abs(denominator) < 1e-150 else numerator / denominator


@kernel()
def add_to_raw(raw_column, first_list, start, end, step):
    """Add a leaf's shrunk value to the raw scores of its samples."""
    for p in range(start, end):
        raw_column[first_list[p]] += step


@kernel()
def split_threshold(xs, row, position):
    """Threshold at the float64 midpoint of the float32 neighbours of the cut (sklearn's rule)."""
    low = np.float64(xs[row[position - 1]])
    high = np.float64(xs[row[position]])
    threshold = low / 2.0 + high / 2.0
    if threshold == high or threshold == np.inf or threshold == -np.inf:
        threshold = low
    return threshold


@kernel()
def mark_sides(row, g, go_left, start, split, end):
    """Flag every sample of the node left (1) or right (0) of the cut; return the left ``(sum, sum of squares)``."""
    left_sum = 0.0
    left_sq = 0.0
    for p in range(start, split):
        i = row[p]
        go_left[i] = 1
        left_sum += g[i]
        left_sq += g[i] * g[i]
    for p in range(split, end):
        go_left[row[p]] = 0
    return left_sum, left_sq


@kernel()
def credit_importance(proxy, best_proxy, decrease, importance):
    """Share a split's impurity decrease equally among the features whose best cut ties the chosen one.

    Typically every feature separates the two samples of a tiny node identically. scikit-learn gives
    the decrease to whichever it happens to visit first in a random feature order, so equal shares
    are the expectation of its importances over that randomness.
    """
    n_tied = 0
    for d in range(proxy.size):
        if proxy[d] >= best_proxy * (1.0 - TIE_TOLERANCE):
            n_tied += 1
    for d in range(proxy.size):
        if proxy[d] >= best_proxy * (1.0 - TIE_TOLERANCE):
            importance[d] += decrease / n_tied


@kernel()
def partition(source, target, go_left, start, split, end, n_lists):
    """Stable partition of the first ``n_lists`` sorted lists into (left, right), from ``source`` into ``target``.

    The left child's size is known, so each entry is written once, at its final place.
    """
    for d in range(n_lists):
        source_d = source[d]
        target_d = target[d]
        a = start
        b = split
        for p in range(start, end):
            # branch-free: the side is a coin flip for the CPU's predictor
            sample = source_d[p]
            side = np.int64(go_left[sample])
            target_d[a if side else b] = sample
            a += side
            b += 1 - side
