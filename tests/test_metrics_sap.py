"""SAP score: batched 1-D LinearSVC vs scikit-learn/liblinear, dlib golden values, known answers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from metric_cases import GOLDEN_CASES, dlib_case
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from dbench.metrics._sap import SVC_C, _classes, _penalties, fit_linear_svc_1d, sap, sap_score_matrix
from dbench.metrics._validation import DegenerateInputWarning

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_sap.json").read_text())


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_batched_solver_finds_liblinears_optimum(n_classes):
    rng = np.random.default_rng(n_classes)
    n = 800
    y = rng.integers(0, n_classes, n)
    y[: n // 3] = 0  # unbalanced classes exercise class_weight="balanced"
    x = y + 1.5 * rng.standard_normal(n) + 3.0
    model = LinearSVC(C=SVC_C, class_weight="balanced", tol=1e-10, max_iter=100_000).fit(x[:, None], y)
    _, ids, sizes = _classes(np, y[:, None])
    counts = np.bincount(y, minlength=n_classes)
    c_pos, c_neg = _penalties(counts.astype(float), sizes, n)
    w, b = fit_linear_svc_1d(x, ids, np.concatenate([[0], np.cumsum(counts)]), c_pos, c_neg)
    if n_classes == 2:
        w, b = w[1:], b[1:]  # the binary problem is stored under class 1
    np.testing.assert_allclose(w, model.coef_.ravel(), atol=1e-5)
    np.testing.assert_allclose(b, model.intercept_, atol=1e-5)


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_disentanglement_lib(case):
    arrays = dlib_case(case)
    expected = GOLDEN["cases"][case]
    assert sap(*arrays)["sap"] == pytest.approx(expected["sap"], abs=0.02)
    matrix = sap_score_matrix(*arrays)
    assert np.max(np.abs(matrix - np.asarray(expected["score_matrix"]))) <= 0.02
    continuous = sap(*arrays, continuous_factors=True)["sap"]
    assert continuous == pytest.approx(expected["sap_continuous"], abs=1e-6)


def test_sklearn_solver_reproduces_dlib_exactly():
    arrays = dlib_case("noisy_mixed", n_train=600, n_test=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exact = sap_score_matrix(*arrays, solver="sklearn")
    batched = sap_score_matrix(*arrays)
    assert np.max(np.abs(exact - batched)) <= 0.02


def test_ground_truth_codes_beat_noise():
    truth = sap(*dlib_case("ground_truth"))["sap"]
    rng = np.random.default_rng(5)
    _, factors, _, factors_test = dlib_case("ground_truth")
    noise = sap(rng.standard_normal((2000, 4)), factors, rng.standard_normal((1000, 4)), factors_test)["sap"]
    assert truth > 0.3
    assert noise < 0.05


def test_constant_codes_score_zero():
    _, factors, _, factors_test = dlib_case("noisy_mixed")
    with pytest.warns(DegenerateInputWarning):
        # All-constant codes: every latent predicts the same class, so the gap is 0.
        score = sap(np.zeros((2000, 3)), factors, np.zeros((1000, 3)), factors_test)["sap"]
    assert score == 0.0


def test_unknown_solver_and_shape_mismatch_are_named():
    arrays = dlib_case("noisy_mixed", n_train=60, n_test=30)
    with pytest.raises(ValueError, match="solver"):
        sap(*arrays, solver="liblinear")
    codes, factors, codes_test, factors_test = arrays
    with pytest.raises(ValueError, match="codes_test"):
        sap(codes, factors, codes_test[:, :2], factors_test)
    with pytest.raises(ValueError, match="factors_test"):
        sap(codes, factors, codes_test, factors_test[:-1])


def test_dlib_sap_depends_on_latent_scale_standardized_does_not():
    codes, factors, codes_test, factors_test = dlib_case("noisy_mixed")
    scale = np.array([1.0, 1.0, 10.0, 1.0, 1.0, 1.0])
    raw = sap(codes, factors, codes_test, factors_test)["sap"]
    raw_scaled = sap(codes * scale, factors, codes_test * scale, factors_test)["sap"]
    assert raw != raw_scaled  # dlib's quirk: the SVM penalty is not scale-free
    fixed = sap(codes, factors, codes_test, factors_test, standardize=True)["sap"]
    fixed_scaled = sap(codes * scale + 3.0, factors, codes_test * scale + 3.0, factors_test, standardize=True)["sap"]
    assert fixed == pytest.approx(fixed_scaled, abs=1e-9)
