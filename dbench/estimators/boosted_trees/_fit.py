"""The fit: features sorted once, buffers allocated once, then every stage in one compiled call.

Per stage the gradients, then the trees (one per tree column; independent given the gradients) are
spread over numba's threads: lane ``i`` grows the trees of columns ``i, i + n_lanes, ...`` with its
own :class:`LaneBuffers`, and every tree is computed exactly as it would be alone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dbench.estimators._numba import HAVE_NUMBA, get_num_threads, kernel, prange
from dbench.estimators.boosted_trees._constants import GRADIENT_BLOCK, HEAP_SIZE
from dbench.estimators.boosted_trees._gradients import initial_raw, negative_gradients
from dbench.estimators.boosted_trees._model import BoostedTrees
from dbench.estimators.boosted_trees._split_scan import ScanBuffers, scan_buffers
from dbench.estimators.boosted_trees._tree import (
    HeapTree,
    LaneBuffers,
    SortedFeatures,
    grow_tree,
)


class Ensemble(NamedTuple):
    """What a fit fills in, for ``n_stages`` stages of ``T`` tree columns (T = 1 for two classes, else K)."""

    feature: np.ndarray  # (n_stages, T, 15) int32: the trees' heap arrays (see HeapTree)
    threshold: np.ndarray  # (n_stages, T, 15) float64
    value: np.ndarray  # (n_stages, T, 15) float64
    raw: np.ndarray  # (T, n) float64: raw scores of the training samples, from the prior on
    column_importance: np.ndarray  # (T, n_features) float64: summed importances of each column's split trees
    n_split_trees: np.ndarray  # (T,) int64: trees with more than one node, per column


def fit_boosted_trees(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_stages: int = 100,
    learning_rate: float = 0.1,
    random_ties: np.random.Generator | None = None,
) -> BoostedTrees:
    """Fit the equivalent of ``GradientBoostingClassifier(n_estimators=n_stages, learning_rate=...)``.

    Parameters
    ----------
    x : ndarray (n_samples, n_features)
        Features; cast to float32 as scikit-learn does.
    y : ndarray (n_samples,)
        Class labels; at least two distinct values.
    n_stages : int
        Boosting stages (scikit-learn's ``n_estimators``).
    learning_rate : float
        Shrinkage of every leaf value.
    random_ties : numpy.random.Generator, optional
        Where several features give the same best split: None (default) takes the one whose cut
        spans the most distinct values (invariant to permuting and rescaling features; DCI); a
        generator takes a uniformly random one per node, drawn from it, as scikit-learn's random
        feature order does (the downstream probe: its predictions then follow scikit-learn's
        distribution over ``random_state``).

    Returns
    -------
    BoostedTrees
        The trees, ``feature_importances`` as scikit-learn's ``feature_importances_`` and the raw
        scores of the training set.
    """
    if not HAVE_NUMBA:
        raise ImportError("fit_boosted_trees needs numba (pip install numba)")
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    classes, y_encoded = np.unique(np.asarray(y), return_inverse=True)
    y_encoded = y_encoded.astype(np.int64).ravel()
    n_classes = classes.size
    if n_classes < 2:
        raise ValueError(f"y needs at least 2 classes to fit a classifier; got {n_classes}")
    n_columns = 1 if n_classes == 2 else n_classes
    n_samples, n_features = x32.shape
    init_raw = initial_raw(y_encoded, n_classes)
    raw = np.empty((n_columns, n_samples), dtype=np.float64)  # one row per tree column
    raw[:] = init_raw[:, None]
    ensemble = Ensemble(
        feature=np.full((n_stages, n_columns, HEAP_SIZE), -1, dtype=np.int32),
        threshold=np.zeros((n_stages, n_columns, HEAP_SIZE), dtype=np.float64),
        value=np.zeros((n_stages, n_columns, HEAP_SIZE), dtype=np.float64),
        raw=raw,
        column_importance=np.zeros((n_columns, n_features)),
        n_split_trees=np.zeros(n_columns, dtype=np.int64),
    )
    # Threads for the trees of a stage (numba's pool; NUMBA_NUM_THREADS or numba.set_num_threads).
    n_lanes = max(1, min(get_num_threads(), n_columns))
    buffers = lane_buffers(n_lanes, n_features, n_samples, n_columns)
    if random_ties is None:
        tie_draws = np.full((n_stages, n_columns, HEAP_SIZE), -1.0)
    else:
        tie_draws = random_ties.random((n_stages, n_columns, HEAP_SIZE))
    # The fit runs on the features in their canonical order (see canonical_order) and its feature
    # indices are mapped back after: every sum and tie then follows the data, not the column order.
    data = sorted_features(x32)
    canon = canonical_order(data.ranks)
    data = SortedFeatures(
        np.ascontiguousarray(data.order[canon]),
        np.ascontiguousarray(data.x[canon]),
        np.ascontiguousarray(data.ranks[canon]),
        data.inverse,
    )
    boost(data, y_encoded, n_classes, float(learning_rate), ensemble, buffers, tie_draws)
    importances = normalised_importances(ensemble.column_importance, ensemble.n_split_trees)
    importances[canon] = importances.copy()
    feature = np.where(ensemble.feature >= 0, canon[np.maximum(ensemble.feature, 0)], -1).astype(np.int32)
    return BoostedTrees(
        classes,
        init_raw,
        feature,
        ensemble.threshold,
        ensemble.value,
        float(learning_rate),
        importances,
        np.ascontiguousarray(raw.T),
    )


def normalised_importances(column_importance: np.ndarray, n_split_trees: np.ndarray) -> np.ndarray:
    """scikit-learn's ``feature_importances_`` from the summed importances of each tree column ``(T, F)``
    and the number of split trees per column ``(T,)``: the mean over split trees, normalised to sum 1."""
    importance_sum = np.zeros(column_importance.shape[1], dtype=np.float64)
    for k in range(column_importance.shape[0]):  # columns in order, as one running sum
        importance_sum += column_importance[k]
    n_relevant = int(np.sum(n_split_trees))
    if n_relevant == 0:
        return np.zeros(column_importance.shape[1], dtype=np.float64)
    mean_importance = importance_sum / n_relevant
    return mean_importance / np.sum(mean_importance)


def sorted_features(x32: np.ndarray) -> SortedFeatures:
    """Every feature sorted once (ties by sample index), one row per feature, and the ``1/m`` table.

    Lists hold sample indices (unsigned: no negative-index wraparound code in the kernels); values
    are looked up in the features stored one row per feature. Ranks are dense ranks of the values
    among their feature's distinct values (for tie-breaking between features).
    """
    n_samples = x32.shape[0]
    order = np.ascontiguousarray(np.argsort(x32, axis=0, kind="stable").T.astype(np.uint32))
    order_by_column = order.T.astype(np.intp)
    sorted_values = np.take_along_axis(x32, order_by_column, axis=0)
    new_value = np.concatenate([np.zeros((1, x32.shape[1]), bool), sorted_values[1:] != sorted_values[:-1]])
    ranks = np.empty(order.shape, dtype=np.int32)
    np.put_along_axis(ranks.T, order_by_column, np.cumsum(new_value, axis=0, dtype=np.int32), axis=0)
    inverse = np.concatenate([[0.0], 1.0 / np.arange(1, n_samples + 1)])
    return SortedFeatures(order, np.ascontiguousarray(x32.T), ranks, inverse)


def canonical_order(ranks: np.ndarray) -> np.ndarray:
    """The features ordered by their columns of dense ranks, compared sample by sample.

    The kernels sum a node's targets along its first feature's list and break exact ties between
    features by the lowest index; running them on the features in this order makes a fit, bit for
    bit, independent of the order of the columns and of strictly increasing rescaling of any of
    them (features with identical ranks split the samples identically wherever they tie).

    Examples
    --------
    >>> canonical_order(np.array([[2, 1, 3], [1, 3, 2], [1, 2, 3]]))
    array([2, 1, 0])
    """
    # np.lexsort's last key is its primary one: sample 0's ranks decide first.
    return np.lexsort(ranks.T[::-1]).astype(np.intp)


def lane_buffers(n_lanes: int, n_features: int, n_samples: int, n_columns: int) -> LaneBuffers:
    """The scratch of ``n_lanes`` lanes: :class:`LaneBuffers` whose arrays carry a leading lane axis."""
    scans = [scan_buffers(n_samples) for _ in range(n_lanes)]
    return LaneBuffers(
        lists=np.empty((n_lanes, 2, n_features, n_samples), dtype=np.uint32),
        go_left=np.zeros((n_lanes, n_samples), dtype=np.uint8),
        importance=np.zeros((n_lanes, n_features)),
        proxy=np.empty((n_lanes, n_features)),
        position=np.zeros((n_lanes, n_features), dtype=np.int64),
        scan=ScanBuffers(*(np.stack(arrays) for arrays in zip(*scans, strict=True))),
        softmax=np.empty((n_lanes, n_columns + 2, GRADIENT_BLOCK)),
    )


@kernel(parallel=True)
def boost(data, y, n_classes, learning_rate, ensemble, lanes, tie_draws):
    """All stages of one fit on :class:`SortedFeatures` ``data`` and encoded labels ``y``; fills ``ensemble``.

    ``lanes`` are the stacked buffers of :func:`lane_buffers`; their count is the number of threads.
    ``tie_draws`` ``(n_stages, T, 15)``: per tree and heap slot, the draw of the tie rule (see
    :func:`~._tree.best_split`; negative: deterministic).
    """
    # numba's parallel loops lose writes to arrays reached through a namedtuple (numba issues 5872,
    # 7135): the tuples are taken apart here and rebuilt inside the loops.
    order, x, ranks, inverse = data
    feature, threshold, value, raw, column_importance, n_split_trees = ensemble
    lists, go_left, importance, proxy, position, scan, softmax = lanes
    scan_features, scan_proxy, scan_position, scan_first, scan_low, scan_high = scan
    n = order.shape[1]
    n_stages, n_columns = feature.shape[:2]
    n_lanes = go_left.shape[0]
    leaf_scale = 1.0 if n_columns == 1 else (n_classes - 1) / n_classes
    grad = np.empty((n_columns, n))
    hess = np.empty((n_columns, n))
    rows_per_lane = (n + n_lanes - 1) // n_lanes
    for stage in range(n_stages):
        for lane in prange(n_lanes):
            negative_gradients(raw, y, grad, hess, lane * rows_per_lane, min(n, (lane + 1) * rows_per_lane), softmax[lane])
        for lane in prange(n_lanes):
            lane_scan = ScanBuffers(
                scan_features[lane], scan_proxy[lane], scan_position[lane], scan_first[lane], scan_low[lane], scan_high[lane]
            )
            buffers = LaneBuffers(
                lists[lane], go_left[lane], importance[lane], proxy[lane], position[lane], lane_scan, softmax[lane]
            )
            fit_data = SortedFeatures(order, x, ranks, inverse)
            results = Ensemble(feature, threshold, value, raw, column_importance, n_split_trees)
            for k in range(lane, n_columns, n_lanes):
                grow_column_tree(
                    fit_data, grad[k], hess[k], leaf_scale, buffers, results, stage, k, learning_rate, tie_draws[stage, k]
                )


@kernel()
def grow_column_tree(data, g, h, leaf_scale, lane, ensemble, stage, k, learning_rate, tie_draws):
    """Grow the tree of column ``k`` at ``stage``, add its shrunk leaves to ``ensemble.raw[k]`` and,
    if it splits at all, its importances to the column's sum."""
    lane.importance[:] = 0.0
    tree = HeapTree(ensemble.feature[stage, k], ensemble.threshold[stage, k], ensemble.value[stage, k])
    nodes = grow_tree(data, g, h, leaf_scale, lane, tree, ensemble.raw[k], learning_rate, tie_draws)
    if nodes > 1:
        ensemble.n_split_trees[k] += 1
        for d in range(lane.importance.size):
            ensemble.column_importance[k, d] += lane.importance[d]
