"""Gradient-boosted trees that reproduce scikit-learn's ``GradientBoostingClassifier()`` defaults, fast.

DCI (Eastwood & Williams, 2018) as computed by disentanglement_lib reads its importance matrix off
one ``sklearn.ensemble.GradientBoostingClassifier()`` per factor, with every default: 100 stages,
learning rate 0.1, depth-3 regression trees with exact greedy splits, log-loss (one tree per class
and stage for K > 2 classes, a single tree for K = 2), prior log-odds initialisation and one
Newton step per leaf. Swapping in a histogram booster (LightGBM, XGBoost) changes the number, so this
module re-implements *that* algorithm, step for step, and only changes how the work is organised:

* every feature is sorted once per fit (scikit-learn sorts again in every node);
* a node keeps, per feature, its samples in sorted order (stable, branch-free partition when it
  splits), so the best split of a node is one linear scan per feature; four features are scanned
  together with the running best kept by selects (the "better so far" branch is unpredictable);
* the roots of all trees of a stage share one sorted order, so each feature is walked once for all
  of them (one running sum per tree);
* all stages run in one compiled call; the trees of a stage (independent given its gradients), the
  gradients and the root scans are spread over numba's threads, and so is prediction;
* the raw scores accumulated while fitting are exactly the training set's predictions.

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
caller falls back to scikit-learn (see :func:`numba_available`). None of the speed-ups changes a
number: each sum is still taken term by term in the same order, so trees, importances and
predictions are bit-for-bit those of the plain one-tree-at-a-time scan.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

try:  # numba is what makes the tree kernels fast; without it callers use scikit-learn instead.
    from numba import get_num_threads, njit, prange

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
_LITTLE_ENDIAN = sys.byteorder == "little"  # where the int32 words of a packed int64 sit
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
    # Threads for the trees of a stage (numba's pool; NUMBA_NUM_THREADS or numba.set_num_threads).
    n_lanes = max(1, min(get_num_threads(), 1 if n_classes == 2 else n_classes))
    # (sample, value) pairs packed in one int64 per position (see _grow_tree)
    packed = np.empty(order.shape, dtype=np.int64)
    packed.view(np.int32)[:, 0::2] = order
    packed.view(np.float32)[:, 1::2] = sorted_values.T
    n_relevant = _fit(
        order,
        np.ascontiguousarray(sorted_values.T),
        packed,
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
        n_lanes,
    )
    if n_relevant == 0:
        importances = np.zeros(x32.shape[1], dtype=np.float64)
    else:
        mean_importance = importance_sum / n_relevant
        importances = mean_importance / np.sum(mean_importance)
    return BoostedTrees(classes, init_raw, feature, threshold, value, float(learning_rate), importances, raw)


if _HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _negative_gradient(raw, y, n_classes, grad, hess, row_start, row_stop, exps):
        """``y - p`` and ``p (1 - p)`` for samples [row_start, row_stop) and every tree column.

        p is the sigmoid or softmax of raw (``exps``: scratch of one row); the hessian uses
        ``p = y - (y - p)`` as scikit-learn's leaf update recomputes it.
        """
        n_columns = raw.shape[1]
        for i in range(row_start, row_stop):
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
                    e = np.exp(raw[i, k] - m)
                    exps[k] = e
                    total += e
                for k in range(n_columns):
                    p = exps[k] / total
                    t = 1.0 if y[i] == k else 0.0
                    g = t - p
                    q = t - g
                    grad[i, k] = g
                    hess[i, k] = q * (1.0 - q)

    @njit(cache=True, nogil=True)
    def _best_cuts4(work, g, d0, d1, d2, d3, start, end, total, inverse, out_proxy, out_pos):
        """Best squared-error proxy of the cuts of four features in rows [start, end), and its position.

        Per feature this is scikit-learn's scan: a running left sum, a cut only between values that
        differ by more than FEATURE_THRESHOLD, the proxy ``S_l^2/n_l + S_r^2/n_r`` and the first
        strictly best cut. Four features walk together, with the best kept by selects instead of
        branches: the branch on "better than the best so far" is unpredictable on real gradients,
        and four independent running sums overlap in the CPU. Every number is computed exactly as
        in a scan of one feature alone.
        """
        count = end - start
        # work packs (sample, value) pairs: sample p of a list at 2p of the uint32 view, its value at
        # 2p + 1 of the float32 view. Unsigned indices spare numba's negative-index wraparound code.
        samples = work.view(np.uint32)
        values = work.view(np.float32)
        row0 = samples[d0]
        row1 = samples[d1]
        row2 = samples[d2]
        row3 = samples[d3]
        xs0 = values[d0]
        xs1 = values[d1]
        xs2 = values[d2]
        xs3 = values[d3]
        sum0 = 0.0
        sum1 = 0.0
        sum2 = 0.0
        sum3 = 0.0
        best0 = -np.inf
        best1 = -np.inf
        best2 = -np.inf
        best3 = -np.inf
        pos0 = 0.0
        # each list's value at the current position, carried to the next step (one load per step)
        x0 = xs0[2 * start + 1]
        x1 = xs1[2 * start + 1]
        x2 = xs2[2 * start + 1]
        x3 = xs3[2 * start + 1]
        pos1 = 0.0
        pos2 = 0.0
        pos3 = 0.0
        for p in range(start, end - 1):
            n_left = p + 1 - start
            # reciprocals instead of divisions, which moves the proxy by at most an ulp
            inverse_left = inverse[np.uint64(n_left)]
            inverse_right = inverse[np.uint64(count - n_left)]
            # the position as a float: selects of floats stay branch-free, while the compiler turns
            # selects of integers in a loop back into (mispredicted) branches
            cut = np.float64(p + 1)
            sum0 += g[row0[2 * p]]
            sum1 += g[row1[2 * p]]
            sum2 += g[row2[2 * p]]
            sum3 += g[row3[2 * p]]
            right0 = total - sum0
            right1 = total - sum1
            right2 = total - sum2
            right3 = total - sum3
            proxy0 = sum0 * sum0 * inverse_left + right0 * right0 * inverse_right
            proxy1 = sum1 * sum1 * inverse_left + right1 * right1 * inverse_right
            proxy2 = sum2 * sum2 * inverse_left + right2 * right2 * inverse_right
            proxy3 = sum3 * sum3 * inverse_left + right3 * right3 * inverse_right
            # a cut only between values more than FEATURE_THRESHOLD apart (the negation of
            # sklearn's skip test x[p+1] <= x[p] + threshold: features are finite)
            next0 = xs0[2 * p + 3]
            better0 = (proxy0 > best0) & (next0 > x0 + _FEATURE_THRESHOLD)
            x0 = next0
            next1 = xs1[2 * p + 3]
            better1 = (proxy1 > best1) & (next1 > x1 + _FEATURE_THRESHOLD)
            x1 = next1
            next2 = xs2[2 * p + 3]
            better2 = (proxy2 > best2) & (next2 > x2 + _FEATURE_THRESHOLD)
            x2 = next2
            next3 = xs3[2 * p + 3]
            better3 = (proxy3 > best3) & (next3 > x3 + _FEATURE_THRESHOLD)
            x3 = next3
            best0 = proxy0 if better0 else best0
            best1 = proxy1 if better1 else best1
            best2 = proxy2 if better2 else best2
            best3 = proxy3 if better3 else best3
            pos0 = cut if better0 else pos0
            pos1 = cut if better1 else pos1
            pos2 = cut if better2 else pos2
            pos3 = cut if better3 else pos3
        out_proxy[0] = best0
        out_proxy[1] = best1
        out_proxy[2] = best2
        out_proxy[3] = best3
        out_pos[0] = np.int64(pos0)
        out_pos[1] = np.int64(pos1)
        out_pos[2] = np.int64(pos2)
        out_pos[3] = np.int64(pos3)

    @njit(cache=True, nogil=True)
    def _grow_tree(
        packed, ranks, g, h, leaf_scale, work, buffer, go_left,
        feat, thr, val, importance, raw_column, learning_rate, reciprocals,
        root_total, root_sq_total, root_proxy, root_pos,
    ):
        """Grow one depth-3 squared-error regression tree on targets ``g``; fill heap arrays.

        ``packed`` (n_features, n) holds per feature the (sample, float32 value) pairs in sorted order,
        packed in one int64 so that a partition moves one word per entry; ``work`` receives them
        partitioned by node. The root's sums and per-feature best splits come in
        ``root_*`` (see :func:`_scan_roots`). Leaf values (Newton steps) are added, shrunk, to
        ``raw_column``. Returns the number of nodes (1 means the tree is a lone leaf).
        """
        n_features, n = packed.shape
        inverse = reciprocals
        work_samples = work.view(np.int32)
        feature_proxy = np.empty(n_features)
        feature_pos = np.zeros(n_features, dtype=np.int64)
        group = np.empty(4, dtype=np.int64)
        group_proxy = np.empty(4)
        group_pos = np.empty(4, dtype=np.int64)
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
            # The root reads the fit's sorted lists; its split writes the partitioned copies to work.
            source = packed if slot == 0 else work
            rows = source.view(np.int32)  # sample of position p at [d, 2p]
            values = source.view(np.float32)  # its value at [d, 2p + 1]
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
            if slot == 0:
                total = root_total
                sq_total = root_sq_total
            else:
                for p in range(start, end):
                    gi = g[work_samples[0, 2 * p]]
                    total += gi
                    sq_total += gi * gi
            impurity = sq_total / count - (total / count) * (total / count)
            is_leaf = depth >= _MAX_DEPTH or count < 2 or impurity <= _EPSILON
            best_proxy = -np.inf
            best_feature = -1
            best_pos = -1
            for d in range(n_features):
                feature_proxy[d] = -np.inf
            if not is_leaf and slot == 0:
                for d in range(n_features):
                    feature_proxy[d] = root_proxy[d]
                    feature_pos[d] = root_pos[d]
                    if root_proxy[d] > best_proxy:
                        best_proxy = root_proxy[d]
            elif not is_leaf:
                # Features in groups of four (the last group repeats its last feature to fill up).
                for d_first in range(0, n_features, 4):
                    group[0] = d_first
                    for q in range(1, 4):
                        group[q] = min(d_first + q, n_features - 1)
                    _best_cuts4(
                        work, g, group[0], group[1], group[2], group[3], start, end, total, inverse,
                        group_proxy, group_pos,
                    )
                    for q in range(4):
                        d = group[q]
                        # feature constant in this node (sklearn: last <= first + FEATURE_THRESHOLD):
                        # no cut of it passes the threshold test, its proxy stayed -inf
                        if group_proxy[q] > -np.inf:
                            feature_proxy[d] = group_proxy[q]
                            feature_pos[d] = group_pos[q]
                for d in range(n_features):
                    if feature_proxy[d] > best_proxy:
                        best_proxy = feature_proxy[d]
            if not is_leaf:
                # Among features tied with the best (within rounding), split on the one whose cut
                # spans the widest gap in global ranks, then the lowest index: a choice that does not
                # depend on the order of the latents nor on monotone rescaling of any of them.
                best_gap = -1
                for d in range(n_features):
                    if feature_proxy[d] >= best_proxy * (1.0 - _TIE_TOLERANCE) and feature_proxy[d] > -np.inf:
                        row = rows[d]
                        gap = ranks[d, row[2 * feature_pos[d]]] - ranks[d, row[2 * feature_pos[d] - 2]]
                        if gap > best_gap:
                            best_gap = gap
                            best_feature = d
                            best_pos = feature_pos[d]
            if best_feature < 0:
                # leaf: Newton step from the sums of gradient and hessian
                numerator = 0.0
                denominator = 0.0
                for p in range(start, end):
                    i = rows[0, 2 * p]
                    numerator += g[i]
                    denominator += h[i]
                numerator = numerator / count * leaf_scale
                denominator = denominator / count
                feat[slot] = -1
                leaf_value = 0.0 if abs(denominator) < 1e-150 else numerator / denominator
                val[slot] = leaf_value
                for p in range(start, end):
                    raw_column[rows[0, 2 * p]] += learning_rate * leaf_value
                continue
            # split: threshold at the float64 midpoint of the float32 neighbours (sklearn's rule)
            row = rows[best_feature]
            low = np.float64(values[best_feature, 2 * best_pos - 1])
            high = np.float64(values[best_feature, 2 * best_pos + 1])
            threshold = low / 2.0 + high / 2.0
            if threshold == high or threshold == np.inf or threshold == -np.inf:
                threshold = low
            feat[slot] = best_feature
            thr[slot] = threshold
            left_sum = 0.0
            left_sq = 0.0
            for p in range(start, best_pos):
                i = row[2 * p]
                go_left[i] = 1
                left_sum += g[i]
                left_sq += g[i] * g[i]
            for p in range(best_pos, end):
                go_left[row[2 * p]] = 0
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
                source_d = source[d]
                work_d = work[d]
                a = start
                b = 0
                for p in range(start, end):
                    # Branch-free: the side is a coin flip for the CPU's predictor, so write the
                    # entry to both places and advance only the matching cursor (a <= p, so the
                    # in-place case never overwrites an entry before reading it). The sample is
                    # the entry's int32 word at even index, taken from the loaded word itself.
                    entry = np.uint64(source_d[p])
                    work_d[a] = source_d[p]
                    buffer[b] = source_d[p]
                    if _LITTLE_ENDIAN:
                        sample = entry & np.uint64(0xFFFFFFFF)
                    else:  # pragma: no cover - big-endian hosts
                        sample = entry >> np.uint64(32)
                    side = np.int64(go_left[sample])
                    a += side
                    b += 1 - side
                for q in range(b):
                    work_d[a + q] = buffer[q]
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
    def _root_sums(order, grad, total, sq_total):
        """Sum and sum of squares of every tree column's gradients over all samples, in the order of
        feature 0 (the order a node's sums are taken in)."""
        n_columns = grad.shape[1]
        for k in range(n_columns):
            total[k] = 0.0
            sq_total[k] = 0.0
        row = order[0]
        for p in range(order.shape[1]):
            gi = grad[row[p]]
            for k in range(n_columns):
                total[k] += gi[k]
                sq_total[k] += gi[k] * gi[k]

    @njit(cache=True, nogil=True)
    def _root_cuts(row, xs, grad, reciprocals, total, proxies, positions, left_sums):
        """Best cut of one feature at the roots of all trees of a stage, in one pass.

        Every tree of a stage starts from all samples, so its root sees the same sorted order per
        feature; walking it once and updating one running sum per tree (a contiguous row of
        ``grad``) replaces one walk per tree. Each tree's sums are taken in the same order as a
        walk of its own would take them, so every number is the same.
        """
        n = row.shape[0]
        n_columns = grad.shape[1]
        for k in range(n_columns):
            proxies[k] = -np.inf
            positions[k] = 0
            left_sums[k] = 0.0
        # feature constant (sklearn: last <= first + FEATURE_THRESHOLD): no split on it
        if xs[n - 1] <= xs[0] + _FEATURE_THRESHOLD:
            return
        for p in range(n - 1):
            gi = grad[row[p]]
            for k in range(n_columns):
                left_sums[k] += gi[k]
            # only between values that differ by more than FEATURE_THRESHOLD
            if xs[p + 1] <= xs[p] + _FEATURE_THRESHOLD:
                continue
            inverse_left = reciprocals[p + 1]
            inverse_right = reciprocals[n - p - 1]
            for k in range(n_columns):
                left_sum = left_sums[k]
                right_sum = total[k] - left_sum
                proxy = left_sum * left_sum * inverse_left + right_sum * right_sum * inverse_right
                better = proxy > proxies[k]
                proxies[k] = proxy if better else proxies[k]
                positions[k] = p + 1 if better else positions[k]

    @njit(cache=True, nogil=True, parallel=True)
    def _fit(
        order, sorted_x, packed, ranks, y, n_classes, n_stages, learning_rate, raw, feature, threshold, value,
        importance_sum, n_lanes,
    ):
        """All stages of one fit. The trees of a stage are independent given the stage's gradients,
        so ``n_lanes`` threads grow them (tree k on lane k mod n_lanes, each lane with its own
        scratch arrays); every tree is computed exactly as it would be alone."""
        n_features, n = order.shape
        n_columns = raw.shape[1]
        leaf_scale = 1.0 if n_columns == 1 else (n_classes - 1) / n_classes
        grad = np.empty((n, n_columns))
        hess = np.empty((n, n_columns))
        per_column_importance = np.zeros((n_columns, n_features))
        relevant = np.zeros(n_columns, dtype=np.int64)
        work = np.empty((n_lanes, n_features, n), dtype=np.int64)
        buffer = np.empty((n_lanes, n), dtype=np.int64)
        go_left = np.zeros((n_lanes, n), dtype=np.uint8)
        tree_importance = np.zeros((n_lanes, n_features))
        raw_column = np.empty((n_lanes, n))
        g = np.empty((n_lanes, n))
        hk = np.empty((n_lanes, n))
        root_total = np.empty(n_columns)
        root_sq_total = np.empty(n_columns)
        root_proxy = np.empty((n_features, n_columns))
        root_pos = np.empty((n_features, n_columns), dtype=np.int64)
        left_sums = np.empty((n_features, n_columns))
        exps = np.empty((n_lanes, n_columns))
        rows_per_lane = (n + n_lanes - 1) // n_lanes
        reciprocals = np.empty(n + 1)
        reciprocals[0] = 0.0
        for m in range(1, n + 1):
            reciprocals[m] = 1.0 / m
        for stage in range(n_stages):
            for lane in prange(n_lanes):
                _negative_gradient(
                    raw, y, n_classes, grad, hess, lane * rows_per_lane, min(n, (lane + 1) * rows_per_lane), exps[lane]
                )
            _root_sums(order, grad, root_total, root_sq_total)
            for d in prange(n_features):
                _root_cuts(order[d], sorted_x[d], grad, reciprocals, root_total, root_proxy[d], root_pos[d], left_sums[d])
            for lane in prange(n_lanes):
                for k in range(lane, n_columns, n_lanes):
                    _grow_column(
                        packed, ranks, grad, hess, k, leaf_scale, work[lane],
                        buffer[lane], go_left[lane], feature[stage, k], threshold[stage, k],
                        value[stage, k], tree_importance[lane], raw_column[lane], g[lane], hk[lane], raw,
                        learning_rate, reciprocals, root_total, root_sq_total, root_proxy, root_pos,
                        per_column_importance, relevant,
                    )
        for k in range(n_columns):
            for d in range(n_features):
                importance_sum[d] += per_column_importance[k, d]
        return relevant.sum()

    @njit(cache=True, nogil=True)
    def _grow_column(
        packed, ranks, grad, hess, k, leaf_scale, work, buffer, go_left,
        feat, thr, val, tree_importance, raw_column, g, hk, raw, learning_rate, reciprocals,
        root_total, root_sq_total, root_proxy, root_pos, per_column_importance, relevant,
    ):
        """Grow the tree of column ``k`` of a stage and add its shrunk leaf values to ``raw[:, k]``."""
        n, n_features = raw.shape[0], packed.shape[0]
        tree_importance[:] = 0.0
        for i in range(n):
            g[i] = grad[i, k]
            hk[i] = hess[i, k]
            raw_column[i] = raw[i, k]
        nodes = _grow_tree(
            packed, ranks, g, hk, leaf_scale, work, buffer, go_left,
            feat, thr, val, tree_importance, raw_column, learning_rate, reciprocals,
            root_total[k], root_sq_total[k], root_proxy[:, k], root_pos[:, k],
        )
        for i in range(n):
            raw[i, k] = raw_column[i]
        if nodes > 1:
            relevant[k] += 1
            for d in range(n_features):
                per_column_importance[k, d] += tree_importance[d]

    @njit(cache=True, nogil=True, parallel=True)
    def _predict_raw(x, feature, threshold, value, learning_rate, raw):
        """Add every tree's shrunk leaf value to ``raw``, stage after stage for each sample and column.

        Samples go in blocks (in parallel): within a block one tree at a time visits all its
        samples, so the tree stays in cache; each ``raw[i, k]`` still receives its terms in stage
        order, as in a loop over samples.
        """
        n = x.shape[0]
        n_stages, n_columns, _ = feature.shape
        block = 256
        n_blocks = (n + block - 1) // block
        for b in prange(n_blocks):
            low = b * block
            high = min(n, low + block)
            for stage in range(n_stages):
                for k in range(n_columns):
                    feat = feature[stage, k]
                    thr = threshold[stage, k]
                    val = value[stage, k]
                    for i in range(low, high):
                        raw[i, k] += learning_rate * val[_leaf_of(x[i], feat, thr)]
