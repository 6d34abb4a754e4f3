"""A fitted logistic regression in scikit-learn's layout (``coef_``, ``intercept_``), and its predictions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class ExactLogisticFit:
    """A fitted logistic regression in scikit-learn's layout.

    ``coef`` is ``(1, D)`` for two classes (``classes[1]`` positive) and ``(K, D)`` for more;
    ``intercept`` is ``(1,)`` or ``(K,)``; ``n_iter`` counts L-BFGS iterations as scikit-learn's ``n_iter_``.
    """

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(n, 1)`` (binary) or ``(n, K)``: ``x @ coef.T + intercept``, as scikit-learn."""
        return x @ self.coef.T + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(n,)``: positive logit for two classes, else the first largest logit."""
        return self.classes[predicted_index(self.decision_function(x))]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, K)``, columns in ``classes`` order (scikit-learn's ``predict_proba``)."""
        logits = self.decision_function(x)
        if self.classes.size == 2:
            positive = expit(logits[:, 0])
            return np.stack([1.0 - positive, positive], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits


def predicted_index(logits: np.ndarray) -> np.ndarray:
    """scikit-learn's ``LinearClassifierMixin.predict`` on logits ``(n, 1)`` or ``(n, K)``: class indices."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.intp)
    return logits.argmax(axis=1)
