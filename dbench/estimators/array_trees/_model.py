"""The fitted array-API ensemble: host heap arrays (as the compiled trees') and prediction on the backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import from_numpy
from dbench.estimators.boosted_trees._constants import MAX_DEPTH, N_INTERNAL
from dbench.estimators.boosted_trees._model import complete_trees
from dbench.estimators.threads import single_cpu_thread


@dataclass
class ArrayBoostedTrees:
    """A fitted ensemble whose predictions run in the namespace (and on the device) of their input.

    The trees are host NumPy heap arrays in the layout of
    :class:`~dbench.estimators.boosted_trees.BoostedTrees` (children of slot ``j`` at ``2j+1``,
    ``2j+2``; feature -1 at a leaf); ``train_raw`` stays on the backend it was fitted on.
    """

    classes: np.ndarray  # (K,) sorted distinct training labels
    init_raw: np.ndarray  # (T,)
    feature: np.ndarray  # (n_stages, T, 15) int32
    threshold: np.ndarray  # (n_stages, T, 15) float64
    value: np.ndarray  # (n_stages, T, 15) float64
    learning_rate: float
    feature_importances: np.ndarray  # (n_features,) like sklearn's ``feature_importances_``
    train_raw: Any  # (n_train, T) float64 raw scores of the training set, backend array
    max_elements: int = 2**22  # temporaries' element budget for prediction

    def decision_function(self, x: Any) -> Any:
        """Raw predictions ``(n, T)`` for ``x`` ``(n, n_features)``, summed over stages in stage order."""
        with single_cpu_thread(x):
            return self._decision_function(x)

    def _decision_function(self, x: Any) -> Any:
        xp = array_namespace(x)
        device = getattr(x, "device", None)
        rows = xp.asarray(xp.matrix_transpose(xp.astype(x, xp.float32)), copy=True)  # (F, n)
        n = rows.shape[1]
        trees = complete_trees(self.feature, self.threshold, self.value)
        n_stages, n_columns = trees.feature.shape[:2]
        feature = from_numpy(xp, trees.feature.astype(np.int64), device=device)
        threshold = from_numpy(xp, trees.threshold, device=device)
        leaf_value = from_numpy(xp, np.ascontiguousarray(trees.leaf_value), device=device)
        init = from_numpy(xp, self.init_raw.astype(np.float64), device=device)
        raw = xp.broadcast_to(xp.reshape(init, (-1, 1)), (n_columns, n))
        per_chunk = max(1, self.max_elements // max(1, n_columns * N_INTERNAL * n))
        for low in range(0, n_stages, per_chunk):
            high = min(n_stages, low + per_chunk)
            chunk = (feature[low:high, ...], threshold[low:high, ...], leaf_value[low:high, ...])
            steps = self.learning_rate * _leaf_values(xp, rows, *chunk)
            # Stage by stage, as scikit-learn adds them (a cumulative sum is sequential on CPU backends).
            raw = xp.cumulative_sum(xp.concat([raw[None, ...], steps], axis=0), axis=0)[-1, ...]
        return xp.matrix_transpose(raw)

    def predict(self, x: Any) -> Any:
        """Class labels for ``x`` (in ``x``'s namespace), decided from the raw scores as scikit-learn does."""
        return self._labels(self.decision_function(x))

    def predict_train(self) -> Any:
        """Class labels for the training set, from the raw scores accumulated while fitting."""
        return self._labels(self.train_raw)

    def _labels(self, raw: Any) -> Any:
        xp = array_namespace(raw)
        if raw.shape[1] == 1:
            index = xp.astype(raw[:, 0] >= 0, xp.int64)
        else:
            index = xp.argmax(raw, axis=1)  # the first maximum, as numpy's argmax
        return xp.take(from_numpy(xp, self.classes, device=getattr(raw, "device", None)), index)


def _leaf_values(xp: Any, rows: Any, feature: Any, threshold: Any, leaf_value: Any) -> Any:
    """Each tree's leaf value for every sample ``(S, T, n)``: three branch-free steps down complete trees."""
    n_stages, n_columns, n_internal = feature.shape
    n = rows.shape[1]
    values = xp.reshape(xp.take(rows, xp.reshape(feature, (-1,)), axis=0), (n_stages, n_columns, n_internal, n))
    go_right = xp.astype(xp.astype(values, xp.float64) > threshold[..., None], xp.int64)
    slot = xp.zeros((n_stages, n_columns, 1, n), dtype=xp.int64, device=getattr(rows, "device", None))
    for _ in range(MAX_DEPTH):
        slot = 2 * slot + 1 + xp.take_along_axis(go_right, slot, axis=2)
    leaf = xp.reshape(slot, (n_stages, n_columns, n)) - n_internal
    trees = xp.arange(n_stages * n_columns, dtype=xp.int64, device=getattr(rows, "device", None))
    base = xp.reshape(trees, (n_stages, n_columns, 1))
    flat = xp.reshape(base * (n_internal + 1) + leaf, (-1,))
    return xp.reshape(xp.take(xp.reshape(leaf_value, (-1,)), flat), (n_stages, n_columns, n))
