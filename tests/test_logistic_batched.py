"""The batched array-API logistic regression against scikit-learn (same objective, same optimum).

scikit-learn is run with a tight tolerance so that both sides sit at the optimum; the cross-validation
wrapper is compared with ``LogisticRegressionCV(Cs=10, cv=KFold(5))`` exactly as disentanglement_lib
builds it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import KFold

from dbench.estimators.batched_logistic import (
    batched_logistic_regression,
    batched_logistic_regression_cv,
)
from dbench.estimators.model_selection import c_grid, kfold_masks


def _problem(seed: int, n: int, d: int, k: int, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k)) * 2.0
    y = np.argmax(X @ W + noise * rng.gumbel(size=(n, k)), axis=1)
    return X, y


def _sklearn_layout(fit, row: int, k: int):
    coef, intercept = np.asarray(fit.coef[row]), np.asarray(fit.intercept[row])
    if k == 2:
        return coef[:, 1][None, :], intercept[1:]
    return coef[:, :k].T, intercept[:k]


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("C", [0.05, 1.0, 20.0])
def test_matches_sklearn_optimum(k, C):
    X, y = _problem(k * 7 + int(C * 10), n=120, d=4, k=k)
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
    fit = batched_logistic_regression(X, y, C=C, n_classes=k, tol=1e-9)
    coef, intercept = _sklearn_layout(fit, 0, k)
    scale = np.max(np.abs(ref.coef_))
    assert np.max(np.abs(coef - ref.coef_)) <= 1e-4 * scale
    assert np.max(np.abs(intercept - ref.intercept_)) <= 1e-4 * max(1.0, np.max(np.abs(ref.intercept_)))
    np.testing.assert_array_equal(np.asarray(fit.predict(X))[0], ref.predict(X))
    assert fit.converged.all()


def test_batch_of_mixed_problems_equals_separate_solves():
    X, _ = _problem(1, n=80, d=3, k=3)
    rng = np.random.default_rng(2)
    labels = np.stack([rng.integers(0, k, 80) for k in (2, 3, 4)])
    Cs = np.array([0.3, 3.0, 1.0])
    batch = batched_logistic_regression(X, labels, C=Cs, n_classes=[2, 3, 4], tol=1e-9)
    for b, k in enumerate((2, 3, 4)):
        alone = batched_logistic_regression(X, labels[b], C=Cs[b], n_classes=k, tol=1e-9)
        np.testing.assert_allclose(np.asarray(batch.coef[b, :, :k]), np.asarray(alone.coef[0]), atol=1e-6)
        np.testing.assert_allclose(np.asarray(batch.intercept[b, :k]), np.asarray(alone.intercept[0]), atol=1e-6)
        assert np.all(np.asarray(batch.coef[b, :, k:]) == 0)


def test_zero_weight_equals_dropping_rows():
    X, y = _problem(3, n=90, d=3, k=3)
    keep = np.arange(90) % 3 != 0
    weighted = batched_logistic_regression(X, y, C=2.0, n_classes=3, sample_weight=keep.astype(float), tol=1e-9)
    subset = batched_logistic_regression(X[keep], y[keep], C=2.0, n_classes=3, tol=1e-9)
    np.testing.assert_allclose(np.asarray(weighted.coef), np.asarray(subset.coef), atol=1e-6)


def test_newton_and_lbfgs_reach_the_same_optimum():
    X, y = _problem(4, n=100, d=3, k=4, noise=0.3)
    newton = batched_logistic_regression(X, y, C=50.0, n_classes=4, newton_after=0, tol=1e-9)
    lbfgs = batched_logistic_regression(X, y, C=50.0, n_classes=4, newton_after=10**6, tol=1e-9, max_iter=5000)
    np.testing.assert_allclose(np.asarray(newton.coef), np.asarray(lbfgs.coef), rtol=1e-4, atol=1e-5)


def test_kfold_masks_match_sklearn():
    for n in (10, 13, 27):
        masks = kfold_masks(n, 5)
        for j, (_, test) in enumerate(KFold(n_splits=5).split(np.zeros(n))):
            np.testing.assert_array_equal(np.nonzero(masks[j])[0], test)


def test_c_grid_is_sklearn_logspace():
    np.testing.assert_array_equal(c_grid(10), np.logspace(-4, 4, 10))
    with pytest.raises(ValueError, match="Cs"):
        c_grid(0)


def test_cv_matches_logistic_regression_cv():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 4))
    labels = np.stack(
        [
            np.argmax(X[:, :2] @ rng.normal(size=(2, 3)) + rng.gumbel(size=(150, 3)), axis=1),
            (X[:, 2] + 0.5 * rng.normal(size=150) > 0).astype(int) * 7,  # binary, labels {0, 7}
            rng.integers(0, 4, 150),  # noise
        ],
        axis=1,
    )
    result = batched_logistic_regression_cv(X, labels)
    ours = result.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(labels.shape[1]):
            ref = LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)).fit(X, labels[:, t])
            assert result.C[t] == pytest.approx(float(np.ravel(ref.C_)[0]))
            assert np.mean(ours[:, t] == ref.predict(X)) >= 0.99
            np.testing.assert_array_equal(result.classes[t], ref.classes_)


def test_deterministic():
    X, y = _problem(6, n=60, d=3, k=3)
    a = batched_logistic_regression_cv(X, y)
    b = batched_logistic_regression_cv(X, y)
    np.testing.assert_array_equal(np.asarray(a.fit.coef), np.asarray(b.fit.coef))


def test_backends_agree():
    X, y = _problem(7, n=60, d=3, k=3)
    ref = batched_logistic_regression(X, y, C=1.0, n_classes=3, tol=1e-9)
    import array_api_strict as xps

    strict = batched_logistic_regression(xps.asarray(X), xps.asarray(y), C=1.0, n_classes=3, tol=1e-9)
    np.testing.assert_allclose(np.from_dlpack(strict.coef), np.asarray(ref.coef), atol=1e-7)
    torch = pytest.importorskip("torch")
    tfit = batched_logistic_regression(torch.asarray(X), torch.asarray(y), C=1.0, n_classes=3, tol=1e-9)
    np.testing.assert_allclose(tfit.coef.numpy(), np.asarray(ref.coef), atol=1e-7)
    cv_torch = batched_logistic_regression_cv(torch.asarray(X), y)
    np.testing.assert_array_equal(cv_torch.predict(torch.asarray(X)), batched_logistic_regression_cv(X, y).predict(X))


def test_bad_input():
    X, y = _problem(8, n=30, d=2, k=3)
    with pytest.raises(ValueError, match="n_classes"):
        batched_logistic_regression(X, y, C=1.0, n_classes=1)
    with pytest.raises(ValueError, match="C must be positive"):
        batched_logistic_regression(X, y, C=0.0, n_classes=3)
    with pytest.raises(ValueError, match="samples"):
        batched_logistic_regression(X, y[:10], C=1.0, n_classes=3)
    with pytest.raises(ValueError, match="encoded labels"):
        batched_logistic_regression(X, y + 5, C=1.0, n_classes=3)
    with pytest.raises(ValueError, match="single class"):
        batched_logistic_regression_cv(X, np.zeros(30, dtype=int))
    with pytest.raises(ValueError, match="folds"):
        batched_logistic_regression_cv(X[:4], y[:4])
