"""L2 logistic regression for many problems at once, on any array-API backend, solved to the optimum.

scikit-learn's objective (binomial for two classes, multinomial otherwise, intercept unpenalised)
for a whole batch of problems: every factor, ``C`` and cross-validation fold at once, sharing one
``X`` and differing in labels, ``C`` and sample weights, on NumPy, CuPy, torch or array_api_strict.
It reaches the optimum scikit-learn's lbfgs approaches (a gradient tolerance ten times tighter), not
scikit-learn's particular iterates: for those use :mod:`dbench.estimators.exact_logistic`.
docs/estimators.md compares the two. Used by the few-shot probe and the downstream task's
``logistic_solver="batched"``.

Reading guide:

* ``_objective.py``: :class:`~._objective.BatchedObjective`, the scaled loss, its gradient and exact
  Newton directions for a batch (sample-major arrays, shared-``X`` products as single GEMMs);
* ``_solver.py``: :func:`batched_logistic_regression`: input checks, chunking, and the batched
  L-BFGS (Armijo backtracking, finished problems dropped, Newton steps for small stubborn problems);
* ``_cv.py``: :func:`batched_logistic_regression_cv`, ``LogisticRegressionCV`` for many targets
  (warm-started ``C`` path, fold scores, refit), and :func:`encode_labels`;
* ``_model.py``: :class:`BatchedLogisticFit`, the solutions and their predictions.
"""

from __future__ import annotations

from dbench.estimators.batched_logistic._cv import (
    BatchedLogisticCV,
    batched_logistic_regression_cv,
    encode_labels,
)
from dbench.estimators.batched_logistic._model import BatchedLogisticFit
from dbench.estimators.batched_logistic._solver import batched_logistic_regression

__all__ = [
    "BatchedLogisticCV",
    "BatchedLogisticFit",
    "batched_logistic_regression",
    "batched_logistic_regression_cv",
    "encode_labels",
]
