"""scikit-learn's lbfgs logistic regression, reproduced iterate for iterate at a fraction of its cost.

scikit-learn 1.9 fits ``LogisticRegression`` (and every point of ``LogisticRegressionCV``'s path) by
handing scipy's L-BFGS-B the mean log-loss plus ``||W||^2 / (2 C n)`` (intercept unpenalised; binomial
with one coefficient vector for two classes, ``classes[1]`` positive; symmetric multinomial over all
``K`` classes otherwise) with ``maxiter=max_iter, maxls=50, gtol=tol, ftol=64 * eps``. Here the same
optimiser gets the same objective, options and starting points; only the loss and gradient are
evaluated differently (a few vectorised NumPy operations on reused buffers instead of scikit-learn's
per-sample loss). They agree to rounding error, so L-BFGS takes the same steps: same ``n_iter``,
coefficients to ~1e-11, the same chosen ``C``. That matters because disentanglement_lib's fits often
stop at ``max_iter=100`` short of the optimum, so the reported numbers are those particular iterates.

The products involved are thin (``(K, D + 1) x (D + 1, n)``): one BLAS thread is fastest, and on a busy
machine OpenBLAS's thread team makes them up to ~100x slower, which is most of scikit-learn's time
here. :func:`single_blas_thread` pins BLAS for a block of fits.

Used by explicitness (:mod:`dbench.metrics.modularity`, ``LogisticRegression()``) and the downstream
task (:mod:`dbench.probes.downstream`, ``LogisticRegressionCV(Cs=10, cv=KFold(5))``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
from scipy.special import expit

from dbench.estimators.logistic import c_grid, kfold_masks

LossGradient = Callable[..., tuple[float, np.ndarray]]


@dataclass(frozen=True)
class LogisticFit:
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
        return self.classes[_predicted_index(self.decision_function(x))]

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


def _predicted_index(logits: np.ndarray) -> np.ndarray:
    """scikit-learn's ``LinearClassifierMixin.predict`` on logits ``(n, 1)`` or ``(n, K)``: class indices."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.intp)
    return logits.argmax(axis=1)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread (process-wide) for the duration."""
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _design(x: np.ndarray) -> np.ndarray:
    """``(D + 1, n)``: features then a row of ones (intercept); samples along the contiguous axis so the
    per-sample reductions over classes run across rows (vectorised) rather than along short rows."""
    design = np.empty((x.shape[1] + 1, x.shape[0]))
    design[:-1] = x.T
    design[-1] = 1.0
    return design


def _objective(design: np.ndarray, encoded: np.ndarray, n_classes: int, l2_strength: float) -> tuple[LossGradient, int]:
    """scikit-learn's objective for labels ``encoded`` in ``0..n_classes-1`` and its parameter count."""
    if n_classes == 2:
        return _binomial_loss_gradient(design, (encoded == 1).astype(np.float64), l2_strength), design.shape[0]
    return _multinomial_loss_gradient(design, encoded, n_classes, l2_strength), design.shape[0] * n_classes


