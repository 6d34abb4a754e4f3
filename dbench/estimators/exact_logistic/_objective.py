"""scikit-learn's lbfgs objective, vectorised: mean log-loss + ``||coef||^2 / (2 C n)`` and its gradient.

Binomial (one coefficient vector, ``classes[1]`` positive) for two classes, symmetric multinomial
otherwise; the intercept is unpenalised. Parameters are ravelled as scikit-learn's: ``(coef,
intercept)`` for two classes, the ``(D + 1, K)`` weights in C order (scikit-learn's ``(K, D + 1)`` in
Fortran order) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

# f(w) or f(w, l2_strength) -> (loss, gradient)
LossGradient = Callable[..., tuple[float, np.ndarray]]


def design_matrix(x: np.ndarray) -> np.ndarray:
    """``(D + 1, n)``: features then a row of ones (intercept); samples along the contiguous axis so the
    per-sample reductions over classes run across rows (vectorised) rather than along short rows."""
    design = np.empty((x.shape[1] + 1, x.shape[0]))
    design[:-1] = x.T
    design[-1] = 1.0
    return design


def sklearn_objective(design: np.ndarray, encoded: np.ndarray, n_classes: int, l2_strength: float) -> tuple[LossGradient, int]:
    """scikit-learn's objective for labels ``encoded`` in ``0..n_classes-1`` and its parameter count."""
    if n_classes == 2:
        return binomial_loss_gradient(design, (encoded == 1).astype(np.float64), l2_strength), design.shape[0]
    return multinomial_loss_gradient(design, encoded, n_classes, l2_strength), design.shape[0] * n_classes


def binomial_loss_gradient(design: np.ndarray, target: np.ndarray, l2_strength: float) -> LossGradient:
    """Mean binomial log-loss + L2 penalty and its gradient, for ``w = (coef, intercept)`` (scikit-learn's).

    The returned function takes ``(w)`` or ``(w, l2_strength)`` (the latter along a ``C`` path).
    """
    n_features, n_samples = design.shape[0] - 1, design.shape[1]

    def loss_gradient(w: np.ndarray, l2: float = l2_strength) -> tuple[float, np.ndarray]:
        logits = w @ design
        loss = (np.logaddexp(0.0, logits).sum() - logits @ target) / n_samples
        gradient = design @ (expit(logits) - target) / n_samples
        coef = w[:n_features]
        gradient[:n_features] += l2 * coef
        return float(loss + 0.5 * l2 * (coef @ coef)), gradient

    return loss_gradient


def multinomial_loss_gradient(design: np.ndarray, encoded: np.ndarray, n_classes: int, l2_strength: float) -> LossGradient:
    """Mean multinomial log-loss + L2 penalty and its gradient for the ravelled ``(D + 1, K)`` weights.

    Logits are laid out ``(K, n)`` so the per-sample sums over classes run across rows. The softmax is
    taken without subtracting each sample's largest logit whenever that is safe (every normaliser
    within ``1e+-150``, i.e. all logits below ~345 and each sample's largest above ~-345); otherwise it
    is recomputed shifted, as scikit-learn always does. Both agree to rounding error. The returned
    function takes ``(w)`` or ``(w, l2_strength)`` (the latter along a ``C`` path).
    """
    n_features, n_samples = design.shape[0] - 1, design.shape[1]
    true_class = encoded * n_samples + np.arange(n_samples)  # flat positions of (y_i, i) in (K, n)
    # Work arrays for the whole fit: fresh multi-megabyte arrays per evaluation cost more in page faults
    # than the arithmetic.
    work = np.empty((n_classes, n_samples))
    scaled_design = np.empty_like(design)

    def loss_gradient(w: np.ndarray, l2: float = l2_strength) -> tuple[float, np.ndarray]:
        weights = w.reshape(n_features + 1, n_classes)
        logits = np.matmul(weights.T, design, out=work)
        true_logits = logits.take(true_class).sum()
        with np.errstate(over="ignore"):
            exponentials = np.exp(logits, out=work)
        normaliser = exponentials.sum(axis=0)
        if _safe_normalisers(normaliser):
            log_normaliser = np.log(normaliser)
        else:
            logits = np.matmul(weights.T, design, out=work)
            shift = logits.max(axis=0)
            logits -= shift
            exponentials = np.exp(logits, out=work)
            normaliser = exponentials.sum(axis=0)
            log_normaliser = np.log(normaliser) + shift
        loss = (log_normaliser.sum() - true_logits) / n_samples
        # d loss_i / d logits_i = softmax - one-hot = (exp - normaliser * one-hot) / normaliser; the division
        # is folded into the (D + 1, n) design rather than applied to the (K, n) exponentials.
        exponentials.ravel()[true_class] -= normaliser
        gradient = (np.divide(design, normaliser, out=scaled_design) @ exponentials.T) / n_samples
        coef = weights[:n_features]
        gradient[:n_features] += l2 * coef
        return float(loss + 0.5 * l2 * np.sum(coef * coef)), gradient.ravel()

    return loss_gradient


def _safe_normalisers(normaliser: np.ndarray) -> bool:
    """Whether unshifted softmax normalisers are far from overflow and underflow (then exact enough)."""
    return bool(np.all((normaliser > 1e-150) & (normaliser < 1e150)))
