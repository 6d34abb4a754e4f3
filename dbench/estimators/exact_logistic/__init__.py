"""scikit-learn's lbfgs logistic regression, reproduced iterate for iterate at a fraction of its cost.

``LogisticRegression()`` and ``LogisticRegressionCV`` as scikit-learn 1.9 fits them: the same scipy
L-BFGS-B call (options, starting points, ``C`` path) on the same objective, evaluated by a few
vectorised NumPy operations. Same ``n_iter``, the same chosen ``C`` and coefficients to rounding error,
which matters because disentanglement_lib's fits often stop at ``max_iter=100`` short of the optimum.
Used by explicitness, the beta-VAE score and the downstream task's default ``logistic_solver="exact"``;
docs/estimators.md compares it with the batched solver (:mod:`dbench.estimators.batched_logistic`).

Reading guide:

* ``_objective.py``: the loss and gradient (binomial, multinomial) on a ``(D + 1, n)`` design matrix;
* ``_solver.py``: :func:`exact_logistic_regression` (``LogisticRegression().fit``) and
  ``minimise``, scikit-learn's call of scipy;
* ``_cv.py``: :func:`exact_logistic_regression_cv` (``LogisticRegressionCV(Cs, cv=KFold(n_folds)).fit``);
* ``_model.py``: :class:`ExactLogisticFit` (``coef_``, ``intercept_``, ``predict``, ``predict_proba``).

Host NumPy only; wrap blocks of fits in :func:`dbench.estimators.threads.single_blas_thread`.
"""

from __future__ import annotations

from dbench.estimators.exact_logistic._cv import (
    ExactLogisticCV,
    exact_logistic_regression_cv,
)
from dbench.estimators.exact_logistic._model import ExactLogisticFit
from dbench.estimators.exact_logistic._solver import exact_logistic_regression

__all__ = ["ExactLogisticCV", "ExactLogisticFit", "exact_logistic_regression", "exact_logistic_regression_cv"]
