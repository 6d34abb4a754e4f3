"""The log-loss's negative gradients and hessians for all tree columns at once, on the array backend.

The same formulas, term for term, as the compiled trees' ``_gradients.py`` (scikit-learn's
``HalfBinomialLoss`` / ``HalfMultinomialLoss``): the sigmoid written to stay finite, the softmax
shifted by each sample's largest score with its denominator summed in class order, and the hessian
``q (1 - q)`` with ``q = y - (y - p)`` as scikit-learn's leaf update recomputes it.
"""

from __future__ import annotations

from typing import Any


def negative_gradients(xp: Any, raw: Any, targets: Any) -> tuple[Any, Any]:
    """``(y - p, q (1 - q))``, both ``(T, n)``, for raw scores ``raw`` ``(T, n)``.

    ``targets`` is ``(T, n)`` float64: 1.0 where the sample's class is the column's (for two classes
    the single column is class 1).
    """
    if raw.shape[0] == 1:
        decay = xp.exp(-xp.abs(raw))  # exp(-r) for r >= 0, exp(r) below: the compiled branches' values
        p = xp.where(raw >= 0, 1.0 / (1.0 + decay), decay / (1.0 + decay))
    else:
        exps = xp.exp(raw - xp.max(raw, axis=0, keepdims=True))
        denominator = xp.cumulative_sum(exps, axis=0)[-1:, :]  # class by class, in order
        p = exps / denominator
    g = targets - p
    q = targets - g
    return g, q * (1.0 - q)
