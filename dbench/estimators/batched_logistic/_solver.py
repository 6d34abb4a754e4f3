"""The batched solver: L-BFGS with Armijo backtracking, exact Newton steps for small ill-conditioned
problems, finished problems dropped from the batch, and the batch cut into chunks that fit in memory."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy
from dbench.estimators.batched_logistic._model import BatchedLogisticFit
from dbench.estimators.batched_logistic._objective import (
    BatchedObjective,
    class_columns,
    free_columns,
    with_intercept_column,
)
from dbench.estimators.threads import single_blas_thread

# Problems per solver batch are capped so the (batch, n, K) logits stay near this many bytes.
_LOGITS_BYTES = 64 * 2**20
# Problems with more unknowns than this never switch from L-BFGS to Newton.
_NEWTON_MAX_PARAMS = 160


def batched_logistic_regression(
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
) -> BatchedLogisticFit:
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
    BatchedLogisticFit
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

    Xt = with_intercept_column(xp, X)
    l2 = xp.asarray(1.0 / (C_np * weight_sum), dtype=X.dtype, device=device)
    class_mask = class_columns(xp, n_classes_np, k_max, X)
    free = free_columns(xp, n_classes_np, k_max, X)
    W0 = xp.zeros((batch, Xt.shape[-1], k_max), dtype=X.dtype, device=device)
    if coef_init is not None:
        intercept = intercept_init if intercept_init is not None else xp.zeros((batch, k_max), dtype=X.dtype, device=device)
        W0 = xp.concat([xp.astype(coef_init, X.dtype), xp.astype(intercept, X.dtype)[:, None, :]], axis=1) * free

    with _single_threaded_blas(xp):
        return _fit_chunks(
            xp, Xt, Y, weight, l2, class_mask, free, W0, n_classes_np,
            tol=tol, max_iter=max_iter, history=history, newton_after=newton_after,
        )


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


def _single_threaded_blas(xp: Any) -> Any:
    """On NumPy, run BLAS single-threaded (the products here are thin); other backends untouched."""
    if "numpy" not in getattr(xp, "__name__", ""):
        return contextlib.nullcontext()
    return single_blas_thread()


def _fit_chunks(
    xp, Xt, Y, weight, l2, class_mask, free, W0, n_classes_np, *, tol, max_iter, history, newton_after
) -> BatchedLogisticFit:
    device = getattr(Xt, "device", None)
    batch, n, k_max = W0.shape[0], Xt.shape[-2], W0.shape[2]
    # Chunk the batch so the logits stay small; each chunk is an independent batched solve.
    per_chunk = max(1, int(_LOGITS_BYTES // (8 * n * k_max * 3)))
    parts, n_iter, converged = [], np.zeros(batch, np.int64), np.zeros(batch, bool)
    for start in range(0, batch, per_chunk):
        sel = np.arange(start, min(batch, start + per_chunk))
        idx = xp.asarray(sel, device=device)
        objective = BatchedObjective(
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
    return BatchedLogisticFit(W[:, :-1, :], W[:, -1, :], n_classes_np, n_iter, converged)


def _lbfgs(
    objective: BatchedObjective, W0: Any, *, tol: float, max_iter: int, history: int, newton_after: int
) -> tuple[Any, np.ndarray, np.ndarray]:
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


def _two_loop(xp: Any, G: Any, S_hist: list, Y_hist: list, rho_hist: list, gamma: Any) -> Any:
    """L-BFGS two-loop recursion: ``-H G`` with ``H`` the inverse-Hessian estimate, per problem."""
    q = G
    alphas = []
    for s, y, rho in zip(reversed(S_hist), reversed(Y_hist), reversed(rho_hist), strict=True):
        a = rho * _inner(xp, s, q)
        q = q - a[:, None, None] * y
        alphas.append(a)
    r = gamma[:, None, None] * q
    for s, y, rho, a in zip(S_hist, Y_hist, rho_hist, reversed(alphas), strict=True):
        b = rho * _inner(xp, y, r)
        r = r + (a - b)[:, None, None] * s
    return -r


def _inner(xp: Any, a: Any, b: Any) -> Any:
    return xp.sum(a * b, axis=(1, 2))


def _newton_in_chunks(objective: BatchedObjective, W: Any, G: Any) -> Any:
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
