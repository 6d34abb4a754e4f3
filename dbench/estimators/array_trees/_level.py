"""One level of every tree of a stage: node sums, best splits, leaves, importance credit, children.

A level holds up to ``V = 2**depth`` nodes per tree; a sample's node is its entry of ``node``
``(T, n)`` (-1 once it sits in a leaf). Everything the compiled trees compute one node and one
feature at a time is computed here for all ``(node, tree, feature)`` at once:

* a node's sums run along feature 0's sorted order, as ``cumulative_sum`` of the node's members
  (non-members add exact zeros, so on a backend whose cumulative sum is sequential, NumPy and torch on
  the CPU, the sums are the compiled scan's bit for bit);
* the running sums of every cut along every feature's sorted order are the same masked cumulative
  sums; the proxy ``S^2/n_l + (T-S)^2/n_r`` of every valid cut, its first maximum per feature, the
  tie rule between features (widest gap in global ranks, then the lowest index) and the equal shares
  of tied features' importance follow the compiled trees' rules (docs/dci.md).

Work is cut into chunks of ``(tree, feature)`` lanes so that the ``(V, lanes, n)`` temporaries stay
within an element budget; chunking changes no number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbench.estimators.array_trees._columns import SortedColumns
from dbench.estimators.boosted_trees._constants import EPSILON, MAX_DEPTH, TIE_TOLERANCE


@dataclass(frozen=True)
class NodeSums:
    """Per ``(node, tree)`` ``(V, T)``: member count and the sums of g, g*g and h in feature 0's order."""

    count: Any  # int64
    total: Any  # float64
    squares: Any  # float64
    hessian: Any  # float64


@dataclass(frozen=True)
class Level:
    """What one level decided, per ``(node, tree)`` ``(V, T)`` unless said otherwise."""

    exists: Any  # bool: the node has members
    splits: Any  # bool: it is split (else, if it exists, a leaf)
    feature: Any  # int64: split feature (-1 for a leaf or no node)
    threshold: Any  # float64: go left where x <= threshold (0 where no split)
    leaf_value: Any  # float64: the Newton step of a leaf (0 where no leaf)
    importance: Any  # (V, T, F) float64: the impurity decrease credited to each feature


def node_masks(xp: Any, node_sorted: Any, n_nodes: int) -> Any:
    """``(V, ..., n)`` bool: which sorted positions belong to node ``v`` of the level."""
    ids = xp.arange(n_nodes, dtype=node_sorted.dtype, device=getattr(node_sorted, "device", None))
    return node_sorted[None, ...] == xp.reshape(ids, (n_nodes,) + (1,) * node_sorted.ndim)


def masked(xp: Any, mask: Any, values: Any) -> Any:
    """``values`` where ``mask``, else zero: a product with the mask (several times faster than ``where``
    on NumPy; a -0.0 in place of 0.0 changes no running sum)."""
    return values * xp.astype(mask, values.dtype)


def masked_sum(xp: Any, mask: Any, values: Any) -> Any:
    """Sum along the last axis of ``values`` where ``mask``, in order (the last running sum)."""
    return xp.cumulative_sum(masked(xp, mask, values), axis=-1)[..., -1]


def node_sums(xp: Any, columns: SortedColumns, g: Any, h: Any, node: Any, n_nodes: int) -> NodeSums:
    """The sums of every node of the level, taken along feature 0's sorted order (the compiled order)."""
    first = columns.order[0, :]
    g0 = xp.take(g, first, axis=1)
    mask = node_masks(xp, xp.take(node, first, axis=1), n_nodes)  # (V, T, n)
    count = xp.sum(xp.astype(mask, xp.int64), axis=-1)
    h0 = xp.take(h, first, axis=1)
    return NodeSums(count, masked_sum(xp, mask, g0), masked_sum(xp, mask, g0 * g0), masked_sum(xp, mask, h0))


def newton_leaves(xp: Any, sums: NodeSums, leaf_scale: Any) -> Any:
    """``leaf_scale * sum(g) / sum(h)`` per node (0 where the mean hessian is below 1e-150); ``leaf_scale``
    is ``(1, T)``: 1 for a binary target's column, ``(K - 1) / K`` for a K-class one's."""
    count = xp.astype(xp.maximum(sums.count, xp.ones_like(sums.count)), xp.float64)
    numerator = sums.total / count * leaf_scale
    denominator = sums.hessian / count
    safe = xp.where(xp.abs(denominator) < 1e-150, 1.0, denominator)
    return xp.where(xp.abs(denominator) < 1e-150, 0.0, numerator / safe)


def impurity(xp: Any, count: Any, total: Any, squares: Any) -> Any:
    """Squared-error impurity ``squares/m - (total/m)^2`` (0 where ``m`` is 0)."""
    m = xp.astype(xp.maximum(count, xp.ones_like(count)), xp.float64)
    mean = total / m
    return xp.where(count > 0, squares / m - mean * mean, 0.0)


