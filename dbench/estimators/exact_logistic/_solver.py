"""``LogisticRegression()``'s fit: scipy's L-BFGS-B with scikit-learn's options, on the vectorised objective."""

from __future__ import annotations

import numpy as np

from dbench.estimators.exact_logistic._model import ExactLogisticFit
from dbench.estimators.exact_logistic._objective import (
    LossGradient,
    design_matrix,
    sklearn_objective,
)


def exact_logistic_regression(
    x: np.ndarray,
    y: np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> ExactLogisticFit:
    """``sklearn.linear_model.LogisticRegression(C=C, max_iter=max_iter, tol=tol).fit(x, y)``, faster.

    Same optimiser, objective, options and starting point (zero) as scikit-learn 1.9's lbfgs path, so
    the same iterate (measured in ``docs/metrics.md``). ``x``: float64 ``(n, D)``; ``y``: ``(n,)`` labels
    with at least two distinct values.
    """
    classes, encoded = check_xy(x, y)
    objective, n_params = sklearn_objective(design_matrix(x), encoded, classes.size, 1.0 / (C * x.shape[0]))
    w, n_iter = minimise(objective, np.zeros(n_params), 1.0 / (C * x.shape[0]), max_iter, tol)
    return to_fit(classes, w, x.shape[1], n_iter)


def minimise(objective: LossGradient, w0: np.ndarray, l2_strength: float, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """scikit-learn's call of scipy's L-BFGS-B; returns the iterate and ``n_iter_ = min(nit, max_iter)``."""
    from scipy.optimize import minimize

    result = minimize(
        objective, w0, args=(l2_strength,), method="L-BFGS-B", jac=True,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    return result.x, min(int(result.nit), max_iter)


def to_fit(classes: np.ndarray, w: np.ndarray, n_features: int, n_iter: int) -> ExactLogisticFit:
    """scikit-learn's ``coef_`` / ``intercept_`` from the ravelled parameters."""
    if classes.size == 2:
        return ExactLogisticFit(classes, w[None, :n_features].copy(), w[n_features:].copy(), n_iter)
    # scikit-learn ravels its (K, D + 1) coefficients in Fortran order: ours reshape C-order to (D + 1, K).
    weights = w.reshape(n_features + 1, classes.size)
    return ExactLogisticFit(classes, weights[:n_features].T.copy(), weights[n_features].copy(), n_iter)


def check_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes of ``y`` and its encoded labels, after checking shapes and that two classes exist."""
    classes, encoded = np.unique(y, return_inverse=True)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (n, D) and y (n,) with the same n; got {x.shape} and {y.shape}")
    if classes.size < 2:
        raise ValueError(f"y must take at least two distinct values to fit a logistic regression; got {classes}")
    return classes, encoded
