"""``LogisticRegressionCV``'s procedure, step for step, with every fit by :func:`minimise`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dbench.estimators.exact_logistic._model import ExactLogisticFit, predicted_index
from dbench.estimators.exact_logistic._objective import design_matrix, sklearn_objective
from dbench.estimators.exact_logistic._solver import check_xy, minimise, to_fit
from dbench.estimators.model_selection import c_grid, kfold_masks


@dataclass(frozen=True)
class ExactLogisticCV:
    """Outcome of :func:`exact_logistic_regression_cv` (scikit-learn's ``LogisticRegressionCV`` attributes).

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
    fit: ExactLogisticFit

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.fit.predict(x)


def exact_logistic_regression_cv(
    x: np.ndarray,
    y: np.ndarray,
    *,
    Cs: int | Sequence[float] = 10,
    n_folds: int = 5,
    max_iter: int = 100,
    tol: float = 1e-4,
) -> ExactLogisticCV:
    """``LogisticRegressionCV(Cs=Cs, cv=KFold(n_folds), max_iter=max_iter, tol=tol).fit(x, y)``, faster.

    scikit-learn 1.9's procedure (``LogisticRegressionCV.fit`` and ``_log_reg_scoring_path``), step for
    step, each fit by :func:`minimise` on the vectorised objective:

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
    classes, encoded = check_xy(x, y)
    grid = c_grid(Cs)
    held_out = kfold_masks(x.shape[0], n_folds)
    n_features = x.shape[1]
    scores = np.empty((n_folds, grid.size))
    n_iter = np.empty((n_folds, grid.size), dtype=np.int64)
    paths = []
    for fold, test in enumerate(held_out):
        x_train, y_train = x[~test], encoded[~test]
        objective, n_params = sklearn_objective(design_matrix(x_train), y_train, classes.size, 0.0)
        w, path = np.zeros(n_params), []
        for c, C in enumerate(grid):
            w, n_iter[fold, c] = minimise(objective, w, 1.0 / (C * x_train.shape[0]), max_iter, tol)
            fold_fit = to_fit(classes, w, n_features, 0)
            path.append(np.concatenate([fold_fit.coef, fold_fit.intercept[:, None]], axis=1))
            predicted = predicted_index(fold_fit.decision_function(x[test]))
            scores[fold, c] = np.mean(predicted == encoded[test])
        paths.append(path)
    best = int(np.argmax(scores.sum(axis=0)))
    coefs_paths = np.array(paths)
    # Mean over folds in scikit-learn's (K', D + 1) layout, then ravelled as our parameters.
    w_init = np.mean(coefs_paths[:, best], axis=0).T.ravel()
    objective, _ = sklearn_objective(design_matrix(x), encoded, classes.size, 0.0)
    w, refit_iter = minimise(objective, w_init, 1.0 / (grid[best] * x.shape[0]), max_iter, tol)
    return ExactLogisticCV(grid, float(grid[best]), scores, n_iter, coefs_paths, to_fit(classes, w, n_features, refit_iter))
