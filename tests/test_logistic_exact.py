"""``exact_logistic_regression_cv`` against scikit-learn 1.9's ``LogisticRegressionCV(Cs=10, cv=KFold(5))``.

The exact path runs scikit-learn's own procedure and optimiser on a vectorised objective, so it must
pick the same ``C``, take the same number of L-BFGS iterations per fold and ``C``, score every fold
identically and predict the same labels. Coefficients agree to rounding error where the fits are
well-posed; where a class is missing from a fold's training part (tiny ``n``), its intercept has no
optimum (it drifts towards -inf until ``max_iter``), so rounding differences grow along that direction
and only a looser tolerance holds for the coefficients — the decisions are still identical.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

from dbench.estimators.exact_logistic import (
    exact_logistic_regression,
    exact_logistic_regression_cv,
)
from dbench.estimators.threads import single_blas_thread


def _problem(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy multinomial read-out of 2 of 5 Gaussian features; labels 3, 5, 7, ... (not 0..K-1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = 3 + 2 * np.argmax(x[:, :2] @ rng.normal(size=(2, k)) + 2 * rng.gumbel(size=(n, k)), axis=1)
    return x, y


def _sklearn(x: np.ndarray, y: np.ndarray) -> LogisticRegressionCV:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning, FutureWarnings about 1.10/1.11 defaults
        with single_blas_thread():  # OpenBLAS thread teams slow these thin products down many times
            return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)).fit(x, y)


def _sklearn_paths(ref: LogisticRegressionCV) -> np.ndarray:
    """``coefs_paths_`` as ``(n_folds, n_Cs, K', D + 1)`` (one key for two classes, one per class else)."""
    return np.stack([ref.coefs_paths_[key] for key in ref.coefs_paths_], axis=2)


def _assert_same_decisions(ours, ref: LogisticRegressionCV, x: np.ndarray) -> None:
    assert ref.C_[0] == ours.C
    np.testing.assert_array_equal(ours.Cs, ref.Cs_)
    np.testing.assert_array_equal(ours.n_iter, ref.n_iter_[0])
    np.testing.assert_array_equal(ours.scores, ref.scores_[next(iter(ref.scores_))])
    np.testing.assert_array_equal(ours.fit.classes, ref.classes_)
    np.testing.assert_array_equal(ours.predict(x), ref.predict(x))


@pytest.mark.parametrize(("n", "k", "seed"), [(60, 2, 0), (60, 3, 1), (100, 12, 212)])
def test_reproduces_logistic_regression_cv(n, k, seed):
    x, y = _problem(n, k, seed)
    assert np.unique(y).size == k
    ours, ref = exact_logistic_regression_cv(x, y), _sklearn(x, y)
    _assert_same_decisions(ours, ref, x)
    np.testing.assert_allclose(ours.coefs_paths, _sklearn_paths(ref), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.fit.coef, ref.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.fit.intercept, ref.intercept_, rtol=0, atol=1e-6)
    x_new = np.random.default_rng(seed + 100).normal(size=(500, 5))
    np.testing.assert_array_equal(ours.predict(x_new), ref.predict(x_new))


@pytest.mark.parametrize(("k", "seed"), [(3, 0), (6, 2), (40, 1)])
def test_tiny_training_set_with_classes_missing_from_folds(k, seed):
    # n = 10 (dlib's smallest training size): folds train on 8 samples, so most classes are absent from
    # some folds; scikit-learn keeps all classes of the full labels in every fold, as must we.
    x, y = _problem(10, k, seed)
    ours, ref = exact_logistic_regression_cv(x, y), _sklearn(x, y)
    _assert_same_decisions(ours, ref, x)
    np.testing.assert_allclose(ours.fit.coef, ref.coef_, rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours.fit.intercept, ref.intercept_, rtol=0, atol=1e-2)


def test_binary_fold_with_a_single_class_still_fits_binomial():
    # Sorted labels: the first fold's training part is all one class... scikit-learn fits it anyway.
    x, _ = _problem(25, 2, 3)
    y = np.repeat([0, 1], [20, 5])
    ours, ref = exact_logistic_regression_cv(x, y), _sklearn(x, y)
    _assert_same_decisions(ours, ref, x)
    assert ours.coefs_paths.shape == (5, 10, 1, 6)


def test_single_c_path_equals_plain_fit_per_fold():
    # One C: each fold's fit is LogisticRegression(C) from zero, i.e. exact_logistic_regression.
    x, y = _problem(50, 4, 4)
    cv = exact_logistic_regression_cv(x, y, Cs=[0.5])
    first_test = np.arange(10)
    train = np.setdiff1d(np.arange(50), first_test)
    plain = exact_logistic_regression(x[train], y[train], C=0.5)
    np.testing.assert_array_equal(cv.coefs_paths[0, 0, :, :-1], plain.coef)
    np.testing.assert_array_equal(cv.coefs_paths[0, 0, :, -1], plain.intercept)


def test_bad_input():
    x, y = _problem(30, 3, 5)
    with pytest.raises(ValueError, match="two distinct values"):
        exact_logistic_regression_cv(x, np.zeros(30, dtype=int))
    with pytest.raises(ValueError, match="folds"):
        exact_logistic_regression_cv(x[:4], y[:4])
    with pytest.raises(ValueError, match="same n"):
        exact_logistic_regression_cv(x, y[:10])
    with pytest.raises(ValueError, match="Cs"):
        exact_logistic_regression_cv(x, y, Cs=0)
