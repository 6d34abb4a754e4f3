"""The fit: features sorted once, then per stage the gradients and every tree column grown together, level by level.

Several classification targets on the same features (DCI's factors) are fitted in one pass: their
tree columns are stacked (``T = sum_j T_j``; ``T_j = 1`` for a binary target, else its class count),
each target's gradients come from its own columns, and every array operation serves all of them
(on a GPU the kernel launches, not the arithmetic, are what small fits cost).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import device_name, from_numpy, to_numpy
from dbench.estimators.array_trees._columns import SortedColumns, sort_columns
from dbench.estimators.array_trees._gradients import negative_gradients
from dbench.estimators.array_trees._level import Level, decide_level
from dbench.estimators.array_trees._model import ArrayBoostedTrees
from dbench.estimators.boosted_trees._constants import MAX_DEPTH
from dbench.estimators.boosted_trees._fit import canonical_order, normalised_importances
from dbench.estimators.boosted_trees._gradients import initial_raw
from dbench.estimators.threads import single_cpu_thread

# Elements of the (nodes, lanes, samples) temporaries of one chunk: ~32 MB float64 arrays on a CPU,
# ~512 MB on a GPU (fewer, larger kernels).
HOST_ELEMENTS = 2**22
GPU_ELEMENTS = 2**26


@dataclass(frozen=True)
class _Target:
    """One classification target: its classes, encoded labels and tree columns ``[start, stop)``."""

    classes: np.ndarray
    encoded: np.ndarray
    start: int
    stop: int

    @property
    def one_hot(self) -> np.ndarray:
        """``(T_j, n)``: 1 where the sample's class is the column's (a binary target's column is class 1)."""
        first = 1 if self.classes.size == 2 else 0
        return self.encoded[None, :] == first + np.arange(self.stop - self.start)[:, None]

    @property
    def leaf_scale(self) -> float:
        """scikit-learn's Newton-step factor: 1 for two classes, ``(K - 1) / K`` for K."""
        k = self.classes.size
        return 1.0 if k == 2 else (k - 1) / k


def fit_array_trees(
    x: Any,
    y: Any,
    *,
    n_stages: int = 100,
    learning_rate: float = 0.1,
    max_elements: int | None = None,
) -> ArrayBoostedTrees:
    """Fit the equivalent of ``GradientBoostingClassifier(n_estimators=n_stages, learning_rate=...)``.

    The algorithm and rules of :func:`dbench.estimators.boosted_trees.fit_boosted_trees` (docs/dci.md),
    computed with array-API operations in the namespace of ``x`` (NumPy, CuPy, torch on CPU or CUDA,
    array_api_strict), on its device.

    Parameters
    ----------
    x : array (n_samples, n_features)
        Features; cast to float32 as scikit-learn does.
    y : array (n_samples,)
        Class labels (any namespace; they are encoded on the host); at least two distinct values.
    n_stages : int
        Boosting stages (scikit-learn's ``n_estimators``).
    learning_rate : float
        Shrinkage of every leaf value.
    max_elements : int, optional
        Element budget of the split search's temporaries (default: 2**22 on a CPU, 2**26 on a GPU).
        It sets how the work is chunked, never a number.

    Returns
    -------
    ArrayBoostedTrees
        Host heap arrays, ``feature_importances`` as scikit-learn's ``feature_importances_``, and the
        raw scores of the training set on the backend.
    """
    labels = np.asarray(to_numpy(y))
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,); got shape {labels.shape} (use fit_array_trees_multi for several targets)")
    return fit_array_trees_multi(x, labels[:, None], n_stages=n_stages, learning_rate=learning_rate, max_elements=max_elements)[0]


