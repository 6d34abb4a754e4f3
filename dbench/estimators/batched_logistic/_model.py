"""The solutions of a batch of logistic-regression problems, and their predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench.estimators.batched_logistic._objective import (
    class_columns,
    masked_logits,
    with_intercept_column,
)


@dataclass
class BatchedLogisticFit:
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
        Xt = with_intercept_column(xp, X)
        W = xp.concat([self.coef, self.intercept[:, None, :]], axis=1)
        return masked_logits(xp, Xt, W, class_columns(xp, self.n_classes, W.shape[2], W))

    def predict(self, X: Any) -> Any:
        """Encoded labels ``(B, n)`` (int64; ties go to the lowest class, as in scikit-learn)."""
        xp = array_namespace(X, self.coef)
        return xp.argmax(self.decision_function(X), axis=-1)
