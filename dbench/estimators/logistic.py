"""L2-regularised logistic regression solved for many problems at once, on any array-API backend.

The downstream-task probes of disentanglement_lib (Locatello et al., 2019) fit scikit-learn's
``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))`` once per factor: ten regularisation values times
five folds plus a refit, each an independent small convex problem with ``(D + 1) * K`` unknowns. Here
all of them are stacked along a leading batch axis and minimised together by a batched L-BFGS, so one
pass over the data serves every factor, fold and ``C``, on NumPy, CuPy, torch or array_api_strict.

Objective (scikit-learn's, ``sklearn.linear_model.LogisticRegression`` with ``penalty="l2"``)::

    minimise_W   C * sum_i w_i * logloss(y_i, softmax(x_i @ W + b))  +  1/2 * ||W||^2

with the intercept ``b`` unpenalised. As in scikit-learn 1.9 a problem with two classes is binomial
(one weight vector, class 1 positive) and one with more classes is multinomial (one vector per class).
We minimise the same function divided by ``C * sum_i w_i`` (scikit-learn's scaling, so gradients are
O(1)) to a gradient tolerance far below scikit-learn's ``tol=1e-4``, i.e. we reach the optimum that
scikit-learn's lbfgs approaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy

# Problems per solver batch are capped so the (batch, n, K) logits stay near this many bytes.
_LOGITS_BYTES = 64 * 2**20
# Problems with more unknowns than this never switch from L-BFGS to Newton.
_NEWTON_MAX_PARAMS = 160


@dataclass
class LogisticFit:
    """Solutions of a batch of logistic-regression problems.

    ``coef`` is ``(B, D, K)``, ``intercept`` ``(B, K)`` (backend arrays; ``K`` is the largest class count
    in the batch, absent classes have zero columns). For a binary problem column 0 is identically zero
    and column 1 holds scikit-learn's ``coef_[0]`` / ``intercept_[0]``; for a multinomial problem
    column ``k`` is scikit-learn's ``coef_[k]``. ``n_iter`` and ``converged`` are host arrays ``(B,)``.
    """

    coef: Any
    intercept: Any
    n_classes: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray

    def decision_function(self, X: Any) -> Any:
        """Logits ``(B, n, K)`` for shared ``X`` ``(n, D)`` or per-problem ``X`` ``(B, n, D)``; absent classes -inf."""
        xp = array_namespace(X, self.coef)
        Xt = _with_intercept_column(xp, X)
        W = xp.concat([self.coef, self.intercept[:, None, :]], axis=1)
        return _masked_logits(xp, Xt, W, _class_mask(xp, self.n_classes, W.shape[2], W))

    def predict(self, X: Any) -> Any:
        """Encoded labels ``(B, n)`` (int64; ties go to the lowest class, as in scikit-learn)."""
        xp = array_namespace(X, self.coef)
        return xp.argmax(self.decision_function(X), axis=-1)


def _with_intercept_column(xp: Any, X: Any) -> Any:
    ones = xp.ones(X.shape[:-1] + (1,), dtype=X.dtype, device=getattr(X, "device", None))
    return xp.concat([X, ones], axis=-1)


def _class_mask(xp: Any, n_classes: np.ndarray, k_max: int, like: Any) -> Any:
    """Boolean ``(B, K)``: which logit columns exist for each problem."""
    mask = np.arange(k_max)[None, :] < np.asarray(n_classes)[:, None]
    return xp.asarray(mask, device=getattr(like, "device", None))


def _free_mask(xp: Any, n_classes: np.ndarray, k_max: int, like: Any) -> Any:
    """Float ``(B, 1, K)``: which columns are parameters (a binary problem keeps column 0 at zero)."""
    n_classes = np.asarray(n_classes)
    free = np.arange(k_max)[None, :] < n_classes[:, None]
    free[n_classes == 2, 0] = False
    return xp.asarray(free[:, None, :].astype(np.float64), dtype=like.dtype, device=getattr(like, "device", None))


def _logits(xp: Any, Xt: Any, W: Any) -> Any:
    """Raw logits in sample-major layout ``(n, B, K)``.

    With a shared ``Xt`` ``(n, D + 1)`` all problems go through one matrix product (one GEMM instead
    of ``B`` small ones); a per-problem ``Xt`` ``(B, n, D + 1)`` uses a batched product.
    """
    batch, rows, k = W.shape
    if Xt.ndim == 2:
        flat = xp.reshape(xp.permute_dims(W, (1, 0, 2)), (rows, batch * k))
        return xp.reshape(Xt @ flat, (Xt.shape[0], batch, k))
    return xp.permute_dims(Xt @ W, (1, 0, 2))


def _backproject(xp: Any, Xt: Any, R: Any) -> Any:
    """``Xt^T R`` per problem for residuals ``R`` ``(n, B, K)``; returns ``(B, D + 1, K)``."""
    n, batch, k = R.shape
    if Xt.ndim == 2:
        flat = xp.matrix_transpose(Xt) @ xp.reshape(R, (n, batch * k))
        return xp.permute_dims(xp.reshape(flat, (Xt.shape[1], batch, k)), (1, 0, 2))
    return xp.matrix_transpose(Xt) @ xp.permute_dims(R, (1, 0, 2))


def _masked_logits(xp: Any, Xt: Any, W: Any, class_mask: Any) -> Any:
    """Logits ``(B, n, K)`` with absent classes at -inf."""
    Z = xp.permute_dims(_logits(xp, Xt, W), (1, 0, 2))
    return xp.where(class_mask[:, None, :], Z, xp.asarray(-xp.inf, dtype=Z.dtype))


class _Objective:
    """Scaled objective ``mean_w(logloss) + l2 / 2 * ||coef||^2`` and its gradient for a batch.

    Per-sample arrays are sample-major ``(n, B, ...)`` so the shared-``X`` products are single GEMMs.
    """

    def __init__(self, xp: Any, Xt: Any, Y: Any, weight: Any, l2: Any, class_mask: Any, free: Any):
        self.xp, self.Xt, self.free, self.l2 = xp, Xt, free, l2  # l2: (B,) = 1 / (C * sum of weights)
        weight = xp.permute_dims(weight, (1, 0))  # (n, B)
        self.weight = weight / xp.sum(weight, axis=0, keepdims=True)  # columns sum to one
        k_max = class_mask.shape[1]
        classes = xp.arange(k_max, device=getattr(Xt, "device", None))
        labels = Y[:, None] if Y.ndim == 1 else xp.permute_dims(Y, (1, 0))  # (n, 1) or (n, B)
        onehot = xp.astype(labels[..., None] == classes, Xt.dtype)
        self.onehot = onehot if Y.ndim == 2 else xp.broadcast_to(onehot, (Y.shape[0], l2.shape[0], k_max))
        self.log_mask = xp.where(class_mask, xp.asarray(0.0, dtype=Xt.dtype), xp.asarray(-xp.inf, dtype=Xt.dtype))
        # The intercept row (last) is not penalised.
        row_penalised = np.ones((1, Xt.shape[-1], 1))
        row_penalised[0, -1, 0] = 0.0
        self.row_penalised = xp.asarray(row_penalised, dtype=Xt.dtype, device=getattr(Xt, "device", None))

    def take(self, keep: Any) -> "_Objective":
        xp = self.xp
        out = object.__new__(_Objective)
        out.xp, out.row_penalised = xp, self.row_penalised
        out.Xt = self.Xt if self.Xt.ndim == 2 else xp.take(self.Xt, keep, axis=0)
        out.onehot = xp.take(self.onehot, keep, axis=1)
        out.weight = xp.take(self.weight, keep, axis=1)
        out.l2 = xp.take(self.l2, keep, axis=0)
        out.log_mask = xp.take(self.log_mask, keep, axis=0)
        out.free = xp.take(self.free, keep, axis=0)
        return out

    def __call__(self, W: Any) -> tuple[Any, Any]:
        xp = self.xp
        Z = _logits(xp, self.Xt, W)  # (n, B, K), finite
        z_true = xp.sum(Z * self.onehot, axis=-1)
        Z = Z + self.log_mask  # absent classes -> -inf
        z_max = xp.max(Z, axis=-1, keepdims=True)
        E = xp.exp(Z - z_max)
        S = xp.sum(E, axis=-1, keepdims=True)
        pointwise = xp.log(S[..., 0]) + z_max[..., 0] - z_true  # (n, B)
        penalised = W * self.row_penalised
        loss = xp.sum(self.weight * pointwise, axis=0) + 0.5 * self.l2 * xp.sum(penalised * penalised, axis=(1, 2))
        R = (E / S - self.onehot) * self.weight[..., None]
        grad = _backproject(xp, self.Xt, R) + self.l2[:, None, None] * penalised
        return loss, grad * self.free


    def newton_direction(self, W: Any, G: Any) -> Any:
        """Exact Newton direction ``-H^-1 G`` per problem (dense ``(D+1)K`` Hessian; small problems only).

        The multinomial Hessian is singular along "shift every intercept by the same amount" (softmax
        is shift-invariant and the intercept is unpenalised); adding ``u u^T`` on that direction makes
        it invertible without changing the step, because the gradient is orthogonal to it.
        """
        xp = self.xp
        batch, rows, k = W.shape
        n_params = rows * k
        device = getattr(W, "device", None)
        Z = _logits(xp, self.Xt, W) + self.log_mask
        E = xp.exp(Z - xp.max(Z, axis=-1, keepdims=True))
        probs = E / xp.sum(E, axis=-1, keepdims=True)  # (n, B, K)
        Xb = self.Xt if self.Xt.ndim == 3 else xp.broadcast_to(self.Xt[None, ...], (batch,) + tuple(self.Xt.shape))
        Pb = xp.permute_dims(probs * self.weight[..., None], (1, 0, 2))  # (B, n, K) weighted probabilities
        Ps = xp.permute_dims(probs * xp.sqrt(self.weight)[..., None], (1, 0, 2))  # (B, n, K) sqrt-weighted
        # Block-diagonal part: sum_i w_i p_ik x_i x_i^T for each class k.
        outer = Xb[:, :, :, None] * Xb[:, :, None, :]  # (B, n, rows, rows)
        diag_blocks = xp.matrix_transpose(xp.reshape(outer, (batch, Xb.shape[1], rows * rows))) @ Pb  # (B, rows*rows, K)
        diag_blocks = xp.reshape(diag_blocks, (batch, rows, rows, k))
        eye_k = xp.eye(k, dtype=W.dtype, device=device)
        H = xp.permute_dims(diag_blocks, (0, 1, 3, 2))[:, :, :, :, None] * eye_k[None, None, :, None, :]
        H = xp.reshape(H, (batch, n_params, n_params))
        # Low-rank part: - sum_i w_i (p_i x_i)(p_i x_i)^T, with p_i x_i laid out as (row, class).
        V = Xb[:, :, :, None] * Ps[:, :, None, :]
        V = xp.reshape(V, (batch, Xb.shape[1], n_params))
        H = H - xp.matrix_transpose(V) @ V
        free = xp.reshape(xp.broadcast_to(self.free, (batch, rows, k)), (batch, n_params))
        penal = xp.reshape(xp.broadcast_to(self.row_penalised * self.l2[:, None, None], (batch, rows, k)), (batch, n_params))
        eye_p = xp.eye(n_params, dtype=W.dtype, device=device)
        H = H + penal[:, :, None] * eye_p
        multinomial = xp.astype(xp.sum(self.free, axis=(1, 2)) > 1.0, W.dtype)  # binary problems have one free column
        u = np.zeros((1, rows, k))
        u[0, -1, :] = 1.0
        u = xp.reshape(xp.asarray(u, dtype=W.dtype, device=device) * self.free, (batch, n_params))
        H = H + multinomial[:, None, None] * (u[:, :, None] * u[:, None, :])
        H = H * free[:, :, None] * free[:, None, :] + (1.0 - free)[:, :, None] * eye_p
        # A class with no training weight (absent from a CV fold) has ~zero curvature on its intercept:
        # a relative damping keeps the solve finite; the line search takes care of the step length.
        diag_mean = xp.sum(H * eye_p, axis=(1, 2)) / n_params
        H = H + (1e-10 * diag_mean)[:, None, None] * eye_p
        g = xp.reshape(G, (batch, n_params, 1)) * free[:, :, None]
        d = -xp.linalg.solve(H, g)
        return xp.reshape(d, (batch, rows, k))


def _inner(xp: Any, a: Any, b: Any) -> Any:
    return xp.sum(a * b, axis=(1, 2))


def _two_loop(xp: Any, G: Any, S_hist: list, Y_hist: list, rho_hist: list, gamma: Any) -> Any:
    """L-BFGS two-loop recursion: ``-H G`` with ``H`` the inverse-Hessian estimate, per problem."""
    q = G
    alphas = []
    for s, y, rho in zip(reversed(S_hist), reversed(Y_hist), reversed(rho_hist)):
        a = rho * _inner(xp, s, q)
        q = q - a[:, None, None] * y
        alphas.append(a)
    r = gamma[:, None, None] * q
    for s, y, rho, a in zip(S_hist, Y_hist, rho_hist, reversed(alphas)):
        b = rho * _inner(xp, y, r)
        r = r + (a - b)[:, None, None] * s
    return -r


def _newton_in_chunks(objective: "_Objective", W: Any, G: Any) -> Any:
    """Newton directions, a few problems at a time so the ``(B, n, (D+1)K)`` intermediate stays small."""
    xp = objective.xp
    batch, rows, k = W.shape
    n = objective.weight.shape[0]
    per_chunk = max(1, int(_LOGITS_BYTES // (8 * n * rows * k)))
    if per_chunk >= batch:
        return objective.newton_direction(W, G)
    device = getattr(W, "device", None)
    parts = []
    for start in range(0, batch, per_chunk):
        idx = xp.asarray(np.arange(start, min(batch, start + per_chunk)), device=device)
        parts.append(objective.take(idx).newton_direction(xp.take(W, idx, axis=0), xp.take(G, idx, axis=0)))
    return xp.concat(parts, axis=0)


def _lbfgs(objective: _Objective, W0: Any, *, tol: float, max_iter: int, history: int, newton_after: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """Batched L-BFGS with Armijo backtracking; each problem stops on ``max|grad| <= tol``.

    Finished problems are dropped from the batch (compaction), so the slow, ill-conditioned ones do
    not make the easy ones pay. Returns the solutions and host arrays of iteration counts / convergence.
    """
    xp = objective.xp
    n_problems = W0.shape[0]
    # The dense Newton solve costs O(((D+1)K)^3) per problem: only worth it for small problems.
    use_newton = W0.shape[1] * W0.shape[2] <= _NEWTON_MAX_PARAMS
    active = np.arange(n_problems)
    done_idx: list[np.ndarray] = []
    done_W: list[Any] = []
    n_iter = np.zeros(n_problems, dtype=np.int64)
    converged = np.zeros(n_problems, dtype=bool)
    device = getattr(W0, "device", None)

    W = W0
    f, G = objective(W)
    S_hist: list[Any] = []
    Y_hist: list[Any] = []
    rho_hist: list[Any] = []
    gamma = xp.ones(n_problems, dtype=W.dtype, device=device)
    stalled = np.zeros(n_problems, dtype=bool)

    for iteration in range(max_iter + 1):
        g_inf = to_numpy(xp.max(xp.abs(G), axis=(1, 2)))
        finished = (g_inf <= tol) | stalled
        if iteration == max_iter:
            finished[:] = True
        if finished.any():
            # Converged: gradient test, or no decrease beyond round-off (scipy's ftol test).
            converged[active[finished]] = ((g_inf <= tol) | stalled)[finished]
            n_iter[active[finished]] = iteration
            done_idx.append(active[finished])
            done_W.append(xp.take(W, xp.asarray(np.nonzero(finished)[0], device=device), axis=0))
            if finished.all():
                break
            keep_np = np.nonzero(~finished)[0]
            keep = xp.asarray(keep_np, device=device)
            active, stalled = active[keep_np], stalled[keep_np]
            objective = objective.take(keep)
            W, f, G, gamma = (xp.take(a, keep, axis=0) for a in (W, f, G, gamma))
            S_hist = [xp.take(a, keep, axis=0) for a in S_hist]
            Y_hist = [xp.take(a, keep, axis=0) for a in Y_hist]
            rho_hist = [xp.take(a, keep, axis=0) for a in rho_hist]

        if use_newton and iteration >= newton_after:
            # Ill-conditioned (nearly separable, large C) problems: L-BFGS crawls there, Newton does not.
            d = _newton_in_chunks(objective, W, G)
            S_hist, Y_hist, rho_hist = [], [], []
        else:
            d = _two_loop(xp, G, S_hist, Y_hist, rho_hist, gamma)
        slope = _inner(xp, G, d)
        not_descent = slope >= 0
        d = xp.where(not_descent[:, None, None], -G, d)
        slope = xp.where(not_descent, -_inner(xp, G, G), slope)

        # Backtracking line search; the first step is scaled as in scipy's L-BFGS-B (1 / ||g||).
        if S_hist or (use_newton and iteration >= newton_after):
            step = xp.ones_like(f)
        else:
            step = 1.0 / xp.maximum(xp.sqrt(_inner(xp, G, G)), xp.ones_like(f))
        accepted = xp.zeros(f.shape, dtype=xp.bool, device=device)
        W_new, f_new, G_new = W, f, G
        for _ in range(30):
            trial = W + step[:, None, None] * d
            f_try, G_try = objective(trial)
            # The relative slack absorbs round-off in f once the problem sits at its optimum.
            ok = (f_try <= f + 1e-4 * step * slope + 1e-14 * xp.abs(f)) & ~accepted
            W_new = xp.where(ok[:, None, None], trial, W_new)
            f_new = xp.where(ok, f_try, f_new)
            G_new = xp.where(ok[:, None, None], G_try, G_new)
            accepted = accepted | ok
            if bool(xp.all(accepted)):
                break
            step = xp.where(accepted, step, 0.5 * step)
        # A problem whose line search cannot decrease f by more than round-off (scipy's ftol test,
        # 64 eps relative) sits at its optimum to machine precision.
        scale = xp.maximum(xp.maximum(xp.abs(f), xp.abs(f_new)), xp.ones_like(f))
        stalled = ~to_numpy(accepted) | to_numpy(f - f_new <= 64 * float(np.finfo(np.float64).eps) * scale)

        s = W_new - W
        y = G_new - G
        sy = _inner(xp, s, y)
        valid = sy > 1e-12 * xp.sqrt(_inner(xp, s, s) * _inner(xp, y, y))
        zero = xp.zeros_like(s)
        S_hist.append(xp.where(valid[:, None, None], s, zero))
        Y_hist.append(xp.where(valid[:, None, None], y, zero))
        rho_hist.append(xp.where(valid, 1.0 / xp.where(valid, sy, xp.ones_like(sy)), xp.zeros_like(sy)))
        gamma = xp.where(valid, sy / xp.where(valid, _inner(xp, y, y), xp.ones_like(sy)), gamma)
        if len(S_hist) > history or (use_newton and iteration >= newton_after):
            S_hist, Y_hist, rho_hist = S_hist[1:], Y_hist[1:], rho_hist[1:]
        W, f, G = W_new, f_new, G_new

    order = np.argsort(np.concatenate(done_idx), kind="stable")
    W_all = xp.concat(done_W, axis=0)
    return xp.take(W_all, xp.asarray(order, device=device), axis=0), n_iter, converged


def fit_logistic_regression(
    X: Any,
    Y: Any,
    *,
    C: Any,
    n_classes: Any,
    sample_weight: Any = None,
    coef_init: Any = None,
    intercept_init: Any = None,
    tol: float = 1e-5,
    max_iter: int = 300,
    history: int = 10,
    newton_after: int = 50,
) -> LogisticFit:
    """Fit ``B`` L2-regularised logistic regressions (scikit-learn's objective) at once.

    Parameters
    ----------
    X : array ``(n, D)`` shared by all problems, or ``(B, n, D)``
        Features (floating point).
    Y : int array ``(n,)`` or ``(B, n)``
        Encoded labels in ``0 .. n_classes - 1``.
    C : float or array ``(B,)``
        Inverse regularisation strength per problem (scikit-learn's ``C``).
    n_classes : int or array ``(B,)``
        Number of classes of each problem (>= 2); 2 means binomial, more means multinomial.
    sample_weight : array ``(n,)`` or ``(B, n)``, optional
        Non-negative weights; 0 leaves a sample out (cross-validation folds share one ``X`` this way).
    coef_init, intercept_init : arrays ``(B, D, K)``, ``(B, K)``, optional
        Warm start (does not change the optimum, only the iteration count).
    tol : float
        Stop when every gradient component of the scaled objective is at most ``tol``
        (scikit-learn's lbfgs stops at ``1e-4``).

    Returns
    -------
    LogisticFit
    """
    xp = array_namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    device = getattr(X, "device", None)
    batch = _batch_size(X, Y, C, n_classes, sample_weight)
    n = X.shape[-2]
    n_classes_np = np.broadcast_to(np.asarray(n_classes, dtype=np.int64), (batch,)).copy()
    if n_classes_np.min() < 2:
        raise ValueError("n_classes must be at least 2 for every problem; a factor with one value cannot be classified")
    k_max = int(n_classes_np.max())
    C_np = np.broadcast_to(np.asarray(to_numpy(C), dtype=np.float64), (batch,))
    if not np.all(C_np > 0):
        raise ValueError(f"C must be positive; got {C_np.min()}")
    if sample_weight is None:
        weight = xp.ones((batch, n), dtype=X.dtype, device=device)
    else:
        weight = xp.astype(sample_weight, X.dtype)
        if weight.ndim == 1:
            weight = xp.broadcast_to(weight[None, :], (batch, n))
    weight_sum = to_numpy(xp.sum(weight, axis=-1))
    if np.any(weight_sum <= 0):
        raise ValueError("sample_weight must give every problem a positive total weight")
    Y = xp.astype(Y, xp.int64)
    labels_max = to_numpy(xp.max(Y, axis=-1)) if Y.shape[-1] else np.zeros(1)
    if np.any(labels_max >= (n_classes_np if Y.ndim == 2 else n_classes_np.min())) or bool(xp.any(Y < 0)):
        raise ValueError("Y must hold encoded labels in 0 .. n_classes - 1")

    Xt = _with_intercept_column(xp, X)
    l2 = xp.asarray(1.0 / (C_np * weight_sum), dtype=X.dtype, device=device)
    class_mask = _class_mask(xp, n_classes_np, k_max, X)
    free = _free_mask(xp, n_classes_np, k_max, X)
    W0 = xp.zeros((batch, Xt.shape[-1], k_max), dtype=X.dtype, device=device)
    if coef_init is not None:
        intercept = intercept_init if intercept_init is not None else xp.zeros((batch, k_max), dtype=X.dtype, device=device)
        W0 = xp.concat([xp.astype(coef_init, X.dtype), xp.astype(intercept, X.dtype)[:, None, :]], axis=1) * free

    with _single_threaded_blas(xp):
        return _fit_chunks(xp, Xt, Y, weight, l2, class_mask, free, W0, n_classes_np, tol=tol, max_iter=max_iter, history=history, newton_after=newton_after)


def _single_threaded_blas(xp: Any):
    """On NumPy, run BLAS single-threaded: the products here are thin (D + 1 = 11 rows) and OpenBLAS's
    thread start-up made them 4-50x slower on a loaded 2-core machine (measured). Other backends untouched."""
    import contextlib

    if "numpy" not in getattr(xp, "__name__", ""):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(limits=1, user_api="blas")


def _fit_chunks(xp, Xt, Y, weight, l2, class_mask, free, W0, n_classes_np, *, tol, max_iter, history, newton_after) -> LogisticFit:
    device = getattr(Xt, "device", None)
    batch, n, k_max = W0.shape[0], Xt.shape[-2], W0.shape[2]
    # Chunk the batch so the logits stay small; each chunk is an independent batched solve.
    per_chunk = max(1, int(_LOGITS_BYTES // (8 * n * k_max * 3)))
    parts, n_iter, converged = [], np.zeros(batch, np.int64), np.zeros(batch, bool)
    for start in range(0, batch, per_chunk):
        sel = np.arange(start, min(batch, start + per_chunk))
        idx = xp.asarray(sel, device=device)
        objective = _Objective(
            xp,
            Xt if Xt.ndim == 2 else xp.take(Xt, idx, axis=0),
            Y if Y.ndim == 1 else xp.take(Y, idx, axis=0),
            xp.take(weight, idx, axis=0),
            xp.take(l2, idx, axis=0),
            xp.take(class_mask, idx, axis=0),
            xp.take(free, idx, axis=0),
        )
        W, it, conv = _lbfgs(
            objective, xp.take(W0, idx, axis=0), tol=tol, max_iter=max_iter, history=history, newton_after=newton_after
        )
        parts.append(W)
        n_iter[sel], converged[sel] = it, conv
    W = xp.concat(parts, axis=0)
    return LogisticFit(W[:, :-1, :], W[:, -1, :], n_classes_np, n_iter, converged)


def _batch_size(X: Any, Y: Any, C: Any, n_classes: Any, sample_weight: Any) -> int:
    sizes = []
    if X.ndim == 3:
        sizes.append(X.shape[0])
    elif X.ndim != 2:
        raise ValueError(f"X must be (n, D) or (B, n, D); got shape {tuple(X.shape)}")
    if Y.ndim == 2:
        sizes.append(Y.shape[0])
    elif Y.ndim != 1:
        raise ValueError(f"Y must be (n,) or (B, n); got shape {tuple(Y.shape)}")
    if Y.shape[-1] != X.shape[-2]:
        raise ValueError(f"X has {X.shape[-2]} samples but Y has {Y.shape[-1]}")
    for value in (C, n_classes):
        arr = np.asarray(to_numpy(value))
        if arr.ndim == 1:
            sizes.append(arr.shape[0])
    if sample_weight is not None and sample_weight.ndim == 2:
        sizes.append(sample_weight.shape[0])
    sizes = sorted(set(sizes))
    if len(sizes) > 1:
        raise ValueError(f"batch sizes of X, Y, C, n_classes and sample_weight disagree: {sizes}")
    return sizes[0] if sizes else 1


def kfold_masks(n_samples: int, n_folds: int) -> np.ndarray:
    """Held-out masks ``(n_folds, n_samples)`` of scikit-learn's ``KFold(n_folds)`` without shuffling.

    Consecutive blocks; the first ``n_samples % n_folds`` folds hold one extra sample.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2; got {n_folds}")
    if n_samples < n_folds:
        raise ValueError(f"cannot split {n_samples} samples into {n_folds} folds; use more samples or fewer folds")
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    masks = np.zeros((n_folds, n_samples), dtype=bool)
    for j in range(n_folds):
        masks[j, bounds[j] : bounds[j + 1]] = True
    return masks


@dataclass
class LogisticCVResult:
    """Per-target outcome of :func:`logistic_regression_cv` (``T`` targets).

    ``classes[t]`` are the sorted label values of target ``t`` (scikit-learn's ``classes_``), ``C`` the
    chosen regularisation ``(T,)``, ``Cs`` the grid, ``scores`` the held-out accuracies
    ``(T, n_Cs, n_folds)``, ``fit`` the refitted models (one batch of ``T``).
    """

    classes: list[np.ndarray]
    C: np.ndarray
    Cs: np.ndarray
    scores: np.ndarray
    fit: LogisticFit

    def predict(self, X: Any) -> np.ndarray:
        """Predicted label values ``(n, T)`` (host NumPy; labels are host-side bookkeeping)."""
        encoded = to_numpy(self.fit.predict(X))  # (T, n)
        return np.stack([self.classes[t][encoded[t]] for t in range(len(self.classes))], axis=1)


def c_grid(Cs: int | Sequence[float]) -> np.ndarray:
    """scikit-learn's ``Cs``: an int means ``np.logspace(-4, 4, Cs)``."""
    if isinstance(Cs, (int, np.integer)):
        if Cs < 1:
            raise ValueError(f"Cs must be a positive int or a list of positive floats; got {Cs}")
        return np.logspace(-4, 4, int(Cs))
    grid = np.asarray(Cs, dtype=np.float64).ravel()
    if grid.size == 0 or np.any(grid <= 0):
        raise ValueError("Cs must be a positive int or a non-empty list of positive floats")
    return grid


def encode_labels(labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Per column of ``labels`` ``(n, T)``: sorted classes and the encoded labels ``(T, n)``."""
    classes, encoded = [], np.empty(labels.shape[::-1], dtype=np.int64)
    for t in range(labels.shape[1]):
        values, inverse = np.unique(labels[:, t], return_inverse=True)
        classes.append(values)
        encoded[t] = inverse
    return classes, encoded


def logistic_regression_cv(
    X: Any,
    labels: Any,
    *,
    Cs: int | Sequence[float] = 10,
    n_folds: int = 5,
    tol: float = 1e-5,
    max_iter: int = 100,
    warm_path: bool = True,
) -> LogisticCVResult:
    """scikit-learn's ``LogisticRegressionCV(Cs, cv=KFold(n_folds))`` for every column of ``labels`` at once.

    Like scikit-learn, the ``C`` grid is solved in increasing order, each value warm-started from the
    previous solution, with at most ``max_iter = 100`` iterations per ``C`` (scikit-learn's budget) and a
    gradient tolerance ten times tighter than scikit-learn's.

    Selection rule of scikit-learn 1.9 (default ``scoring=None``, i.e. accuracy): the held-out accuracy
    of each fold is summed over folds for each ``C``; the first ``C`` with the largest sum wins; the
    model is refitted on all samples with that ``C`` (warm-started from the mean of the fold solutions,
    as scikit-learn does; the optimum is the same). Classes are those present in the full training
    labels, also in folds that miss some of them.

    Parameters
    ----------
    X : array ``(n, D)`` (any array-API backend)
    labels : int array ``(n, T)`` — one classification target per column (host or backend array).
    """
    xp = array_namespace(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features); got shape {tuple(X.shape)}")
    labels_np = np.asarray(to_numpy(labels))
    if labels_np.ndim == 1:
        labels_np = labels_np[:, None]
    if labels_np.ndim != 2 or labels_np.shape[0] != X.shape[0]:
        raise ValueError(f"labels must be (n_samples, n_targets) with n_samples = {X.shape[0]}; got {labels_np.shape}")
    device = getattr(X, "device", None)
    grid = c_grid(Cs)
    classes, encoded = encode_labels(labels_np)
    n_classes = np.array([c.size for c in classes])
    for t, k in enumerate(n_classes):
        if k < 2:
            raise ValueError(f"target {t} has a single class ({classes[t][0]}) in the training labels; it cannot be classified")
    held_out = kfold_masks(X.shape[0], n_folds)
    n_targets, n_cs = len(classes), grid.size

    C_best = np.empty(n_targets)
    scores = np.empty((n_targets, n_cs, n_folds))
    k_max = int(n_classes.max())
    coef = [None] * n_targets
    intercept = [None] * n_targets
    for group in _groups_by_class_count(n_classes):
        sub_scores, sub_best, sub_fit = _cv_group(
            xp, X, encoded[group], n_classes[group], held_out, grid, tol=tol, max_iter=max_iter, warm_path=warm_path
        )
        scores[group], C_best[group] = sub_scores, grid[sub_best]
        pad = k_max - sub_fit.coef.shape[2]
        for row, t in enumerate(group):
            c, b = sub_fit.coef[row], sub_fit.intercept[row]
            if pad:
                c = xp.concat([c, xp.zeros((c.shape[0], pad), dtype=c.dtype, device=device)], axis=1)
                b = xp.concat([b, xp.zeros((pad,), dtype=b.dtype, device=device)], axis=0)
            coef[t], intercept[t] = c, b
    fit = LogisticFit(xp.stack(coef, axis=0), xp.stack(intercept, axis=0), n_classes, np.zeros(n_targets, np.int64), np.ones(n_targets, bool))
    return LogisticCVResult(classes=classes, C=C_best, Cs=grid, scores=scores, fit=fit)


def _groups_by_class_count(n_classes: np.ndarray, waste: float = 1.3) -> list[np.ndarray]:
    """Targets grouped by similar class counts, so padding every problem to the group's largest
    ``K`` costs at most ``waste`` times the unpadded work (binary and multinomial never share)."""
    order = np.argsort(-n_classes, kind="stable")
    groups: list[list[int]] = []
    for t in order:
        k = int(n_classes[t])
        if groups:
            g = groups[-1]
            k0 = int(n_classes[g[0]])
            same_kind = (k == 2) == (k0 == 2)
            if same_kind and k0 * (len(g) + 1) <= waste * (sum(int(n_classes[i]) for i in g) + k):
                g.append(int(t))
                continue
        groups.append([int(t)])
    return [np.array(sorted(g)) for g in groups]


def _solve_path(xp, X, encoded, n_classes, held_out, grid, *, tol, max_iter) -> LogisticFit:
    """All (target, fold) problems along the C grid in increasing order, each C warm-started from the
    previous solution (scikit-learn's regularisation path; the optimum is unchanged, the iterations drop)."""
    device = getattr(X, "device", None)
    n_targets, n_folds = encoded.shape[0], held_out.shape[0]
    t_idx, f_idx = (a.ravel() for a in np.meshgrid(np.arange(n_targets), np.arange(n_folds), indexing="ij"))
    weights = xp.asarray((~held_out[f_idx]).astype(np.float64), dtype=X.dtype, device=device)
    Y = xp.asarray(encoded[t_idx], device=device)
    coefs, intercepts, n_iter, converged, previous = [], [], [], [], None
    for C in grid:
        fit = fit_logistic_regression(
            X, Y, C=float(C), n_classes=n_classes[t_idx], sample_weight=weights, tol=tol, max_iter=max_iter,
            coef_init=None if previous is None else previous.coef,
            intercept_init=None if previous is None else previous.intercept,
        )
        coefs.append(fit.coef)
        intercepts.append(fit.intercept)
        n_iter.append(fit.n_iter)
        converged.append(fit.converged)
        previous = fit
    coef = xp.stack(coefs, axis=1)  # (T * F, n_Cs, D, K): C varies fastest, as in the problem grid
    intercept = xp.stack(intercepts, axis=1)
    batch = coef.shape[0] * coef.shape[1]
    return LogisticFit(
        xp.reshape(coef, (batch,) + tuple(coef.shape[2:])),
        xp.reshape(intercept, (batch, intercept.shape[2])),
        np.repeat(n_classes[t_idx], grid.size),
        np.stack(n_iter, axis=1).ravel(),
        np.stack(converged, axis=1).ravel(),
    )


def _cv_group(xp, X, encoded, n_classes, held_out, grid, *, tol, max_iter, warm_path=True):
    """Cross-validate and refit one group of targets; returns scores, best C index and the refit."""
    device = getattr(X, "device", None)
    n_targets, n_folds, n_cs = encoded.shape[0], held_out.shape[0], grid.size
    # Problem grid: target x fold x C, flattened in that order.
    t_idx, f_idx, c_idx = (a.ravel() for a in np.meshgrid(np.arange(n_targets), np.arange(n_folds), np.arange(n_cs), indexing="ij"))
    if warm_path:
        fit = _solve_path(xp, X, encoded, n_classes, held_out, grid, tol=tol, max_iter=max_iter)
    else:
        weights = xp.asarray((~held_out[f_idx]).astype(np.float64), dtype=X.dtype, device=device)
        Y = xp.asarray(encoded[t_idx], device=device)
        fit = fit_logistic_regression(X, Y, C=grid[c_idx], n_classes=n_classes[t_idx], sample_weight=weights, tol=tol, max_iter=max_iter)

    predicted = to_numpy(fit.predict(X))  # (problems, n)
    correct = predicted == encoded[t_idx]
    fold_mask = held_out[f_idx]
    # Accuracy per held-out fold, as scikit-learn's scorer computes it (a float mean per fold).
    acc = (correct & fold_mask).sum(axis=1) / fold_mask.sum(axis=1)
    scores = acc.reshape(n_targets, n_folds, n_cs).transpose(0, 2, 1)  # (T, n_Cs, n_folds)
    summed = np.zeros((n_targets, n_cs))
    for j in range(n_folds):  # sum over folds in order, as scikit-learn's ``scores.sum(axis=0)``
        summed = summed + scores[:, :, j]
    best = np.argmax(summed, axis=1)  # first maximum wins ties

    W = xp.concat([fit.coef, fit.intercept[:, None, :]], axis=1)
    W = xp.reshape(W, (n_targets, n_folds, n_cs) + tuple(W.shape[1:]))
    W_init = xp.stack([xp.mean(W[t, :, int(best[t]), ...], axis=0) for t in range(n_targets)], axis=0)
    refit = fit_logistic_regression(
        X,
        xp.asarray(encoded, device=device),
        C=grid[best],
        n_classes=n_classes,
        coef_init=W_init[:, :-1, :],
        intercept_init=W_init[:, -1, :],
        tol=tol,
        max_iter=max_iter,
    )
    return scores, best, refit


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-column accuracy of label matrices ``(n, T)`` (host arrays)."""
    return np.mean(np.asarray(predicted) == np.asarray(truth), axis=0)


__all__ = [
    "LogisticFit",
    "LogisticCVResult",
    "fit_logistic_regression",
    "logistic_regression_cv",
    "kfold_masks",
    "c_grid",
    "encode_labels",
    "accuracy",
]
