"""Gradient-boosted trees that reproduce scikit-learn's ``GradientBoostingClassifier()`` defaults, fast.

DCI (Eastwood & Williams, 2018) as computed by disentanglement_lib reads its importance matrix off
one ``sklearn.ensemble.GradientBoostingClassifier()`` per factor, with every default: 100 stages,
learning rate 0.1, depth-3 regression trees with exact greedy splits, log-loss (one tree per class
and stage for K > 2 classes, a single tree for K = 2), prior log-odds initialisation and one
Newton step per leaf. Swapping in a histogram booster (LightGBM, XGBoost) changes the number, so this
module re-implements *that* algorithm, step for step, and only changes how the work is organised:

* every feature is sorted once per fit (scikit-learn sorts again in every node);
* a node keeps, per feature, its samples in sorted order (stable partition when it splits), so the
  best split of a node is one linear scan per feature;
* the kernels release the GIL, so callers fit several classifiers in threads (DCI fits one per
  factor); threads inside one fit (one per class) spent more time in barriers than they saved.

What is reproduced exactly (see docs/dci.md): float32 features, split positions only between
values that differ by more than scikit-learn's ``FEATURE_THRESHOLD`` (1e-7, in float32 arithmetic),
the squared-error proxy improvement ``S_l^2/n_l + S_r^2/n_r`` with a strict ``>`` (first best wins),
thresholds at the float64 midpoint of the two float32 neighbours, nodes with impurity <= float64 eps
kept as leaves, Newton leaf values ``(K-1)/K * sum(g) / sum(p(1-p))`` (``sum(g)/sum(p(1-p))`` for two
classes, 0 when the denominator is below 1e-150), and ``feature_importances_`` = per-tree weighted
impurity decrease over the root weight, averaged over trees with more than one node, normalised to
sum 1. What differs: scikit-learn visits features in a random order and keeps the first strictly
best split, so when several features tie (common in two-sample nodes) the importance goes to a random
one of them; here the split goes to the tied feature whose cut spans the most distinct values (then
the lowest index), a rule invariant to permuting or monotonically rescaling latents, and the tied
features share the importance equally, the expectation over scikit-learn's randomness. Sums are accumulated in a different order, so
near-ties can flip at the 1e-16 level.

The numerical kernels use numba; without numba, :func:`fit_boosted_trees` is unavailable and the
caller falls back to scikit-learn (see :func:`numba_available`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # numba is what makes the tree kernels fast; without it callers use scikit-learn instead.
    from numba import njit

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    _HAVE_NUMBA = False

# scikit-learn's tree constants (sklearn/tree/_splitter.pyx, _tree.pyx).
_FEATURE_THRESHOLD = np.float32(1e-7)
_EPSILON = float(np.finfo(np.float64).eps)
_MAX_DEPTH = 3
# Relative gap under which two features' best splits count as tied (sums of the same numbers taken in
# different orders differ by a few ulp).
_TIE_TOLERANCE = 1e-12
_HEAP_SIZE = 2 ** (_MAX_DEPTH + 1) - 1  # 15 slots: a full binary tree of depth 3 in heap order


def numba_available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return _HAVE_NUMBA


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
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        raw = np.empty((x32.shape[0], self.init_raw.size), dtype=np.float64)
        raw[:] = self.init_raw
        _predict_raw(x32, self.feature, self.threshold, self.value, self.learning_rate, raw)
        return raw

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels for ``x``, from raw predictions exactly as scikit-learn decides them."""
        return self.classes[_raw_to_class(self.decision_function(x))]

    def predict_train(self) -> np.ndarray:
        """Class labels for the training set (from the raw predictions accumulated while fitting)."""
        return self.classes[_raw_to_class(self.train_raw)]


def _raw_to_class(raw: np.ndarray) -> np.ndarray:
    # sklearn: binary -> class 1 where raw >= 0; multiclass -> first argmax.
    if raw.shape[1] == 1:
        return (raw[:, 0] >= 0).astype(np.intp)
    return np.argmax(raw, axis=1)