def _minimise(objective: LossGradient, w0: np.ndarray, l2_strength: float, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """scikit-learn's call of scipy's L-BFGS-B; returns the iterate and ``n_iter_ = min(nit, max_iter)``."""
    from scipy.optimize import minimize

    options = {"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps}
    result = minimize(objective, w0, args=(l2_strength,), method="L-BFGS-B", jac=True, options=options)
    return result.x, min(int(result.nit), max_iter)


def _to_fit(classes: np.ndarray, w: np.ndarray, n_features: int, n_iter: int) -> LogisticFit:
    """scikit-learn's ``coef_`` / ``intercept_`` from the ravelled parameters."""
    if classes.size == 2:
        return LogisticFit(classes, w[None, :n_features].copy(), w[n_features:].copy(), n_iter)
    # scikit-learn ravels its (K, D + 1) coefficients in Fortran order: ours reshape C-order to (D + 1, K).
    weights = w.reshape(n_features + 1, classes.size)
    return LogisticFit(classes, weights[:n_features].T.copy(), weights[n_features].copy(), n_iter)


def _check_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes, encoded = np.unique(y, return_inverse=True)
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (n, D) and y (n,) with the same n; got {x.shape} and {y.shape}")
    if classes.size < 2:
        raise ValueError(f"y must take at least two distinct values to fit a logistic regression; got {classes}")
    return classes, encoded


def logistic_regression_lbfgs(
    x: np.ndarray,
    y: np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> LogisticFit:
    """``sklearn.linear_model.LogisticRegression(C=C, max_iter=max_iter, tol=tol).fit(x, y)``, faster.

    Same optimiser, objective, options and starting point (zero) as scikit-learn 1.9's lbfgs path, so
    the same iterate (measured in ``docs/metrics.md``). ``x``: float64 ``(n, D)``; ``y``: ``(n,)`` labels
    with at least two distinct values.
    """
    classes, encoded = _check_xy(x, y)
    objective, n_params = _objective(_design(x), encoded, classes.size, 1.0 / (C * x.shape[0]))
    w, n_iter = _minimise(objective, np.zeros(n_params), 1.0 / (C * x.shape[0]), max_iter, tol)
    return _to_fit(classes, w, x.shape[1], n_iter)


@dataclass(frozen=True)
class LogisticCVFit:
    """Outcome of :func:`logistic_regression_cv_exact` (scikit-learn's ``LogisticRegressionCV`` attributes).

    ``Cs`` the grid (``Cs_``), ``C`` the chosen value (``C_[0]``), ``scores`` the held-out accuracies
    ``(n_folds, n_Cs)`` (``scores_``), ``n_iter`` ``(n_folds, n_Cs)`` (``n_iter_[0]``), ``coefs_paths``
    ``(n_folds, n_Cs, K', D + 1)`` the fold iterates with the intercept last (``coefs_paths_[c]`` stacked
    over ``K'`` classes; ``K' = 1`` for two classes), ``fit`` the refit.
    """

    Cs: np.ndarray
    C: float
    scores: np.ndarray
    n_iter: np.ndarray
    coefs_paths: np.ndarray
    fit: LogisticFit

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.fit.predict(x)


def logistic_regression_cv_exact(
    x: np.ndarray,
    y: np.ndarray,
    *,
    Cs: int | Sequence[float] = 10,
    n_folds: int = 5,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> LogisticCVFit:
    """``LogisticRegressionCV(Cs=Cs, cv=KFold(n_folds), max_iter=max_iter, tol=tol).fit(x, y)``, faster.

    scikit-learn 1.9's procedure (``LogisticRegressionCV.fit`` and ``_log_reg_scoring_path``), step for
    step, each fit by :func:`_minimise` on the vectorised objective:

    * folds: ``KFold(n_folds)`` without shuffling (consecutive blocks, the first ``n % n_folds`` one
      longer); classes are those of the whole ``y`` in every fold, so a class missing from a fold's
      training part still has its coefficients (multinomial) and a binary fold that sees one class
      still fits the binomial model;
    * per fold, the grid ``np.logspace(-4, 4, Cs)`` in increasing order, each ``C`` warm-started from the
      previous ``C``'s iterate (zero for the first), scaled by the fold's training size; the score is
      the accuracy on the held-out block (default ``scoring=None``);
    * the chosen ``C`` is the first maximum of the scores summed over folds (``np.argmax``);
    * refit on all of ``x`` with that ``C``, starting from the mean over folds of the coefficients at it.

    ``x``: float64 ``(n, D)``; ``y``: ``(n,)`` labels with at least two distinct values.
    """
    classes, encoded = _check_xy(x, y)
    grid = c_grid(Cs)
    held_out = kfold_masks(x.shape[0], n_folds)
    n_features = x.shape[1]
    scores = np.empty((n_folds, grid.size))
    n_iter = np.empty((n_folds, grid.size), dtype=np.int64)
    paths = []
    for fold, test in enumerate(held_out):
        x_train, y_train = x[~test], encoded[~test]
        objective, n_params = _objective(_design(x_train), y_train, classes.size, 0.0)
        w, path = np.zeros(n_params), []
        for c, C in enumerate(grid):
            w, n_iter[fold, c] = _minimise(objective, w, 1.0 / (C * x_train.shape[0]), max_iter, tol)
            fold_fit = _to_fit(classes, w, n_features, 0)
            path.append(np.concatenate([fold_fit.coef, fold_fit.intercept[:, None]], axis=1))
            predicted = _predicted_index(fold_fit.decision_function(x[test]))
            scores[fold, c] = np.mean(predicted == encoded[test])
        paths.append(path)
    best = int(np.argmax(scores.sum(axis=0)))
    coefs_paths = np.array(paths)
    # Mean over folds in scikit-learn's (K', D + 1) layout, then ravelled as our parameters.
    w_init = np.mean(coefs_paths[:, best], axis=0).T.ravel()
    objective, _ = _objective(_design(x), encoded, classes.size, 0.0)
    w, refit_iter = _minimise(objective, w_init, 1.0 / (grid[best] * x.shape[0]), max_iter, tol)
    return LogisticCVFit(grid, float(grid[best]), scores, n_iter, coefs_paths, _to_fit(classes, w, n_features, refit_iter))


def _binomial_loss_gradient(design: np.ndarray, target: np.ndarray, l2_strength: float) -> LossGradient:
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


def _multinomial_loss_gradient(design: np.ndarray, encoded: np.ndarray, n_classes: int, l2_strength: float) -> LossGradient:
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


__all__ = [
    "LogisticFit",
    "LogisticCVFit",
    "logistic_regression_lbfgs",
    "logistic_regression_cv_exact",
    "single_blas_thread",
]
