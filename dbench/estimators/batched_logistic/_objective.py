"""scikit-learn's L2 logistic objective for a batch of problems: loss, gradient and Newton direction.

Every problem minimises ``mean_w(logloss) + l2 / 2 * ||coef||^2`` (scikit-learn's objective divided by
``C * sum_i w_i``), ``l2 = 1 / (C * sum_i w_i)``, intercept unpenalised; weights ``W`` are
``(B, D + 1, K)`` with the intercept as the last row. A binary problem keeps column 0 at zero (one free
column, binomial); absent classes of a problem padded to the batch's ``K`` have logit -inf.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def with_intercept_column(xp: Any, X: Any) -> Any:
    """``X`` with a last column of ones (the intercept's feature)."""
    ones = xp.ones(X.shape[:-1] + (1,), dtype=X.dtype, device=getattr(X, "device", None))
    return xp.concat([X, ones], axis=-1)


def class_columns(xp: Any, n_classes: np.ndarray, k_max: int, like: Any) -> Any:
    """Boolean ``(B, K)``: which logit columns exist for each problem."""
    mask = np.arange(k_max)[None, :] < np.asarray(n_classes)[:, None]
    return xp.asarray(mask, device=getattr(like, "device", None))


def free_columns(xp: Any, n_classes: np.ndarray, k_max: int, like: Any) -> Any:
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


def masked_logits(xp: Any, Xt: Any, W: Any, class_mask: Any) -> Any:
    """Logits ``(B, n, K)`` with absent classes at -inf."""
    Z = xp.permute_dims(_logits(xp, Xt, W), (1, 0, 2))
    return xp.where(class_mask[:, None, :], Z, xp.asarray(-xp.inf, dtype=Z.dtype))


class BatchedObjective:
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

    def take(self, keep: Any) -> BatchedObjective:
        xp = self.xp
        out = object.__new__(BatchedObjective)
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