def fit_array_trees_multi(
    x: Any,
    labels: Any,
    *,
    n_stages: int = 100,
    learning_rate: float = 0.1,
    max_elements: int | None = None,
) -> list[ArrayBoostedTrees]:
    """One :func:`fit_array_trees` per column of ``labels`` ``(n_samples, n_targets)``, in one pass.

    Each model is exactly the one :func:`fit_array_trees` gives for its column alone (the targets
    share the sorted features and the array operations, never a number).
    """
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n_samples, n_features); got shape {tuple(x.shape)}")
    labels = np.asarray(to_numpy(labels))
    if labels.ndim != 2 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must be (n_samples, n_targets) with n_samples = {x.shape[0]}; got shape {labels.shape}")
    targets, start = [], 0
    for j in range(labels.shape[1]):
        classes, encoded = np.unique(labels[:, j], return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y needs at least 2 classes to fit a classifier; got {classes.size} (target {j})")
        stop = start + (1 if classes.size == 2 else classes.size)
        targets.append(_Target(classes, encoded.astype(np.int64).ravel(), start, stop))
        start = stop
    if max_elements is None:
        max_elements = GPU_ELEMENTS if device_name(x).startswith("cuda") else HOST_ELEMENTS
    with single_cpu_thread(x):
        return _fit(x, targets, n_stages, float(learning_rate), max_elements)


def _fit(x: Any, targets: list[_Target], n_stages: int, learning_rate: float, max_elements: int) -> list[ArrayBoostedTrees]:
    xp = array_namespace(x)
    device = getattr(x, "device", None)
    n, n_features = x.shape
    columns = sort_columns(xp, xp.astype(x, xp.float32))
    # The compiled trees' canonical feature order (boosted_trees.canonical_order): the fit runs on the
    # features ordered by their dense-rank columns, so sums and ties follow the data, not the column
    # order; feature indices and importances are mapped back below. The ranks go to the host once.
    canon = _canonical_order(xp, columns)
    canon_x = from_numpy(xp, canon.astype(np.int64), device=device)
    columns = SortedColumns(*(xp.take(getattr(columns, f.name), canon_x, axis=0) for f in fields(SortedColumns)))
    init = np.concatenate([initial_raw(t.encoded, t.classes.size) for t in targets])
    one_hot = np.concatenate([t.one_hot for t in targets]).astype(np.float64)
    one_hot_x = from_numpy(xp, one_hot, device=device)
    scale = np.concatenate([np.full(t.stop - t.start, t.leaf_scale) for t in targets])
    leaf_scale = from_numpy(xp, scale[None, :], device=device)  # (1, T): broadcast over a level's nodes
    init_x = xp.reshape(from_numpy(xp, init, device=device), (-1, 1))
    raw = xp.asarray(xp.broadcast_to(init_x, (init.size, n)), copy=True)
    column_importance = xp.zeros((init.size, n_features), dtype=xp.float64, device=device)
    n_split_trees = xp.zeros(init.size, dtype=xp.int64, device=device)
    heaps: list[tuple[Any, Any, Any]] = []
    for _ in range(n_stages):
        parts = [negative_gradients(xp, raw[t.start : t.stop, :], one_hot_x[t.start : t.stop, :]) for t in targets]
        g = xp.concat([p[0] for p in parts], axis=0) if len(parts) > 1 else parts[0][0]
        h = xp.concat([p[1] for p in parts], axis=0) if len(parts) > 1 else parts[0][1]
        raw, heap, tree_importance, root_splits = _grow_stage(xp, columns, g, h, raw, leaf_scale, learning_rate, max_elements)
        column_importance = column_importance + tree_importance  # zeros for a lone leaf: exact
        n_split_trees = n_split_trees + xp.astype(root_splits, xp.int64)
        heaps.append(heap)
    feature, threshold, value = (np.stack([to_numpy(stage[i]) for stage in heaps]) for i in range(3))
    feature = np.where(feature >= 0, canon[np.maximum(feature, 0)], -1)
    importance_host, n_split_host = to_numpy(column_importance), to_numpy(n_split_trees)
    train_raw = xp.matrix_transpose(raw)
    return [
        ArrayBoostedTrees(
            t.classes,
            init[t.start : t.stop],
            np.ascontiguousarray(feature[:, t.start : t.stop]).astype(np.int32),
            np.ascontiguousarray(threshold[:, t.start : t.stop]).astype(np.float64),
            np.ascontiguousarray(value[:, t.start : t.stop]).astype(np.float64),
            learning_rate,
            _in_column_order(normalised_importances(importance_host[t.start : t.stop], n_split_host[t.start : t.stop]), canon),
            train_raw[:, t.start : t.stop],
            max_elements,
        )
        for t in targets
    ]


def _grow_stage(
    xp: Any, columns: SortedColumns, g: Any, h: Any, raw: Any, leaf_scale: Any, learning_rate: float, max_elements: int
) -> tuple[Any, tuple[Any, Any, Any], Any, Any]:
    """One tree per column, all grown together: new raw scores, heap arrays ``(T, 15)``, importances ``(T, F)``."""
    n_columns, n = raw.shape
    device = getattr(raw, "device", None)
    node = xp.zeros((n_columns, n), dtype=xp.int64, device=device)
    tree_importance = xp.zeros((n_columns, columns.order.shape[0]), dtype=xp.float64, device=device)
    features, thresholds, values = [], [], []
    root_splits = None
    for depth in range(MAX_DEPTH + 1):
        level = decide_level(xp, columns, g, h, node, depth, leaf_scale, max_elements=max_elements)
        for v in range(2**depth):  # heap-slot order, as the compiled trees credit splits
            tree_importance = tree_importance + level.importance[v, ...]
        features.append(xp.matrix_transpose(level.feature))
        thresholds.append(xp.matrix_transpose(level.threshold))
        values.append(xp.matrix_transpose(level.leaf_value))
        if root_splits is None:
            root_splits = level.splits[0, :]
        node, raw = _descend(xp, columns, node, raw, level, learning_rate)
    heap = (xp.concat(features, axis=1), xp.concat(thresholds, axis=1), xp.concat(values, axis=1))
    return raw, heap, tree_importance, root_splits


def _descend(xp: Any, columns: SortedColumns, node: Any, raw: Any, level: Level, learning_rate: float) -> tuple[Any, Any]:
    """Samples of leaves add their shrunk value to their raw score; those of split nodes go to a child."""
    n = node.shape[1]
    device = getattr(node, "device", None)
    active = node >= 0
    slot = xp.where(active, node, 0)

    def per_sample(table: Any) -> Any:  # (V, T) -> (T, n): each sample's node's entry
        return xp.take_along_axis(xp.matrix_transpose(table), slot, axis=1)

    splits = per_sample(level.splits) & active
    leaf = active & ~splits
    raw = raw + xp.where(leaf, learning_rate * per_sample(level.leaf_value), 0.0)
    feature = xp.where(splits, per_sample(level.feature), 0)
    index = xp.reshape(feature * n + xp.arange(n, dtype=xp.int64, device=device)[None, :], (-1,))
    x_value = xp.astype(xp.reshape(xp.take(xp.reshape(columns.x_rows, (-1,)), index), node.shape), xp.float64)
    right = xp.astype(x_value > per_sample(level.threshold), xp.int64)
    return xp.where(splits, 2 * slot + right, -1), raw


def _canonical_order(xp: Any, columns: SortedColumns) -> np.ndarray:
    """:func:`~dbench.estimators.boosted_trees._fit.canonical_order` of the sorted columns' dense ranks."""
    order, rank = to_numpy(columns.order), to_numpy(columns.rank)
    ranks = np.empty(order.shape, dtype=np.int64)
    np.put_along_axis(ranks, order, rank, axis=1)  # (F, n): each sample's rank, in sample order
    return canonical_order(ranks)


def _in_column_order(importances: np.ndarray, canon: np.ndarray) -> np.ndarray:
    """Importances computed in the canonical order, put back in the codes' column order."""
    out = np.empty_like(importances)
    out[canon] = importances
    return out
