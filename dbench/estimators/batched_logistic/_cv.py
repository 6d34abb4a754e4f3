"""scikit-learn's ``LogisticRegressionCV`` for many targets at once, on the batched solver.

Every (target, fold, ``C``) problem shares one ``X`` (a held-out fold has sample weight 0); the ``C``
grid is a warm-started path, as scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy
from dbench.estimators.batched_logistic._model import BatchedLogisticFit
from dbench.estimators.batched_logistic._solver import batched_logistic_regression
from dbench.estimators.model_selection import c_grid, kfold_masks


@dataclass
class BatchedLogisticCV:
    """Per-target outcome of :func:`batched_logistic_regression_cv` (``T`` targets).

    ``classes[t]`` are the sorted label values of target ``t`` (scikit-learn's ``classes_``), ``C`` the
    chosen regularisation ``(T,)``, ``Cs`` the grid, ``scores`` the held-out accuracies
    ``(T, n_Cs, n_folds)``, ``fit`` the refitted models (one batch of ``T``).
    """

    classes: list[np.ndarray]
    C: np.ndarray
    Cs: np.ndarray
    scores: np.ndarray
    fit: BatchedLogisticFit

    def predict(self, X: Any) -> np.ndarray:
        """Predicted label values ``(n, T)`` (host NumPy; labels are host-side bookkeeping)."""
        encoded = to_numpy(self.fit.predict(X))  # (T, n)
        return np.stack([self.classes[t][encoded[t]] for t in range(len(self.classes))], axis=1)


def encode_labels(labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Per column of ``labels`` ``(n, T)``: sorted classes and the encoded labels ``(T, n)``."""
    classes, encoded = [], np.empty(labels.shape[::-1], dtype=np.int64)
    for t in range(labels.shape[1]):
        values, inverse = np.unique(labels[:, t], return_inverse=True)
        classes.append(values)
        encoded[t] = inverse
    return classes, encoded


def batched_logistic_regression_cv(
    X: Any,
    labels: Any,
    *,
    Cs: int | Sequence[float] = 10,
    n_folds: int = 5,
    tol: float = 1e-5,
    max_iter: int = 100,
    warm_path: bool = True,
) -> BatchedLogisticCV:
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
    fit = BatchedLogisticFit(
        xp.stack(coef, axis=0), xp.stack(intercept, axis=0), n_classes, np.zeros(n_targets, np.int64),
        np.ones(n_targets, bool),
    )
    return BatchedLogisticCV(classes=classes, C=C_best, Cs=grid, scores=scores, fit=fit)


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


def _solve_path(xp, X, encoded, n_classes, held_out, grid, *, tol, max_iter) -> BatchedLogisticFit:
    """All (target, fold) problems along the C grid in increasing order, each C warm-started from the
    previous solution (scikit-learn's regularisation path; the optimum is unchanged, the iterations drop)."""
    device = getattr(X, "device", None)
    n_targets, n_folds = encoded.shape[0], held_out.shape[0]
    t_idx, f_idx = (a.ravel() for a in np.meshgrid(np.arange(n_targets), np.arange(n_folds), indexing="ij"))
    weights = xp.asarray((~held_out[f_idx]).astype(np.float64), dtype=X.dtype, device=device)
    Y = xp.asarray(encoded[t_idx], device=device)
    coefs, intercepts, n_iter, converged, previous = [], [], [], [], None
    for C in grid:
        fit = batched_logistic_regression(
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
    return BatchedLogisticFit(
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
    grid_axes = np.meshgrid(np.arange(n_targets), np.arange(n_folds), np.arange(n_cs), indexing="ij")
    t_idx, f_idx, c_idx = (a.ravel() for a in grid_axes)
    if warm_path:
        fit = _solve_path(xp, X, encoded, n_classes, held_out, grid, tol=tol, max_iter=max_iter)
    else:
        weights = xp.asarray((~held_out[f_idx]).astype(np.float64), dtype=X.dtype, device=device)
        Y = xp.asarray(encoded[t_idx], device=device)
        fit = batched_logistic_regression(
            X, Y, C=grid[c_idx], n_classes=n_classes[t_idx], sample_weight=weights, tol=tol, max_iter=max_iter
        )

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
    refit = batched_logistic_regression(
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
