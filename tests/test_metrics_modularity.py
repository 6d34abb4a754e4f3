"""Modularity and explicitness: dlib golden values, the modularity formula, AUC, known answers, and the
fast logistic regression reproducing scikit-learn's ``LogisticRegression()`` iterate for iterate."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from metric_cases import GOLDEN_CASES, dlib_case
from scipy.special import logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from dbench.estimators.exact_logistic import exact_logistic_regression
from dbench.estimators.exact_logistic._objective import multinomial_loss_gradient
from dbench.metrics._modularity import (
    explicitness,
    macro_roc_auc,
    modularity_explicitness,
    modularity_from_mutual_information,
)
from dbench.metrics._validation import DegenerateInputWarning

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_modularity.json").read_text())


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_disentanglement_lib(case):
    expected = GOLDEN["cases"][case]
    with pytest.warns(DegenerateInputWarning) if case == "constant_dim" else _no_warning():
        scores = modularity_explicitness(*dlib_case(case))
    assert scores["modularity"] == pytest.approx(expected["modularity"], abs=1e-6)
    if expected["explicitness_train"] is None:
        # dlib divides the constant latent by its zero std and scikit-learn rejects the NaNs; we centre it.
        assert 0.5 < scores["explicitness_test"] <= 1.0
        return
    # The fast fit takes scikit-learn's L-BFGS steps, so dlib's numbers are reproduced to rounding error.
    assert scores["explicitness_train"] == pytest.approx(expected["explicitness_train"], abs=1e-9)
    assert scores["explicitness_test"] == pytest.approx(expected["explicitness_test"], abs=1e-9)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_modularity_formula_on_hand_made_matrices():
    # One factor per latent: perfectly modular. Equal information about two factors: 1 - 1/(K-1) = 0.
    assert modularity_from_mutual_information(np.array([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(1.0)
    assert modularity_from_mutual_information(np.array([[1.0, 1.0]])) == pytest.approx(0.0)
    # A latent with no information scores 0 (dlib's convention).
    assert modularity_from_mutual_information(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])) == pytest.approx(0.5)


def test_macro_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    probabilities = np.round(rng.uniform(size=(300, 4)), 1)  # many ties
    one_hot = (labels[:, None] == np.arange(4)).astype(int)
    expected = roc_auc_score(one_hot, probabilities)
    assert macro_roc_auc(labels, np.arange(4), probabilities) == pytest.approx(expected, abs=1e-12)


def test_ground_truth_codes_are_modular_and_explicit():
    scores = modularity_explicitness(*dlib_case("ground_truth"))
    assert scores["modularity"] > 0.99
    assert scores["explicitness_test"] > 0.99


def test_noise_codes_are_not_explicit():
    rng = np.random.default_rng(4)
    _, factors, _, factors_test = dlib_case("ground_truth")
    scores = modularity_explicitness(rng.standard_normal((2000, 3)), factors, rng.standard_normal((1000, 3)), factors_test)
    assert scores["explicitness_test"] < 0.56


def _classification_problem(n_classes: int, n: int = 400, n_latents: int = 4, seed: int = 0):
    """Overlapping Gaussian classes with labels that are not 0..K-1, standardised as dlib does."""
    rng = np.random.default_rng(seed)
    labels = 10 + 3 * rng.integers(0, n_classes, n)
    centres = rng.standard_normal((labels.max() + 1, n_latents))
    x = rng.standard_normal((n, n_latents)) + centres[labels]
    return (x - x.mean(axis=0)) / x.std(axis=0), labels


@pytest.mark.parametrize("n_classes", [2, 3, 12])
@pytest.mark.parametrize("max_iter", [5, 100])
def test_lbfgs_fit_reproduces_sklearn_logistic_regression(n_classes, max_iter):
    # max_iter=5 stops far from the optimum: the iterates themselves must coincide, not just the optimum.
    x, y = _classification_problem(n_classes, seed=n_classes)
    fit = exact_logistic_regression(x, y, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = LogisticRegression(max_iter=max_iter).fit(x, y)
    assert fit.n_iter == reference.n_iter_[0]
    np.testing.assert_array_equal(fit.classes, reference.classes_)
    assert fit.coef.shape == reference.coef_.shape
    np.testing.assert_allclose(fit.coef, reference.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.intercept, reference.intercept_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.predict_proba(x), reference.predict_proba(x), rtol=0, atol=1e-10)


def test_multinomial_objective_is_stable_for_huge_logits():
    # Logits of +-1000 overflow a plain softmax; the objective then falls back to the shifted one.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3))
    y = rng.integers(0, 4, 50)
    design = np.vstack([x.T, np.ones(50)])
    weights = 300.0 * rng.standard_normal((4, 4))
    l2 = 0.01
    loss, gradient = multinomial_loss_gradient(design, y, 4, l2)(weights.ravel())
    logits = design.T @ weights
    one_hot = np.eye(4)[y]
    expected_loss = np.mean(logsumexp(logits, axis=1) - logits[np.arange(50), y]) + 0.5 * l2 * np.sum(weights[:3] ** 2)
    expected_gradient = design @ (softmax(logits, axis=1) - one_hot) / 50
    expected_gradient[:3] += l2 * weights[:3]
    assert np.abs(logits).max() > 800
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(gradient.reshape(4, 4), expected_gradient, rtol=1e-10, atol=1e-12)


def test_fast_and_sklearn_solvers_give_the_same_explicitness():
    codes, factors, codes_test, factors_test = dlib_case("noisy_mixed", n_train=600, n_test=300)
    factors, factors_test = factors.copy(), factors_test.copy()
    factors[:, 1] %= 2  # a binary factor alongside the multinomial ones
    factors_test[:, 1] %= 2
    fast = explicitness(codes, factors, codes_test, factors_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = explicitness(codes, factors, codes_test, factors_test, solver="sklearn")
    assert fast == pytest.approx(reference, abs=1e-12)


def test_unknown_solver_is_rejected():
    with pytest.raises(ValueError, match="solver"):
        modularity_explicitness(*dlib_case("ground_truth", n_train=50, n_test=20), solver="newton")


def test_macro_auc_skips_classes_absent_from_the_split():
    rng = np.random.default_rng(2)
    classes = np.array([1, 4, 7])
    labels = rng.choice([1, 7, 9], 200)  # class 4 is absent; 9 was never seen in training
    probabilities = rng.dirichlet(np.ones(3), 200)
    present = [0, 2]
    expected = roc_auc_score((labels[:, None] == classes[present]).astype(int), probabilities[:, present])
    with pytest.warns(DegenerateInputWarning, match="absent"):
        assert macro_roc_auc(labels, classes, probabilities) == pytest.approx(expected, abs=1e-12)
