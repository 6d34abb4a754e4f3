"""Separated Attribute Predictability (Kumar et al. 2018), as computed by disentanglement_lib.

For every (latent, factor) pair a score says how well that single latent predicts the factor; SAP is
the mean over factors of the gap between the best and the second-best latent.

* Discrete factors (dlib's default, ``continuous_factors=False``): the score is the test accuracy of
  ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` trained on the one latent.
* Continuous factors: the squared Pearson correlation (0 when the latent's variance is <= 1e-12).

The per-pair SVMs are one-dimensional, so instead of ``n_latents * n_factors`` calls into liblinear
this module solves every one of them at once (:func:`fit_linear_svc_1d`): the objective liblinear
minimises is a convex, piecewise-quadratic function of two numbers, and on sorted data its value,
gradient and Hessian at any point come from prefix sums. ``solver="sklearn"`` runs the scikit-learn
estimator exactly as dlib does.

References
----------
Kumar, Sattigeri, Balakrishnan. Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations. ICLR 2018. https://arxiv.org/abs/1711.00848
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._aggregate import top_two_gap
from dbench.metrics._constraints import Boolean, Interval, Options
from dbench.metrics._plans import plan_factor_samples, split_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import (
    check_train_test,
    warn_degenerate,
    warn_if_constant_codes,
)

SOLVERS = ("batched", "sklearn")
# disentanglement_lib study defaults: num_train = 10000, num_test = 5000, continuous_factors = False.
PARAMS = Params(
    n_train=Param(
        10_000, Interval(int, 2, 10_000_000), "training samples the single-latent SVMs are fitted on", sample_size=True
    ),
    n_test=Param(5_000, Interval(int, 2, 10_000_000), "test samples the accuracies are measured on", sample_size=True),
    continuous_factors=Param(False, Boolean(), "score each pair by squared correlation instead of SVM accuracy"),
    solver=Param("batched", Options(SOLVERS), "'batched': every 1-D SVM at once; 'sklearn': dlib's LinearSVC loop"),
    standardize=Param(False, Boolean(), "standardise each latent first (scale-free; not dlib's numbers)"),
)
# dlib's LinearSVC(C=0.01, class_weight="balanced"): squared hinge loss, L2 penalty on (w, b).
SVC_C = 0.01
_NEWTON_ITERATIONS = 100
_LINE_SEARCH_STEPS = 20


class _SortedLatent:
    """One latent's training values with prefix sums that give sums over threshold sets in O(log n).

    Samples are ordered by (class, value) for every class of every factor at once (class ids are
    global: factor ``f``'s classes follow factor ``f - 1``'s), so a class's samples below a threshold
    are a prefix of its segment and those above one a suffix.
    """

    def __init__(self, xp: Any, x: Any, class_ids: Any, segment_bounds: np.ndarray) -> None:
        n = x.shape[0]
        device = device_of(x)
        self.xp, self.n = xp, n
        order = xp.argsort(x)
        self.sorted_x = xp.take(x, order)
        rank = xp.argsort(order)
        zero = xp.zeros((3, 1), dtype=x.dtype, device=device)
        powers = xp.stack([xp.ones_like(self.sorted_x), self.sorted_x, self.sorted_x**2], axis=0)
        # Prefix sums (3, n + 1) of x**0, x**1, x**2 in value order ...
        self.global_sums = xp.concat([zero, xp.cumulative_sum(powers, axis=1)], axis=1)
        # ... and in (class, value) order: keys class * n + rank, sorted.
        self.keys = xp.sort(xp.reshape(class_ids * n + rank[None, :], (-1,)))
        self.class_sums = xp.concat([zero, xp.cumulative_sum(xp.take(powers, self.keys % n, axis=1), axis=1)], axis=1)
        self.starts = xp.asarray(np.tile(segment_bounds[:-1], 2), device=device)
        self.ends = xp.asarray(np.tile(segment_bounds[1:], 2), device=device)
        base = xp.arange(segment_bounds.size - 1, dtype=self.keys.dtype, device=device) * n
        self.class_base = xp.concat([base, base])

    def violator_sums(self, slope: Any, offset: Any) -> tuple[Any, Any]:
        """Sums of ``x**p`` (``p = 0, 1, 2``) over the samples with ``slope[j] * x < offset[j]``.

        ``slope`` and ``offset`` have length ``2G``: problem ``j`` concerns class ``j % G``. Returns
        ``(within that class, over all samples)``, each ``(3, 2G)``.
        """
        xp = self.xp
        lower = slope >= 0
        safe = xp.where(slope == 0, 1.0, slope)
        infinite = xp.full_like(offset, xp.inf)
        everything_or_nothing = xp.where(offset > 0, infinite, -infinite)
        threshold = xp.where(slope == 0, everything_or_nothing, offset / safe)
        # Ranks of samples with x < t are < below; those with x > t are >= at_or_below.
        below = xp.astype(xp.searchsorted(self.sorted_x, threshold, side="left"), self.keys.dtype)
        at_or_below = xp.astype(xp.searchsorted(self.sorted_x, threshold, side="right"), self.keys.dtype)
        cut_low = xp.searchsorted(self.keys, self.class_base + below, side="left")
        cut_high = xp.searchsorted(self.keys, self.class_base + at_or_below, side="left")
        cls, glob = self.class_sums, self.global_sums
        class_low = xp.take(cls, cut_low, axis=1) - xp.take(cls, self.starts, axis=1)
        class_high = xp.take(cls, self.ends, axis=1) - xp.take(cls, cut_high, axis=1)
        in_class = xp.where(lower[None, :], class_low, class_high)
        global_low = xp.take(glob, below, axis=1)
        global_high = glob[:, -1:] - xp.take(glob, at_or_below, axis=1)
        overall = xp.where(lower[None, :], global_low, global_high)
        return in_class, overall


def _objective(latent: _SortedLatent, w: Any, b: Any, c_pos: Any, c_neg: Any) -> tuple[Any, tuple, tuple]:
    """Value, gradient ``(g_w, g_b)`` and Hessian ``(h_ww, h_wb, h_bb)`` of every class's problem.

    Problem ``g``: ``1/2 (w^2 + b^2) + sum_i C_i max(0, 1 - y_i (w x_i + b))^2`` with ``y_i = +1`` on
    class ``g`` (weight ``c_pos[g]``) and ``-1`` elsewhere (weight ``c_neg[g]``): liblinear's
    L2-regularised squared-hinge primal with the intercept as a feature of value 1.
    """
    xp = latent.xp
    g = w.shape[0]
    # Positives violate the margin where w x + b < 1; negatives where -w x - b < 1: one lookup for both.
    in_class, overall = latent.violator_sums(xp.concat([w, -w]), xp.concat([1.0 - b, 1.0 + b]))
    pos = in_class[:, :g]
    neg = overall[:, g:] - in_class[:, g:]
    bp, bn = b - 1.0, b + 1.0
    pos = [pos[p, :] for p in range(3)]
    neg = [neg[p, :] for p in range(3)]
    loss_pos = w * w * pos[2] + 2.0 * w * bp * pos[1] + bp * bp * pos[0]
    loss_neg = w * w * neg[2] + 2.0 * w * bn * neg[1] + bn * bn * neg[0]
    value = 0.5 * (w * w + b * b) + c_pos * loss_pos + c_neg * loss_neg
    grad_w = w + 2.0 * c_pos * (w * pos[2] + bp * pos[1]) + 2.0 * c_neg * (w * neg[2] + bn * neg[1])
    grad_b = b + 2.0 * c_pos * (w * pos[1] + bp * pos[0]) + 2.0 * c_neg * (w * neg[1] + bn * neg[0])
    h_ww = 1.0 + 2.0 * (c_pos * pos[2] + c_neg * neg[2])
    h_wb = 2.0 * (c_pos * pos[1] + c_neg * neg[1])
    h_bb = 1.0 + 2.0 * (c_pos * pos[0] + c_neg * neg[0])
    return value, (grad_w, grad_b), (h_ww, h_wb, h_bb)


def fit_linear_svc_1d(
    x: Any, class_ids: Any, segment_bounds: np.ndarray, c_pos: Any, c_neg: Any, *, tol: float = 1e-10
) -> tuple[Any, Any]:
    """Solve one-vs-rest squared-hinge SVMs on a single feature for every class at once.

    Parameters
    ----------
    x : array (n,)
        The feature (one latent).
    class_ids : int array (n_factors, n)
        Global class id of each sample under each factor (factor ``f``'s ids follow factor ``f - 1``'s).
    segment_bounds : int ndarray (G + 1,)
        Cumulative class sizes: class ``g`` has ``segment_bounds[g + 1] - segment_bounds[g]`` samples.
    c_pos, c_neg : arrays (G,)
        Penalty weights of the class's own samples and of all others.

    Returns
    -------
    (w, b) : arrays (G,)
        The minimiser of each problem (strictly convex, so unique), found by Newton's method with a
        backtracking line search to a relative gradient of ``tol`` (liblinear stops at ``1e-4``).
    """
    xp = array_namespace(x)
    latent = _SortedLatent(xp, x, class_ids, segment_bounds)
    w = xp.zeros_like(c_pos)
    b = xp.zeros_like(c_pos)
    value, grad, hess = _objective(latent, w, b, c_pos, c_neg)
    scale = xp.abs(grad[0]) + xp.abs(grad[1]) + 1.0
    stalled = xp.zeros_like(w, dtype=xp.bool)
    for _ in range(_NEWTON_ITERATIONS):
        gw, gb = grad
        h_ww, h_wb, h_bb = hess
        det = h_ww * h_bb - h_wb * h_wb
        step_w = -(h_bb * gw - h_wb * gb) / det
        step_b = -(h_ww * gb - h_wb * gw) / det
        slope = gw * step_w + gb * step_b
        # Done: a small gradient, a predicted decrease below the objective's rounding, or no step that
        # lowers the objective any more (the line search failed: we are at the optimum to rounding).
        converged = (xp.abs(gw) + xp.abs(gb) <= tol * scale) | (-slope <= 1e-13 * (1.0 + xp.abs(value))) | stalled
        if bool(xp.all(converged)):
            break
        alpha = xp.ones_like(w)
        accepted = converged
        new_w, new_b, new_value, new_grad, new_hess = w, b, value, grad, hess
        for _ in range(_LINE_SEARCH_STEPS):
            trial_w, trial_b = w + alpha * step_w, b + alpha * step_b
            t_value, t_grad, t_hess = _objective(latent, trial_w, trial_b, c_pos, c_neg)
            ok = (t_value <= value + 1e-4 * alpha * slope) & ~accepted  # Armijo condition
            take = lambda new, trial: xp.where(ok, trial, new)  # noqa: E731, B023 - used at once, in this iteration only
            new_w, new_b, new_value = take(new_w, trial_w), take(new_b, trial_b), take(new_value, t_value)
            new_grad = tuple(take(n, t) for n, t in zip(new_grad, t_grad, strict=True))
            new_hess = tuple(take(n, t) for n, t in zip(new_hess, t_hess, strict=True))
            accepted = accepted | ok
            if bool(xp.all(accepted)):
                break
            alpha = xp.where(accepted, alpha, alpha * 0.5)
        stalled = stalled | ~accepted
        w, b, value, grad, hess = new_w, new_b, new_value, new_grad, new_hess
    return w, b


def _classes(xp: Any, factors: Any) -> tuple[list[Any], Any, list[int]]:
    """Per factor: sorted observed values; global class ids ``(K, n)``; number of classes."""
    values, ids, sizes = [], [], []
    offset = 0
    for f in range(factors.shape[1]):
        unique, inverse = xp.unique_inverse(factors[:, f])
        values.append(unique)
        ids.append(xp.astype(xp.reshape(inverse, (-1,)), xp.int64) + offset)
        sizes.append(int(unique.shape[0]))
        offset += sizes[-1]
    return values, xp.stack(ids, axis=0), sizes


def _penalties(class_counts: np.ndarray, sizes: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """liblinear's per-problem weights under ``class_weight="balanced"`` (weight_k = n / (K n_k)).

    One-vs-rest (K > 2): the class's own samples get ``C * weight_g``, all others plain ``C``
    (liblinear's ``train_one(..., weighted_C[g], C)``). Binary: one problem, class 1 positive, with
    ``C * weight_1`` and ``C * weight_0``; we store it under class 1 (class 0's entry is unused).
    """
    weight = n / (np.repeat(np.asarray(sizes, dtype=np.float64), sizes) * class_counts)
    c_pos = SVC_C * weight
    c_neg = np.full_like(c_pos, SVC_C)
    start = 0
    for k in sizes:
        if k == 2:
            c_neg[start + 1] = SVC_C * weight[start]
            c_neg[start] = SVC_C * weight[start + 1]
        start += k
    return c_pos, c_neg


def _svm_accuracies(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any) -> np.ndarray:
    """Test accuracy ``(D, K)`` of the batched 1-D LinearSVC for every (latent, factor); NaN where K_f < 2."""
    xp = array_namespace(codes_train)
    device = device_of(codes_train)
    n = codes_train.shape[0]
    values, ids, sizes = _classes(xp, factors_train)
    counts = np.concatenate(
        [np.bincount(to_numpy(ids[f, :]) - int(sum(sizes[:f])), minlength=k) for f, k in enumerate(sizes)]
    )
    bounds = np.concatenate([[0], np.cumsum(counts)])
    c_pos_np, c_neg_np = _penalties(counts.astype(np.float64), sizes, n)
    c_pos = xp.asarray(c_pos_np, dtype=codes_train.dtype, device=device)
    c_neg = xp.asarray(c_neg_np, dtype=codes_train.dtype, device=device)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    scores = np.full((codes_train.shape[1], len(sizes)), np.nan)
    for d in range(codes_train.shape[1]):
        w, b = fit_linear_svc_1d(codes_train[:, d], ids, bounds, c_pos, c_neg)
        x_test = codes_test[:, d]
        for f, k in enumerate(sizes):
            if k < 2:
                continue
            if k == 2:
                # Binary: liblinear's single problem (class 1 positive); ties (decision 0) go to class 0.
                chosen = xp.astype(x_test * w[starts[f] + 1] + b[starts[f] + 1] > 0, xp.int64)
            else:
                # One-vs-rest: the largest decision value wins, the first class on ties (sklearn's argmax).
                segment = slice(int(starts[f]), int(starts[f + 1]))
                chosen = xp.argmax(x_test[:, None] * w[None, segment] + b[None, segment], axis=1)
            predicted = xp.take(values[f], chosen)
            scores[d, f] = float(xp.mean(xp.astype(predicted == factors_test[:, f], xp.float64)))
    return scores


def _svm_accuracies_sklearn(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any) -> np.ndarray:
    """dlib's loop of ``LinearSVC(C=0.01, class_weight="balanced")`` fits (host NumPy at the boundary)."""
    from sklearn.svm import LinearSVC

    x_train, y_train = to_numpy(codes_train), to_numpy(factors_train)
    x_test, y_test = to_numpy(codes_test), to_numpy(factors_test)
    scores = np.full((x_train.shape[1], y_train.shape[1]), np.nan)
    for d in range(x_train.shape[1]):
        for f in range(y_train.shape[1]):
            if np.unique(y_train[:, f]).size < 2:
                continue
            model = LinearSVC(C=SVC_C, class_weight="balanced")
            model.fit(x_train[:, d : d + 1], y_train[:, f])
            scores[d, f] = np.mean(model.predict(x_test[:, d : d + 1]) == y_test[:, f])
    return scores


def _squared_correlations(xp: Any, codes: Any, factors: Any) -> Any:
    """dlib's continuous score: ``cov(z, y)^2 / (var z var y)`` (``ddof=1``), 0 where ``var z <= 1e-12``."""
    factors = xp.astype(factors, codes.dtype)
    n = codes.shape[0]
    z = codes - xp.mean(codes, axis=0)[None, :]
    y = factors - xp.mean(factors, axis=0)[None, :]
    cov = xp.matmul(xp.matrix_transpose(z), y) / (n - 1)
    var_z = xp.sum(z * z, axis=0) / (n - 1)
    var_y = xp.sum(y * y, axis=0) / (n - 1)
    informative = (var_z > 1e-12)[:, None] & (var_y > 0)[None, :]
    denominator = xp.where(informative, var_z[:, None] * var_y[None, :], 1.0)
    return xp.where(informative, cov * cov / denominator, xp.zeros_like(cov))


def sap_score_matrix(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    continuous_factors: bool = PARAMS["continuous_factors"].default,
    solver: str = PARAMS["solver"].default,
) -> np.ndarray:
    """The ``(n_latents, n_factors)`` score matrix of SAP (host NumPy; NaN for a factor with one value)."""
    SPEC.validate({"continuous_factors": continuous_factors, "solver": solver})
    xp = array_namespace(codes_train)
    if continuous_factors:
        scores = to_numpy(_squared_correlations(xp, codes_train, factors_train)).astype(np.float64)
        constant = to_numpy(xp.max(factors_train, axis=0) == xp.min(factors_train, axis=0))
        scores[:, constant] = np.nan
        return scores
    if solver == "sklearn":
        return _svm_accuracies_sklearn(codes_train, factors_train, codes_test, factors_test)
    return _svm_accuracies(codes_train, factors_train, codes_test, factors_test)


def sap(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    continuous_factors: bool = PARAMS["continuous_factors"].default,
    solver: str = PARAMS["solver"].default,
    standardize: bool = PARAMS["standardize"].default,
) -> dict[str, float]:
    """SAP score: mean over factors of the gap between the two latents that predict it best.

    Parameters
    ----------
    codes_train, codes_test : arrays (n, n_latents)
    factors_train, factors_test : integer arrays (n, n_factors)
    continuous_factors : bool
        ``False`` (dlib's default): score = test accuracy of a balanced LinearSVC(C=0.01) on one latent.
        ``True``: score = squared correlation on the training set (the test set is not used).
    solver : {"batched", "sklearn"}
        ``"batched"``: all (latent, factor) SVMs solved at once on the codes' backend.
        ``"sklearn"``: one scikit-learn ``LinearSVC`` per pair, exactly as dlib.
    standardize : bool
        ``False`` (dlib): the SVMs see the raw latents, so, because the penalty ``1/2 (w^2 + b^2)`` is
        not scale-free, rescaling or shifting a latent can change its accuracy. ``True``: each latent
        is first standardised with its training mean and standard deviation, which makes SAP invariant
        to affine changes of each latent (a corrected variant, not dlib's numbers).

    Returns
    -------
    dict
        ``{"sap": float}`` in ``[0, 1]``. With one latent the gap is its score (the runner-up counts as
        0). A factor with one value is predicted perfectly by every latent, so its gap is 0 (warned).

    Examples
    --------
    Latent 0 carries binary factor 0 and latent 1 factor 1, each with a little noise; latent 2 is
    noise. Each factor's own latent predicts it perfectly, the runner-up at chance (1/2):

    >>> import numpy as np
    >>> from dbench.metrics import sap
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(600, 2))
    >>> codes = np.concatenate([factors + 0.1 * rng.normal(size=(600, 2)), rng.normal(size=(600, 1))], axis=1)
    >>> round(sap(codes[:400], factors[:400], codes[400:], factors[400:])["sap"], 2)
    0.5
    """
    xp = check_train_test(codes_train, factors_train, codes_test, factors_test)
    SPEC.validate({"continuous_factors": continuous_factors, "solver": solver, "standardize": standardize})
    if not xp.isdtype(codes_train.dtype, "real floating"):
        codes_train = xp.astype(codes_train, xp.float64)
    if not xp.isdtype(codes_test.dtype, "real floating"):
        codes_test = xp.astype(codes_test, xp.float64)
    warn_if_constant_codes(xp, codes_train, "sap")
    if standardize:
        mean = xp.mean(codes_train, axis=0)
        std = xp.std(codes_train, axis=0)
        std = xp.where(std > 0, std, xp.ones_like(std))
        codes_train = (codes_train - mean[None, :]) / std[None, :]
        codes_test = (codes_test - mean[None, :]) / std[None, :]
    scores = sap_score_matrix(
        codes_train, factors_train, codes_test, factors_test, continuous_factors=continuous_factors, solver=solver
    )
    single_valued = np.isnan(scores).any(axis=0)
    if single_valued.any():
        warn_degenerate("sap: a factor takes a single value; every latent predicts it, so its gap is 0")
    gaps = to_numpy(top_two_gap(np.where(np.isnan(scores), 1.0, scores)))
    return {"sap": float(np.mean(gaps))}


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": params["n_train"], "test": params["n_test"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    (train_codes, train_factors), (test_codes, test_factors) = split_codes(plan, codes, ("train", "test"))
    return Scored(
        sap(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            continuous_factors=params["continuous_factors"],
            solver=params["solver"],
            standardize=params["standardize"],
        )
    )


SPEC = MetricSpec(
    name="sap",
    description="SAP (Kumar et al. 2018): top-two gap of single-latent LinearSVC test accuracies",
    params=PARAMS,
    scores=(ScoreKey("sap", 0.0, 1.0, True, "mean over factors of the best minus the second-best latent's score"),),
    plan_fn=_plan,
    score_fn=_score,
)