@dataclass(frozen=True)
class FeatureCuts:
    """Each feature's best cut in each node, ``(V, T, F)``: its proxy (-inf: none) and where it is."""

    proxy: Any  # float64
    position: Any  # int64: sorted position of the last member on the left
    next_position: Any  # int64: sorted position of the first member on the right
    left_sum: Any  # float64: running sum of g up to the cut
    left_count: Any  # int64
    rank_gap: Any  # int64: dense-rank distance spanned by the cut


def _gather_rows(xp: Any, table: Any, rows: Any, positions: Any) -> Any:
    """``table[rows, positions]`` for a 2-D ``table`` (F, n) and index arrays of one shape."""
    n = table.shape[1]
    flat = xp.reshape(rows * n + positions, (-1,))
    return xp.reshape(xp.take(xp.reshape(table, (-1,)), flat), rows.shape)


def best_cuts(xp: Any, columns: SortedColumns, g: Any, node: Any, sums: NodeSums, *, max_elements: int) -> FeatureCuts:
    """The first best cut of every ``(node, tree, feature)`` of the level (the plain scan's, exactly)."""
    n_nodes, n_trees = sums.count.shape
    n_features, n = columns.order.shape
    device = getattr(g, "device", None)
    lanes = n_trees * n_features
    per_chunk = max(1, max_elements // (n_nodes * n))
    grid = (n_trees, n_features)  # lane l is (tree l // F, feature l % F)
    lane_tree = xp.reshape(xp.broadcast_to(xp.reshape(xp.arange(n_trees, device=device), (-1, 1)), grid), (-1,))
    lane_feature = xp.reshape(xp.broadcast_to(xp.reshape(xp.arange(n_features, device=device), (1, -1)), grid), (-1,))
    g_flat, node_flat = xp.reshape(g, (-1,)), xp.reshape(node, (-1,))
    parts = []
    for low in range(0, lanes, per_chunk):
        high = min(lanes, low + per_chunk)
        trees, features = lane_tree[low:high], lane_feature[low:high]
        parts.append(_chunk_cuts(xp, columns, g_flat, node_flat, sums, trees, features))
    fields = [xp.concat([getattr(p, name) for p in parts], axis=1) for name in FeatureCuts.__dataclass_fields__]
    return FeatureCuts(*(xp.reshape(a, (n_nodes, n_trees, n_features)) for a in fields))


def _chunk_cuts(
    xp: Any, columns: SortedColumns, g_flat: Any, node_flat: Any, sums: NodeSums, trees: Any, features: Any
) -> FeatureCuts:
    """:func:`best_cuts` for one chunk of lanes (tree ``trees[l]``, feature ``features[l]``): arrays ``(V, L)``."""
    n_nodes = sums.count.shape[0]
    n = columns.order.shape[1]
    index = xp.reshape(trees, (-1, 1)) * n + xp.take(columns.order, features, axis=0)  # (L, n) into (T, n)
    flat = xp.reshape(index, (-1,))
    g_sorted = xp.reshape(xp.take(g_flat, flat), index.shape)
    member = xp.astype(node_masks(xp, xp.reshape(xp.take(node_flat, flat), index.shape), n_nodes), xp.float64)  # (V, L, n)
    running = xp.cumulative_sum(g_sorted[None, ...] * member, axis=-1)  # a -0.0 for 0.0 changes no sum
    members = xp.cumulative_sum(member, axis=-1)  # counts, exact in float64
    count = xp.astype(xp.take(sums.count, trees, axis=1)[..., None], xp.float64)  # (V, L, 1)
    total = xp.take(sums.total, trees, axis=1)[..., None]
    gap_end = xp.take(columns.gap_end, features, axis=0)  # (L, n)
    members_before_gap = xp.take_along_axis(members, xp.broadcast_to(gap_end[None, ...] - 1, members.shape), axis=-1)
    valid = (member > 0.0) & (members < count) & (members_before_gap == members)
    right = total - running
    # 1/m by a correctly rounded division: the compiled trees' table entry 1/m bit for bit (the
    # maximum only keeps positions that are not cuts finite).
    inverse_left = 1.0 / xp.maximum(members, 1.0)
    inverse_right = 1.0 / xp.maximum(count - members, 1.0)
    proxy = xp.where(valid, running * running * inverse_left + right * right * inverse_right, -xp.inf)
    position = xp.argmax(proxy, axis=-1)  # the first maximum: the earliest cut wins ties, as scikit-learn
    best = xp.max(proxy, axis=-1)
    at = position[..., None]
    left_count = xp.astype(xp.take_along_axis(members, at, axis=-1)[..., 0], xp.int64)
    left_sum = xp.take_along_axis(running, at, axis=-1)[..., 0]
    # The first member on the right: members up to it number left_count, and the counts only grow.
    next_position = xp.sum(xp.astype(members <= xp.astype(left_count, xp.float64)[..., None], xp.int64), axis=-1)
    next_position = xp.minimum(next_position, xp.full_like(next_position, n - 1))
    rows = xp.broadcast_to(features[None, :], position.shape)
    rank_gap = _gather_rows(xp, columns.rank, rows, next_position) - _gather_rows(xp, columns.rank, rows, position)
    return FeatureCuts(best, position, next_position, left_sum, left_count, rank_gap)


def decide_level(
    xp: Any,
    columns: SortedColumns,
    g: Any,
    h: Any,
    node: Any,
    depth: int,
    leaf_scale: Any,
    *,
    max_elements: int,
) -> Level:
    """Grow level ``depth`` of every tree: which nodes split where, the leaves' values, the importances."""
    n_nodes = 2**depth
    n_features, n = columns.order.shape
    sums = node_sums(xp, columns, g, h, node, n_nodes)
    exists = sums.count > 0
    node_impurity = impurity(xp, sums.count, sums.total, sums.squares)
    can_split = (sums.count >= 2) & (node_impurity > EPSILON)
    if depth >= MAX_DEPTH or not bool(xp.any(can_split)):
        device = getattr(g, "device", None)
        return Level(
            exists,
            xp.zeros(exists.shape, dtype=xp.bool, device=device),
            xp.full(exists.shape, -1, dtype=xp.int64, device=device),
            xp.zeros(exists.shape, dtype=xp.float64, device=device),
            xp.where(exists, newton_leaves(xp, sums, leaf_scale), 0.0),
            xp.zeros(exists.shape + (n_features,), dtype=xp.float64, device=device),
        )
    cuts = best_cuts(xp, columns, g, node, sums, max_elements=max_elements)
    best_proxy = xp.max(cuts.proxy, axis=-1)
    splits = can_split & (best_proxy > -xp.inf)
    tied = (cuts.proxy >= (best_proxy * (1.0 - TIE_TOLERANCE))[..., None]) & (cuts.proxy > -xp.inf)
    choice = xp.argmax(xp.where(tied, cuts.rank_gap, -1), axis=-1)  # widest rank gap, then lowest index
    pick = choice[..., None]

    def chosen(field: Any) -> Any:
        return xp.take_along_axis(field, pick, axis=-1)[..., 0]

    position, next_position = chosen(cuts.position), chosen(cuts.next_position)
    left_sum, left_count = chosen(cuts.left_sum), chosen(cuts.left_count)
    low = xp.astype(_gather_rows(xp, columns.values, choice, position), xp.float64)
    high = xp.astype(_gather_rows(xp, columns.values, choice, next_position), xp.float64)
    midpoint = low / 2.0 + high / 2.0
    threshold = xp.where((midpoint == high) | xp.isinf(midpoint), low, midpoint)
    left_squares = _left_squares(xp, columns, g, node, choice, position)
    right_count = sums.count - left_count
    decrease = (
        xp.astype(sums.count, xp.float64) * node_impurity
        - xp.astype(left_count, xp.float64) * impurity(xp, left_count, left_sum, left_squares)
        - xp.astype(right_count, xp.float64) * impurity(xp, right_count, sums.total - left_sum, sums.squares - left_squares)
    ) / n
    n_tied = xp.astype(xp.sum(xp.astype(tied, xp.int64), axis=-1), xp.float64)
    share = decrease / xp.maximum(n_tied, xp.ones_like(n_tied))
    importance = xp.where(tied & splits[..., None], share[..., None], 0.0)
    leaves = newton_leaves(xp, sums, leaf_scale)
    return Level(
        exists,
        splits,
        xp.where(splits, choice, -1),
        xp.where(splits, threshold, 0.0),
        xp.where(exists & ~splits, leaves, 0.0),
        importance,
    )


def _left_squares(xp: Any, columns: SortedColumns, g: Any, node: Any, feature: Any, position: Any) -> Any:
    """Running sum of g*g along each node's chosen feature up to its cut ``(V, T)`` (the compiled order)."""
    n_nodes, n_trees = feature.shape
    n = columns.order.shape[1]
    device = getattr(g, "device", None)
    order = xp.take(columns.order, xp.reshape(feature, (-1,)), axis=0)  # (V*T, n)
    trees = xp.reshape(xp.broadcast_to(xp.reshape(xp.arange(n_trees, device=device), (1, -1)), feature.shape), (-1, 1))
    flat = xp.reshape(trees * n + order, (-1,))
    g_sorted = xp.reshape(xp.take(xp.reshape(g, (-1,)), flat), (n_nodes, n_trees, n))
    node_sorted = xp.reshape(xp.take(xp.reshape(node, (-1,)), flat), (n_nodes, n_trees, n))
    ids = xp.reshape(xp.arange(n_nodes, dtype=node.dtype, device=device), (-1, 1, 1))
    squares = xp.cumulative_sum(masked(xp, node_sorted == ids, g_sorted * g_sorted), axis=-1)
    return xp.take_along_axis(squares, position[..., None], axis=-1)[..., 0]
