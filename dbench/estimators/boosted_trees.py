"""Gradient-boosted trees that reproduce scikit-learn's ``GradientBoostingClassifier()`` defaults, fast.

DCI (Eastwood & Williams, 2018) as computed by disentanglement_lib reads its importance matrix off
one ``sklearn.ensemble.GradientBoostingClassifier()`` per factor, with every default: 100 stages,
learning rate 0.1, depth-3 regression trees with exact greedy splits, log-loss (one tree per class
and stage for K > 2 classes, a single tree for K = 2), prior log-odds initialisation and one
Newton step per leaf. Swapping in a histogram booster (LightGBM, XGBoost) changes the number, so this
module re-implements *that* algorithm, step for step, and only changes how the work is organised:

* every feature is sorted once per fit (scikit-learn sorts again in every node);
* a node keeps, per feature, its samples in sorted order (a stable, branch-free partition into the
  other of two buffers when it splits), so the best split of a node is one linear scan per feature;
* the scan is split in two passes: running sums of four features at a time, keeping per block of
  32 cuts the first sum and the range of the sums; then, per feature, an upper bound of every
  block's proxy improvements (:func:`_block_bound`), and exact proxies only in the blocks whose
  bound can still beat the best cut found (typically a few percent of them). The bound is
  rigorous with a margin far above rounding, so the chosen cut is the plain scan's;
* all stages run in one compiled call; the trees of a stage (independent given its gradients)
  and the gradients are spread over numba's threads, and so is prediction, which walks complete
  (padded) trees without branches;
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
number: each sum is still taken term by term in the same order and every proxy that decides a
split is computed by the same formula, so trees, importances and predictions are bit-for-bit those
of the plain one-tree-at-a-time scan (tests/test_boosted_trees.py checks this against a direct
scan).
"""

