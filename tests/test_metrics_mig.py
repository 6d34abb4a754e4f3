"""MIG and the shared histogram discretisation / discrete mutual information (dbench.metrics._discretize)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from metric_cases import GOLDEN_CASES, dlib_case
from sklearn.metrics import mutual_info_score

from dbench.metrics._discretize import compact_labels, discrete_entropy, histogram_discretize, mutual_info_matrix
from dbench.metrics._mig import mig
from dbench.metrics._validation import DegenerateInputWarning

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_mig.json").read_text())


def _dlib_bins(column: np.ndarray, n_bins: int) -> np.ndarray:
    """What disentanglement_lib's _histogram_discretize does to one column (labels 1..n_bins)."""
    return np.digitize(column, np.histogram(column, n_bins)[1][:-1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_histogram_bins_match_numpy_histogram_digitize_on_edges(dtype):
    rng = np.random.default_rng(0)
    for trial in range(50):
        low, high = np.sort(rng.standard_normal(2) * rng.uniform(0.1, 50))
        # Values exactly on the bin edges, at the extremes, and in between.
        on_edges = np.linspace(low, high, 21)[rng.integers(0, 21, 300)]
        column = np.concatenate([on_edges, rng.uniform(low, high, 100)]).astype(dtype)
        ours = histogram_discretize(column[:, None], 20)[:, 0]
        np.testing.assert_array_equal(ours + 1, _dlib_bins(column, 20), err_msg=f"trial {trial}")


def test_histogram_constant_and_integer_columns():
    values = np.stack([np.full(50, 3.0), np.arange(50) % 7], axis=1)
    ours = histogram_discretize(values, 20)
    np.testing.assert_array_equal(ours[:, 0] + 1, _dlib_bins(values[:, 0], 20))
    np.testing.assert_array_equal(ours[:, 1] + 1, _dlib_bins(values[:, 1].astype(np.int64), 20))
    with pytest.raises(ValueError, match="n_bins"):
        histogram_discretize(values, 0)


def test_mutual_information_and_entropy_match_sklearn():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, size=(500, 3))
    a[:, 2] = 4  # a constant column has zero information
    b = np.stack([a[:, 0] // 2, rng.integers(0, 9, 500)], axis=1) * 3 + 1  # non-contiguous labels
    la, ka = compact_labels(a)
    lb, kb = compact_labels(b)
    ours = mutual_info_matrix(la, ka, lb, kb)
    expected = np.array([[mutual_info_score(b[:, j], a[:, i]) for j in range(2)] for i in range(3)])
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    np.testing.assert_allclose(discrete_entropy(lb, kb), [mutual_info_score(c, c) for c in b.T], atol=1e-12)


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_disentanglement_lib(case):
    codes, factors, _, _ = dlib_case(case)
    assert mig(codes, factors)["mig"] == pytest.approx(GOLDEN["cases"][case]["mig"], abs=1e-6)


def test_ground_truth_codes_score_near_one():
    codes, factors, _, _ = dlib_case("ground_truth")
    assert 0.9 <= mig(codes, factors)["mig"] <= 1.0


def test_independent_noise_scores_near_zero():
    rng = np.random.default_rng(2)
    factors = rng.integers(0, 5, size=(4000, 3))
    assert mig(rng.standard_normal((4000, 6)), factors)["mig"] < 0.05


def test_duplicated_latents_score_low():
    codes, factors, _, _ = dlib_case("ground_truth")
    duplicated = np.concatenate([codes, codes], axis=1)
    assert mig(duplicated, factors)["mig"] < 0.1


def test_constant_codes_score_zero():
    _, factors, _, _ = dlib_case("noisy_mixed")
    with pytest.warns(DegenerateInputWarning, match="constant"):
        assert mig(np.zeros((factors.shape[0], 3)), factors)["mig"] == 0.0


def test_single_valued_factor_counts_zero_and_warns():
    codes, factors, _, _ = dlib_case("ground_truth")
    factors = factors.copy()
    factors[:, 0] = 0
    with pytest.warns(DegenerateInputWarning, match="single value"):
        score = mig(codes, factors)["mig"]
    # The other three factors keep their gaps near 1; the constant one contributes 0.
    assert 0.7 <= score <= 0.76


def test_bad_arguments_are_named():
    codes, factors, _, _ = dlib_case("noisy_mixed", n_train=50, n_test=1)
    with pytest.raises(ValueError, match="n_bins"):
        mig(codes, factors, n_bins=0)
    with pytest.raises(ValueError, match="factors"):
        mig(codes, -factors - 1)
    with pytest.raises(ValueError, match="codes"):
        mig(codes[:, :, None], factors)