def _initial_raw(y_encoded: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's ``DummyClassifier(strategy="prior")`` pushed through the loss's link function."""
    prior = np.bincount(y_encoded, minlength=n_classes) / y_encoded.size
    eps = np.finfo(np.float64).eps
    prior = np.clip(prior, eps, 1 - eps)
    if n_classes == 2:
        p = prior[1]
        return np.array([np.log(p / (1 - p))])
    # Symmetric multinomial logit: log(p / geometric_mean(p)).
    geometric_mean = np.exp(np.mean(np.log(prior)))
    return np.log(prior / geometric_mean)


def fit_boosted_trees(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_stages: int = 100,
    learning_rate: float = 0.1,
) -> BoostedTrees:
    """Fit the equivalent of ``GradientBoostingClassifier(n_estimators=n_stages, learning_rate=...)``.

    Parameters
    ----------
    x : ndarray (n_samples, n_features)
        Features; cast to float32 as scikit-learn does.
    y : ndarray (n_samples,)
        Class labels; at least two distinct values.
    """
    if not _HAVE_NUMBA:
        raise ImportError("fit_boosted_trees needs numba (pip install numba)")
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    classes, y_encoded = np.unique(np.asarray(y), return_inverse=True)
    y_encoded = y_encoded.astype(np.int64).ravel()
    n_classes = classes.size
    if n_classes < 2:
        raise ValueError(f"y needs at least 2 classes to fit a classifier; got {n_classes}")
    n_columns = 1 if n_classes == 2 else n_classes
    init_raw = _initial_raw(y_encoded, n_classes)
    # Feature columns sorted once per fit; ties broken by sample index (stable).
    order = np.ascontiguousarray(np.argsort(x32, axis=0, kind="stable").T.astype(np.int32))
    feature = np.full((n_stages, n_columns, _HEAP_SIZE), -1, dtype=np.int32)
    threshold = np.zeros((n_stages, n_columns, _HEAP_SIZE), dtype=np.float64)
    value = np.zeros((n_stages, n_columns, _HEAP_SIZE), dtype=np.float64)
    importance_sum = np.zeros(x32.shape[1], dtype=np.float64)
    raw = np.empty((x32.shape[0], n_columns), dtype=np.float64)
    raw[:] = init_raw
    # Dense rank of every value among its feature's distinct values (for tie-breaking between features).
    sorted_values = np.take_along_axis(x32, order.T.astype(np.intp), axis=0)
    new_value = np.concatenate([np.zeros((1, x32.shape[1]), bool), sorted_values[1:] != sorted_values[:-1]])
    ranks = np.empty(order.shape, dtype=np.int32)
    np.put_along_axis(ranks.T, order.T.astype(np.intp), np.cumsum(new_value, axis=0, dtype=np.int32), axis=0)
    n_relevant = _fit(
        order,
        np.ascontiguousarray(sorted_values.T),
        ranks,
        y_encoded,
        n_classes,
        n_stages,
        float(learning_rate),
        raw,
        feature,
        threshold,
        value,
        importance_sum,
    )
    if n_relevant == 0:
        importances = np.zeros(x32.shape[1], dtype=np.float64)
    else:
        mean_importance = importance_sum / n_relevant
        importances = mean_importance / np.sum(mean_importance)
    return BoostedTrees(classes, init_raw, feature, threshold, value, float(learning_rate), importances, raw)


if _HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _negative_gradient(raw, y, n_classes, grad, hess):
        """``y - p`` and ``p (1 - p)`` per sample and tree column (p = sigmoid or softmax of raw).

        The hessian uses ``p = y - (y - p)`` as scikit-learn's leaf update recomputes it.
        """
        n, n_columns = raw.shape
        for i in range(n):
            if n_columns == 1:
                r = raw[i, 0]
                # expit, written to stay finite for large |r|
                if r >= 0:
                    p = 1.0 / (1.0 + np.exp(-r))
                else:
                    e = np.exp(r)
                    p = e / (1.0 + e)
                t = 1.0 if y[i] == 1 else 0.0
                g = t - p
                q = t - g
                grad[i, 0] = g
                hess[i, 0] = q * (1.0 - q)
            else:
                m = raw[i, 0]
                for k in range(1, n_columns):
                    if raw[i, k] > m:
                        m = raw[i, k]
                total = 0.0
                for k in range(n_columns):
                    total += np.exp(raw[i, k] - m)
                for k in range(n_columns):
                    p = np.exp(raw[i, k] - m) / total
                    t = 1.0 if y[i] == k else 0.0
                    g = t - p
                    q = t - g
                    grad[i, k] = g
                    hess[i, k] = q * (1.0 - q)

    @njit(cache=True, nogil=True)
    def _grow_tree(
        order, sorted_x, ranks, g, h, leaf_scale, work, work_x, buffer, buffer_x, go_left,
        feat, thr, val, importance, raw_column, learning_rate, reciprocals,
    ):
        """Grow one depth-3 squared-error regression tree on targets ``g``; fill heap arrays.

        ``work`` / ``work_x`` (n_features, n) receive, per feature, the samples and their values in
        sorted order, partitioned by node. Leaf values (Newton steps) are added, shrunk, to
        ``raw_column``. Returns the number of nodes (1 means the tree is a lone leaf).
        """
        n_features, n = order.shape
        inverse = reciprocals
        work[:, :] = order
        work_x[:, :] = sorted_x
        feature_proxy = np.empty(n_features)
        feature_pos = np.zeros(n_features, dtype=np.int64)
        starts = np.zeros(_HEAP_SIZE, dtype=np.int64)
        ends = np.zeros(_HEAP_SIZE, dtype=np.int64)
        active = np.zeros(_HEAP_SIZE, dtype=np.bool_)
        starts[0] = 0
        ends[0] = n
        active[0] = True
        node_count = 0
        for slot in range(_HEAP_SIZE):
            if not active[slot]:
                continue
            node_count += 1
            start = starts[slot]
            end = ends[slot]
            count = end - start
            depth = 0
            j = slot
            while j > 0:
                j = (j - 1) // 2
                depth += 1
            total = 0.0
            sq_total = 0.0
            for p in range(start, end):
                gi = g[work[0, p]]
                total += gi
                sq_total += gi * gi
            impurity = sq_total / count - (total / count) * (total / count)
            is_leaf = depth >= _MAX_DEPTH or count < 2 or impurity <= _EPSILON
            best_proxy = -np.inf
            best_feature = -1
            best_pos = -1
            for d in range(n_features):
                feature_proxy[d] = -np.inf
            if not is_leaf:
                for d in range(n_features):
                    row = work[d]
                    xs = work_x[d]
                    # feature constant in this node (sklearn: last <= first + FEATURE_THRESHOLD)
                    if xs[end - 1] <= xs[start] + _FEATURE_THRESHOLD:
                        continue
                    left_sum = 0.0
                    for p in range(start, end - 1):
                        left_sum += g[row[p]]
                        # only between values that differ by more than FEATURE_THRESHOLD
                        if xs[p + 1] <= xs[p] + _FEATURE_THRESHOLD:
                            continue
                        n_left = p + 1 - start
                        right_sum = total - left_sum
                        # sklearn's proxy S_l^2/n_l + S_r^2/n_r; reciprocals instead of divisions (the
                        # scan is division-bound), which moves it by at most an ulp.
                        proxy = left_sum * left_sum * inverse[n_left] + right_sum * right_sum * inverse[count - n_left]
                        if proxy > feature_proxy[d]:
                            feature_proxy[d] = proxy
                            feature_pos[d] = p + 1
                        if proxy > best_proxy:
                            best_proxy = proxy
                # Among features tied with the best (within rounding), split on the one whose cut
                # spans the widest gap in global ranks, then the lowest index: a choice that does not
                # depend on the order of the latents nor on monotone rescaling of any of them.
                best_gap = -1
                for d in range(n_features):
                    if feature_proxy[d] >= best_proxy * (1.0 - _TIE_TOLERANCE) and feature_proxy[d] > -np.inf:
                        row = work[d]
                        gap = ranks[d, row[feature_pos[d]]] - ranks[d, row[feature_pos[d] - 1]]
                        if gap > best_gap:
                            best_gap = gap
                            best_feature = d
                            best_pos = feature_pos[d]
            if best_feature < 0:
                # leaf: Newton step from the sums of gradient and hessian
                numerator = 0.0
                denominator = 0.0
                for p in range(start, end):
                    i = work[0, p]
                    numerator += g[i]
                    denominator += h[i]
                numerator = numerator / count * leaf_scale
                denominator = denominator / count
                feat[slot] = -1
                leaf_value = 0.0 if abs(denominator) < 1e-150 else numerator / denominator
                val[slot] = leaf_value
                for p in range(start, end):
                    raw_column[work[0, p]] += learning_rate * leaf_value
                continue
            # split: threshold at the float64 midpoint of the float32 neighbours (sklearn's rule)
            row = work[best_feature]
            low = np.float64(work_x[best_feature, best_pos - 1])
            high = np.float64(work_x[best_feature, best_pos])
            threshold = low / 2.0 + high / 2.0
            if threshold == high or threshold == np.inf or threshold == -np.inf:
                threshold = low
            feat[slot] = best_feature
            thr[slot] = threshold
            left_sum = 0.0
            left_sq = 0.0
            for p in range(start, best_pos):
                i = row[p]
                go_left[i] = True
                left_sum += g[i]
                left_sq += g[i] * g[i]
            for p in range(best_pos, end):
                go_left[row[p]] = False
            n_left = best_pos - start
            n_right = end - best_pos
            right_sum = total - left_sum
            right_sq = sq_total - left_sq
            impurity_left = left_sq / n_left - (left_sum / n_left) * (left_sum / n_left)
            impurity_right = right_sq / n_right - (right_sum / n_right) * (right_sum / n_right)
            # Features whose best split ties the chosen one (typically: every feature separates the
            # two samples of a tiny node identically) share its importance equally. scikit-learn
            # gives it to whichever it happens to visit first in a random feature order, so equal
            # shares are the expectation of its importances over that randomness.
            n_tied = 0
            for d in range(n_features):
                if feature_proxy[d] >= best_proxy * (1.0 - _TIE_TOLERANCE):
                    n_tied += 1
            decrease = (count * impurity - n_left * impurity_left - n_right * impurity_right) / n
            for d in range(n_features):
                if feature_proxy[d] >= best_proxy * (1.0 - _TIE_TOLERANCE):
                    importance[d] += decrease / n_tied
            # Stable partition of every feature's sorted list into (left, right). Children of a
            # depth-2 node are leaves: they only need their members, so one list is enough.
            n_partitioned = 1 if depth + 1 >= _MAX_DEPTH else n_features
            for d in range(n_partitioned):
                row_d = work[d]
                xs_d = work_x[d]
                a = start
                b = 0
                for p in range(start, end):
                    i = row_d[p]
                    if go_left[i]:
                        row_d[a] = i
                        xs_d[a] = xs_d[p]
                        a += 1
                    else:
                        buffer[b] = i
                        buffer_x[b] = xs_d[p]
                        b += 1
                for q in range(b):
                    row_d[a + q] = buffer[q]
                    xs_d[a + q] = buffer_x[q]
            left = 2 * slot + 1
            starts[left] = start
            ends[left] = best_pos
            active[left] = True
            starts[left + 1] = best_pos
            ends[left + 1] = end
            active[left + 1] = True
        return node_count

    @njit(cache=True, nogil=True)
    def _leaf_of(x_row, feat, thr):
        j = 0
        while feat[j] >= 0:
            if x_row[feat[j]] <= thr[j]:
                j = 2 * j + 1
            else:
                j = 2 * j + 2
        return j

    @njit(cache=True, nogil=True)
    def _fit(order, sorted_x, ranks, y, n_classes, n_stages, learning_rate, raw, feature, threshold, value, importance_sum):
        n_features, n = order.shape
        n_columns = raw.shape[1]
        leaf_scale = 1.0 if n_columns == 1 else (n_classes - 1) / n_classes
        grad = np.empty((n, n_columns))
        hess = np.empty((n, n_columns))
        per_column_importance = np.zeros((n_columns, n_features))
        relevant = np.zeros(n_columns, dtype=np.int64)
        work = np.empty((n_features, n), dtype=np.int32)
        work_x = np.empty((n_features, n), dtype=np.float32)
        buffer = np.empty(n, dtype=np.int32)
        buffer_x = np.empty(n, dtype=np.float32)
        go_left = np.zeros(n, dtype=np.bool_)
        tree_importance = np.zeros(n_features)
        raw_column = np.empty(n)
        reciprocals = np.empty(n + 1)
        reciprocals[0] = 0.0
        for m in range(1, n + 1):
            reciprocals[m] = 1.0 / m
        for stage in range(n_stages):
            _negative_gradient(raw, y, n_classes, grad, hess)
            for k in range(n_columns):
                tree_importance[:] = 0.0
                g = np.ascontiguousarray(grad[:, k])
                hk = np.ascontiguousarray(hess[:, k])
                raw_column[:] = raw[:, k]
                nodes = _grow_tree(
                    order, sorted_x, ranks, g, hk, leaf_scale, work, work_x, buffer, buffer_x, go_left,
                    feature[stage, k], threshold[stage, k], value[stage, k], tree_importance,
                    raw_column, learning_rate, reciprocals,
                )
                raw[:, k] = raw_column
                if nodes > 1:
                    relevant[k] += 1
                    for d in range(n_features):
                        per_column_importance[k, d] += tree_importance[d]
        for k in range(n_columns):
            for d in range(n_features):
                importance_sum[d] += per_column_importance[k, d]
        return relevant.sum()

    @njit(cache=True, nogil=True)
    def _predict_raw(x, feature, threshold, value, learning_rate, raw):
        n = x.shape[0]
        n_stages, n_columns, _ = feature.shape
        for i in range(n):
            for stage in range(n_stages):
                for k in range(n_columns):
                    leaf = _leaf_of(x[i], feature[stage, k], threshold[stage, k])
                    raw[i, k] += learning_rate * value[stage, k, leaf]
