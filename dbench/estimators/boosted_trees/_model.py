"""The fitted ensemble (NumPy arrays in heap order) and prediction on complete, padded trees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dbench.estimators._numba import kernel, prange
from dbench.estimators.boosted_trees._constants import HEAP_SIZE, MAX_DEPTH, N_INTERNAL


@dataclass
class BoostedTrees:
    """A fitted ensemble.

    Trees are stored in heap order (children of slot ``j`` at ``2j+1`` and ``2j+2``); a slot whose
    ``feature`` is -1 is a leaf holding ``value`` (already the Newton step, not yet shrunk).
    """

    classes: np.ndarray  # (K,) sorted distinct training labels
    init_raw: np.ndarray  # (T,) initial raw prediction per tree column (T = 1 if K == 2 else K)
    feature: np.ndarray  # (n_stages, T, 15) int32
    threshold: np.ndarray  # (n_stages, T, 15) float64
    value: np.ndarray  # (n_stages, T, 15) float64
    learning_rate: float
    feature_importances: np.ndarray  # (n_features,) like sklearn's ``feature_importances_``
    train_raw: np.ndarray  # (n_train, T) raw predictions on the training set

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions ``(n, T)`` for features ``x`` ``(n, n_features)``."""
        # features as rows (n_features, n) and scores as (T, n): a tree visits a block of samples
        # with contiguous loads
        x32 = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
        raw = np.empty((self.init_raw.size, x32.shape[1]), dtype=np.float64)
        raw[:] = self.init_raw[:, None]
        predict_raw(x32, complete_trees(self.feature, self.threshold, self.value), self.learning_rate, raw)
        return np.ascontiguousarray(raw.T)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels for ``x``, from raw predictions exactly as scikit-learn decides them."""
        return self.classes[raw_to_class(self.decision_function(x))]

    def predict_train(self) -> np.ndarray:
        """Class labels for the training set (from the raw predictions accumulated while fitting)."""
        return self.classes[raw_to_class(self.train_raw)]


class CompleteTrees(NamedTuple):
    """Every tree as a complete depth-3 tree, arrays ``(n_stages, T, ...)``."""

    feature: np.ndarray  # (..., 7) int32: feature of each split (heap order)
    threshold: np.ndarray  # (..., 7) float64: go right where x > threshold
    leaf_value: np.ndarray  # (..., 8) float64: the 8 leaves, left to right


def complete_trees(feature: np.ndarray, threshold: np.ndarray, value: np.ndarray) -> CompleteTrees:
    """Every tree rewritten as a complete depth-3 tree: 7 splits and 8 leaves.

    A leaf above depth 3 becomes a split that always goes left (threshold +inf; features are
    finite) down to a leaf holding its value, so prediction is three branch-free steps per tree
    and gives the same leaf value as walking the original tree.
    """
    split_feature = np.zeros(feature.shape[:2] + (N_INTERNAL,), dtype=np.int32)
    split_threshold = np.full(feature.shape[:2] + (N_INTERNAL,), np.inf)
    leaf_value = np.zeros(feature.shape[:2] + (N_INTERNAL + 1,))
    # value each heap slot passes down: its own value at a leaf, else its children's
    feature = feature.copy()  # marks the descendants of leaves as leaves too
    carried = value.copy()
    for slot in range(HEAP_SIZE):
        is_leaf = feature[..., slot] < 0
        if slot < N_INTERNAL:
            split_feature[..., slot] = np.where(is_leaf, 0, feature[..., slot])
            split_threshold[..., slot] = np.where(is_leaf, np.inf, threshold[..., slot])
            for child in (2 * slot + 1, 2 * slot + 2):
                carried[..., child] = np.where(is_leaf, carried[..., slot], carried[..., child])
                feature[..., child] = np.where(is_leaf, -1, feature[..., child])
        else:
            leaf_value[..., slot - N_INTERNAL] = carried[..., slot]
    return CompleteTrees(split_feature, split_threshold, leaf_value)


def raw_to_class(raw: np.ndarray) -> np.ndarray:
    """Class indices from raw scores ``(n, T)``, as scikit-learn: binary -> class 1 where raw >= 0;
    multiclass -> first argmax."""
    if raw.shape[1] == 1:
        return (raw[:, 0] >= 0).astype(np.intp)
    return np.argmax(raw, axis=1)


@kernel(parallel=True)
def predict_raw(x, trees, learning_rate, raw):
    """Add every tree's shrunk leaf value to ``raw`` (T, n) for features ``x`` (n_features, n).

    ``trees`` are :class:`CompleteTrees`: a sample's leaf is three comparisons,
    ``slot = 2 slot + 1 + (x > threshold)``, with no branches. Samples go in blocks (in
    parallel); within a block one tree at a time visits all samples, and each ``raw[k, i]``
    receives its terms in stage order, as sklearn's predict adds them.
    """
    # namedtuples stay outside the parallel loop (numba issues 5872, 7135)
    split_feature, split_threshold, leaf_value = trees
    n = x.shape[1]
    n_stages, n_columns, n_internal = split_feature.shape
    block = 512
    n_blocks = (n + block - 1) // block
    for b in prange(n_blocks):
        low = b * block
        high = min(n, low + block)
        for stage in range(n_stages):
            for k in range(n_columns):
                feat = split_feature[stage, k]
                thr = split_threshold[stage, k]
                val = leaf_value[stage, k]
                for i in range(low, high):
                    j = 0
                    for _ in range(MAX_DEPTH):
                        j = 2 * j + 1 + np.int64(x[feat[j], i] > thr[j])
                    raw[k, i] += learning_rate * val[j - n_internal]
