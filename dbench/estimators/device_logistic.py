"""``LogisticRegression()`` on the codes' backend: scikit-learn's objective solved to its optimum there.

The metrics that fit dlib's plain ``LogisticRegression()`` (the beta-VAE score, explicitness) call
:func:`fit_logistic_on_backend` when their codes live on a device (torch, CuPy, array_api_strict):
every target is one problem of :func:`~dbench.estimators.batched_logistic.batched_logistic_regression`
(scikit-learn 1.9's objective: ``C = 1``, L2, binomial for two classes, multinomial for more,
intercept unpenalised), solved together on the device to a gradient tolerance ten times tighter than
scikit-learn's lbfgs, i.e. to the optimum scikit-learn's iterates approach. On NumPy codes the
metrics keep :mod:`dbench.estimators.exact_logistic` (scikit-learn's own iterates, on the host), the
exact path. docs/gpu.md gives the measured agreement of the two.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import from_numpy, to_numpy
from dbench.estimators.batched_logistic import BatchedLogisticFit, batched_logistic_regression, encode_labels
from dbench.estimators.threads import single_cpu_thread

# Gradient tolerance of the scaled objective (scikit-learn's lbfgs stops at 1e-4) and iteration cap.
TOL = 1e-5
MAX_ITER = 300


@dataclass
class BackendLogistic:
    """Fitted logistic regressions, one per target, on the backend of the codes they were fitted on."""

    classes: list[np.ndarray]  # per target: sorted class labels (scikit-learn's classes_)
    fit: BatchedLogisticFit

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n, T)`` as host NumPy (ties go to the lowest class, as scikit-learn)."""
        with single_cpu_thread(X):
            encoded = to_numpy(self.fit.predict(X))  # (T, n)
        return np.stack([self.classes[t][encoded[t]] for t in range(len(self.classes))], axis=1)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities ``(T, n, K)`` on the backend; columns in each target's ``classes``
        order, absent classes (a target with fewer than ``K``) zero."""
        xp = array_namespace(X)
        with single_cpu_thread(X):
            logits = self.fit.decision_function(X)
            exps = xp.exp(logits - xp.max(logits, axis=-1, keepdims=True))
            return exps / xp.sum(exps, axis=-1, keepdims=True)


def fit_logistic_on_backend(X: Any, labels: Any, *, C: float = 1.0) -> BackendLogistic:
    """``LogisticRegression(C=C)`` for every column of ``labels`` ``(n,)`` or ``(n, T)``, on ``X``'s backend.

    ``X`` ``(n, D)`` is cast to float64 (dlib fits float64 features). Each target needs two classes.
    A problem that stops before the tolerance (nearly separable data with many classes) is kept, with
    a ``RuntimeWarning`` naming how many, as scikit-learn keeps its iterate with a ConvergenceWarning.
    """
    xp = array_namespace(X)
    X = xp.astype(X, xp.float64)
    host = np.asarray(to_numpy(labels))
    host = host[:, None] if host.ndim == 1 else host
    classes, encoded = encode_labels(host)
    n_classes = np.array([c.size for c in classes])
    if np.any(n_classes < 2):
        raise ValueError(f"every target needs at least two classes to fit a logistic regression; got {n_classes.tolist()}")
    Y = from_numpy(xp, encoded, device=getattr(X, "device", None))
    # On a CPU the products are thin (D + 1 rows): one thread (NumPy's BLAS is pinned by the solver).
    with single_cpu_thread(X):
        fit = batched_logistic_regression(X, Y, C=C, n_classes=n_classes, tol=TOL, max_iter=MAX_ITER)
    if not np.all(fit.converged):
        warnings.warn(
            f"{int(np.sum(~fit.converged))} of {fit.converged.size} logistic regressions stopped after {MAX_ITER} "
            f"iterations above the gradient tolerance {TOL}; their last iterate is used",
            RuntimeWarning,
            stacklevel=2,
        )
    return BackendLogistic(classes, fit)