from __future__ import annotations

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
_HEAP_SIZE = 2 ** (_MAX_DEPTH + 1) - 1  # 15 slots: a full binary tree of depth 3 in heap order
# Cuts per block of the pruned split scan (see _best_cuts4): small enough for tight bounds, large
# enough that a bound costs little next to the block's sums.
_BLOCK = 32


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
        # features as rows (n_features, n) and scores as (T, n): a tree visits a block of samples
        # with contiguous loads
        x32 = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
        raw = np.empty((self.init_raw.size, x32.shape[1]), dtype=np.float64)
        raw[:] = self.init_raw[:, None]
        split_feature, split_threshold, leaf_value = _complete_trees(self.feature, self.threshold, self.value)
        _predict_raw(x32, split_feature, split_threshold, leaf_value, self.learning_rate, raw)
        return np.ascontiguousarray(raw.T)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels for ``x``, from raw predictions exactly as scikit-learn decides them."""
        return self.classes[_raw_to_class(self.decision_function(x))]

    def predict_train(self) -> np.ndarray:
        """Class labels for the training set (from the raw predictions accumulated while fitting)."""
        return self.classes[_raw_to_class(self.train_raw)]


def _complete_trees(
    feature: np.ndarray, threshold: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every tree rewritten as a complete depth-3 tree: 7 splits and 8 leaves.

    A leaf above depth 3 becomes a split that always goes left (threshold +inf; features are
    finite) down to a leaf holding its value, so prediction is three branch-free steps per tree
    and gives the same leaf value as walking the original tree.
    """
    n_internal = 2**_MAX_DEPTH - 1
    split_feature = np.zeros(feature.shape[:2] + (n_internal,), dtype=np.int32)
    split_threshold = np.full(feature.shape[:2] + (n_internal,), np.inf)
    leaf_value = np.zeros(feature.shape[:2] + (n_internal + 1,))
    # value each heap slot passes down: its own value at a leaf, else its children's
    feature = feature.copy()  # marks the descendants of leaves as leaves too
    carried = value.copy()
    for slot in range(_HEAP_SIZE):
        is_leaf = feature[..., slot] < 0
        if slot < n_internal:
            split_feature[..., slot] = np.where(is_leaf, 0, feature[..., slot])
            split_threshold[..., slot] = np.where(is_leaf, np.inf, threshold[..., slot])
            for child in (2 * slot + 1, 2 * slot + 2):
                carried[..., child] = np.where(is_leaf, carried[..., slot], carried[..., child])
                feature[..., child] = np.where(is_leaf, -1, feature[..., child])
        else:
            leaf_value[..., slot - n_internal] = carried[..., slot]
    return split_feature, split_threshold, leaf_value


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
    # Feature columns sorted once per fit; ties broken by sample index (stable). Lists hold sample
    # indices (unsigned: no negative-index wraparound code in the kernels); values are looked up in
    # the features stored one row per feature.
    order = np.ascontiguousarray(np.argsort(x32, axis=0, kind="stable").T.astype(np.uint32))
    features_by_row = np.ascontiguousarray(x32.T)
    feature = np.full((n_stages, n_columns, _HEAP_SIZE), -1, dtype=np.int32)
    threshold = np.zeros((n_stages, n_columns, _HEAP_SIZE), dtype=np.float64)
    value = np.zeros((n_stages, n_columns, _HEAP_SIZE), dtype=np.float64)
    importance_sum = np.zeros(x32.shape[1], dtype=np.float64)
    raw = np.empty((n_columns, x32.shape[0]), dtype=np.float64)  # one row per tree column
    raw[:] = init_raw[:, None]
    # Dense rank of every value among its feature's distinct values (for tie-breaking between features).
    order_by_column = order.T.astype(np.intp)
    sorted_values = np.take_along_axis(x32, order_by_column, axis=0)
    new_value = np.concatenate([np.zeros((1, x32.shape[1]), bool), sorted_values[1:] != sorted_values[:-1]])
    ranks = np.empty(order.shape, dtype=np.int32)
    np.put_along_axis(ranks.T, order_by_column, np.cumsum(new_value, axis=0, dtype=np.int32), axis=0)
    # Threads for the trees of a stage (numba's pool; NUMBA_NUM_THREADS or numba.set_num_threads).
    n_lanes = max(1, min(get_num_threads(), 1 if n_classes == 2 else n_classes))
    n_relevant = _fit(
        order,
        features_by_row,
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
    return BoostedTrees(
        classes, init_raw, feature, threshold, value, float(learning_rate), importances, np.ascontiguousarray(raw.T)
    )


if _HAVE_NUMBA:

    @njit(cache=True, nogil=True)
    def _negative_gradient(raw, y, n_classes, grad, hess, row_start, row_stop, scratch):
        """``y - p`` and ``p (1 - p)`` for samples [row_start, row_stop) and every tree column.

        p is the sigmoid or softmax of ``raw`` (T, n); the hessian uses ``p = y - (y - p)`` as
        scikit-learn's leaf update recomputes it. Results go to ``grad`` and ``hess`` (T, n), one
        contiguous row per tree. Samples go in blocks, each loop running along samples so that
        everything but ``exp`` vectorises; a sample's softmax denominator still adds its terms in
        class order. ``scratch``: (T + 2, block).
        """
        n_columns = raw.shape[0]
        if n_columns == 1:
            for i in range(row_start, row_stop):
                r = raw[0, i]
                # expit, written to stay finite for large |r|
                if r >= 0:
                    p = 1.0 / (1.0 + np.exp(-r))
                else:
                    e = np.exp(r)
                    p = e / (1.0 + e)
                t = 1.0 if y[i] == 1 else 0.0
                g = t - p
                q = t - g
                grad[0, i] = g
                hess[0, i] = q * (1.0 - q)
            return
        block = scratch.shape[1]
        largest = scratch[n_columns]
        denominator = scratch[n_columns + 1]
        for low in range(row_start, row_stop, block):
            size = min(row_stop, low + block) - low
            for s in range(size):
                largest[s] = raw[0, low + s]
                denominator[s] = 0.0
            for k in range(1, n_columns):
                for s in range(size):
                    r = raw[k, low + s]
                    largest[s] = r if r > largest[s] else largest[s]
            for k in range(n_columns):
                exps = scratch[k]
                for s in range(size):
                    e = np.exp(raw[k, low + s] - largest[s])
                    exps[s] = e
                    denominator[s] += e
            for k in range(n_columns):
                exps = scratch[k]
                for s in range(size):
                    i = low + s
                    p = exps[s] / denominator[s]
                    t = 1.0 if y[i] == k else 0.0
                    g = t - p
                    q = t - g
                    grad[k, i] = g
                    hess[k, i] = q * (1.0 - q)

    @njit(cache=True, nogil=True)
    def _block_bound(low, high, total, count, first_left, last_left, inverse):
        """An upper bound of the computed proxy ``S^2/n_l + (T-S)^2/n_r`` over a block of cuts.

        The block's cuts have ``n_l`` in [first_left, last_left] and left sums ``S`` in [low, high].
        For ``m`` samples with sum ``T`` the proxy equals ``T^2/m + m (S - n_l T/m)^2 / (n_l (m - n_l))``:
        the deviation ``S - n_l T/m`` is linear in (S, n_l), so its largest magnitude over the box
        is at a corner, and ``m / (n_l (m - n_l))`` is convex in ``n_l``, so its largest value is
        at an end. The margins (relative 1e-12, and 1e-12 |T| on the deviation) are thousands of
        times the rounding of either formula, so no cut whose computed proxy could reach the best
        one is ever skipped.
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

    @njit(cache=True, nogil=True)
    def _best_cuts4(lists, x, g, features, start, end, total, inverse, out_proxy, out_pos, block_first, block_low, block_high):
        """Best squared-error proxy of the cuts of four features in rows [start, end), and its position.

        Per feature this finds what scikit-learn's scan finds: the left sum ``S`` of every cut taken
        term by term in list order, a cut only between values that differ by more than
        FEATURE_THRESHOLD, the proxy ``S^2/n_l + (T-S)^2/n_r`` and the first strictly best cut.
        It is organised in two passes so that most proxies are never computed:

        1. the running sums of four features walk together (four independent additions overlap in
           the CPU), keeping for each block of ``_BLOCK`` cuts its first sum and the range of its sums;
        2. per feature, each block gets an upper bound on its proxies (:func:`_block_bound`); the
           block with the highest bound is evaluated first, re-adding its terms from its first sum,
           then every other block whose bound reaches the best proxy found so far. Ties go to the
           earlier cut, so the result is the first strictly best cut of the plain scan, bit for bit.

        A feature repeated in ``features`` (to fill a group of four) is scanned once.
        """
        count = end - start
        n_cuts = count - 1
        n_blocks = (n_cuts + _BLOCK - 1) // _BLOCK
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
            low = start + b * _BLOCK
            high = min(low + _BLOCK, end - 1)
            block_first[0, b] = sum0
            block_first[1, b] = sum1
            block_first[2, b] = sum2
            block_first[3, b] = sum3
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
            block_low[0, b] = min0
            block_low[1, b] = min1
            block_low[2, b] = min2
            block_low[3, b] = min3
            block_high[0, b] = max0
            block_high[1, b] = max1
            block_high[2, b] = max2
            block_high[3, b] = max3
        for f in range(4):
            if f > 0 and features[f] == features[f - 1]:
                out_proxy[f] = out_proxy[f - 1]
                out_pos[f] = out_pos[f - 1]
                continue
            xs = x[features[f]]
            rows = lists[features[f]]
            bounds = block_low[f]  # overwritten with the bounds
            top = 0
            for b in range(n_blocks):
                low = start + b * _BLOCK
                high = min(low + _BLOCK, end - 1)
                bounds[b] = _block_bound(block_low[f, b], block_high[f, b], total, count, low + 1 - start, high - start, inverse)
                if bounds[b] > bounds[top]:
                    top = b
            best = -np.inf
            best_pos = end
            for t in range(n_blocks + 1):
                b = top if t == 0 else t - 1
                if (t > 0 and b == top) or bounds[b] < best:
                    continue
                low = start + b * _BLOCK
                high = min(low + _BLOCK, end - 1)
                left = block_first[f, b]  # the sum before the block; its terms are re-added in order
                for p in range(low, high):
                    q = np.uint64(p)
                    left += g[rows[q]]
                    n_left = p + 1 - start
                    right = total - left
                    proxy = left * left * inverse[np.uint64(n_left)] + right * right * inverse[np.uint64(count - n_left)]
                    # a cut only between values more than FEATURE_THRESHOLD apart (the negation of
                    # sklearn's skip test x[p+1] <= x[p] + threshold: features are finite)
                    if (proxy > best or (proxy == best and p + 1 < best_pos)) and (
                        xs[rows[q + np.uint64(1)]] > xs[rows[q]] + _FEATURE_THRESHOLD
                    ):
                        best = proxy
                        best_pos = p + 1
            out_proxy[f] = best
            out_pos[f] = best_pos if best > -np.inf else 0

    @njit(cache=True, nogil=True)
    def _grow_tree(
        order, x, ranks, g, h, leaf_scale, work, go_left,
        feat, thr, val, importance, raw_column, learning_rate, inverse,
        block_first, block_low, block_high,
    ):
        """Grow one depth-3 squared-error regression tree on targets ``g``; fill heap arrays.

        ``order`` (n_features, n) holds per feature the samples in sorted order and ``x`` (n_features,
        n) the float32 features; ``work`` (2, n_features, n) receives the sorted lists partitioned
        by node, depth 1 and 3 in ``work[0]``, depth 2 in ``work[1]``.
        Leaf values (Newton steps) are added, shrunk, to ``raw_column``. Returns the number of
        nodes (1 means the tree is a lone leaf). ``inverse[m]`` is ``1 / m``.
        """
        n_features, n = order.shape
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
            depth = 0
            j = slot
            while j > 0:
                j = (j - 1) // 2
                depth += 1
            rows = order if slot == 0 else work[(depth - 1) % 2]  # sample at position p of list d: rows[d, p]
            start = starts[slot]
            end = ends[slot]
            count = end - start
            # sums in the order of feature 0's list
            total = 0.0
            sq_total = 0.0
            for p in range(start, end):
                gi = g[rows[0, p]]
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
                # Features in groups of four (the last group repeats its last feature to fill up).
                for d_first in range(0, n_features, 4):
                    group[0] = d_first
                    for q in range(1, 4):
                        group[q] = min(d_first + q, n_features - 1)
                    _best_cuts4(
                        rows, x, g, group, start, end, total, inverse, group_proxy, group_pos, block_first,
                        block_low, block_high,
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
                # Among features tied with the best (within rounding), split on the one whose cut
                # spans the widest gap in global ranks, then the lowest index: a choice that does not
                # depend on the order of the latents nor on monotone rescaling of any of them.
                best_gap = -1
                for d in range(n_features):
                    if feature_proxy[d] >= best_proxy * (1.0 - _TIE_TOLERANCE) and feature_proxy[d] > -np.inf:
                        row = rows[d]
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
                    i = rows[0, p]
                    numerator += g[i]
                    denominator += h[i]
                numerator = numerator / count * leaf_scale
                denominator = denominator / count
                feat[slot] = -1
                leaf_value = 0.0 if abs(denominator) < 1e-150 else numerator / denominator
                val[slot] = leaf_value
                for p in range(start, end):
                    raw_column[rows[0, p]] += learning_rate * leaf_value
                continue
            # split: threshold at the float64 midpoint of the float32 neighbours (sklearn's rule)
            row = rows[best_feature]
            low = np.float64(x[best_feature, row[best_pos - 1]])
            high = np.float64(x[best_feature, row[best_pos]])
            threshold = low / 2.0 + high / 2.0
            if threshold == high or threshold == np.inf or threshold == -np.inf:
                threshold = low
            feat[slot] = best_feature
            thr[slot] = threshold
            left_sum = 0.0
            left_sq = 0.0
            for p in range(start, best_pos):
                i = row[p]
                go_left[i] = 1
                left_sum += g[i]
                left_sq += g[i] * g[i]
            for p in range(best_pos, end):
                go_left[row[p]] = 0
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
            # Stable partition of every feature's sorted list into (left, right), from this depth's
            # lists into the other buffer (the left child's size is known, so each entry is written
            # once, at its final place). Children of a depth-2 node are leaves: they only need their
            # members, so one list is enough.
            target = work[depth % 2]
            n_partitioned = 1 if depth + 1 >= _MAX_DEPTH else n_features
            for d in range(n_partitioned):
                source_d = rows[d]
                target_d = target[d]
                a = start
                b = best_pos
                for p in range(start, end):
                    # branch-free: the side is a coin flip for the CPU's predictor
                    sample = source_d[p]
                    side = np.int64(go_left[sample])
                    target_d[a if side else b] = sample
                    a += side
                    b += 1 - side
            left = 2 * slot + 1
            starts[left] = start
            ends[left] = best_pos
            active[left] = True
            starts[left + 1] = best_pos
            ends[left + 1] = end
            active[left + 1] = True
        return node_count

    @njit(cache=True, nogil=True, parallel=True)
    def _fit(
        order, x, ranks, y, n_classes, n_stages, learning_rate, raw, feature, threshold, value,
        importance_sum, n_lanes,
    ):
        """All stages of one fit. The trees of a stage are independent given the stage's gradients,
        so ``n_lanes`` threads grow them (tree k on lane k mod n_lanes, each lane with its own
        scratch arrays); every tree is computed exactly as it would be alone."""
        n_features, n = order.shape
        n_columns = raw.shape[0]
        leaf_scale = 1.0 if n_columns == 1 else (n_classes - 1) / n_classes
        grad = np.empty((n_columns, n))
        hess = np.empty((n_columns, n))
        per_column_importance = np.zeros((n_columns, n_features))
        relevant = np.zeros(n_columns, dtype=np.int64)
        work = np.empty((n_lanes, 2, n_features, n), dtype=np.uint32)
        go_left = np.zeros((n_lanes, n), dtype=np.uint8)
        tree_importance = np.zeros((n_lanes, n_features))
        scratch = np.empty((n_lanes, n_columns + 2, 256))
        n_blocks = (n + _BLOCK - 1) // _BLOCK
        block_first = np.empty((n_lanes, 4, n_blocks))
        block_low = np.empty((n_lanes, 4, n_blocks))
        block_high = np.empty((n_lanes, 4, n_blocks))
        rows_per_lane = (n + n_lanes - 1) // n_lanes
        reciprocals = np.empty(n + 1)
        reciprocals[0] = 0.0
        for m in range(1, n + 1):
            reciprocals[m] = 1.0 / m
        for stage in range(n_stages):
            for lane in prange(n_lanes):
                _negative_gradient(
                    raw, y, n_classes, grad, hess, lane * rows_per_lane, min(n, (lane + 1) * rows_per_lane),
                    scratch[lane],
                )
            for lane in prange(n_lanes):
                for k in range(lane, n_columns, n_lanes):
                    _grow_column(
                        order, x, ranks, grad, hess, k, leaf_scale, work[lane],
                        go_left[lane], feature[stage, k], threshold[stage, k],
                        value[stage, k], tree_importance[lane], raw,
                        learning_rate, reciprocals,
                        per_column_importance, relevant, block_first[lane], block_low[lane], block_high[lane],
                    )
        for k in range(n_columns):
            for d in range(n_features):
                importance_sum[d] += per_column_importance[k, d]
        return relevant.sum()

    @njit(cache=True, nogil=True)
    def _grow_column(
        order, x, ranks, grad, hess, k, leaf_scale, work, go_left,
        feat, thr, val, tree_importance, raw, learning_rate, reciprocals,
        per_column_importance, relevant, block_first, block_low, block_high,
    ):
        """Grow the tree of column ``k`` of a stage and add its shrunk leaf values to ``raw[k]``."""
        n_features = order.shape[0]
        tree_importance[:] = 0.0
        nodes = _grow_tree(
            order, x, ranks, grad[k], hess[k], leaf_scale, work, go_left,
            feat, thr, val, tree_importance, raw[k], learning_rate, reciprocals,
            block_first, block_low, block_high,
        )
        if nodes > 1:
            relevant[k] += 1
            for d in range(n_features):
                per_column_importance[k, d] += tree_importance[d]

    @njit(cache=True, nogil=True, parallel=True)
    def _predict_raw(x, split_feature, split_threshold, leaf_value, learning_rate, raw):
        """Add every tree's shrunk leaf value to ``raw`` (T, n) for features ``x`` (n_features, n).

        Trees are complete (see :func:`_complete_trees`): a sample's leaf is three comparisons,
        ``slot = 2 slot + 1 + (x > threshold)``, with no branches. Samples go in blocks (in
        parallel); within a block one tree at a time visits all samples, and each ``raw[k, i]``
        receives its terms in stage order, as sklearn's predict adds them.
        """
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
                        for _ in range(_MAX_DEPTH):
                            j = 2 * j + 1 + np.int64(x[feat[j], i] > thr[j])
                        raw[k, i] += learning_rate * val[j - n_internal]
