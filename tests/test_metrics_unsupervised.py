"""Unsupervised scores: dlib golden values, closed forms, degenerate codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from metric_cases import GOLDEN_CASES, dlib_case

from dbench.metrics._unsupervised import gaussian_wasserstein_correlation, unsupervised
from dbench.metrics._validation import DegenerateInputWarning

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_unsupervised.json").read_text())


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_disentanglement_lib(case):
    codes, _, _, _ = dlib_case(case)
    with pytest.warns(DegenerateInputWarning) if case == "constant_dim" else _quiet():
        scores = unsupervised(codes)
    for key, expected in GOLDEN["cases"][case].items():
        if expected is None:
            # dlib: log(0) - log det(singular) = NaN; we leave the constant latent out.
            assert np.isfinite(scores[key])
            continue
        assert scores[key] == pytest.approx(expected, abs=1e-6), key


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_constant_latent_is_left_out_of_total_correlation():
    codes, _, _, _ = dlib_case("noisy_mixed")
    with pytest.warns(DegenerateInputWarning):
        with_constant = unsupervised(np.concatenate([codes, np.full((codes.shape[0], 1), 2.0)], axis=1))
    assert with_constant["gaussian_total_correlation"] == pytest.approx(unsupervised(codes)["gaussian_total_correlation"])


def test_wasserstein_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 5))
    cov = a @ a.T + 0.1 * np.eye(5)
    expected = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])).real
    assert float(gaussian_wasserstein_correlation(cov)) == pytest.approx(expected, abs=1e-9)


def test_independent_latents_score_near_zero():
    codes = np.random.default_rng(1).standard_normal((20000, 4)) * (1.0, 2.0, 0.5, 3.0)
    scores = unsupervised(codes)
    assert scores["gaussian_total_correlation"] < 1e-3
    assert scores["gaussian_wasserstein_correlation_norm"] < 1e-3
    assert scores["mutual_info_score"] < 0.02


def test_all_constant_and_single_latent_warn():
    with pytest.warns(DegenerateInputWarning):
        scores = unsupervised(np.zeros((100, 3)))
    assert scores == {
        "gaussian_total_correlation": 0.0,
        "gaussian_wasserstein_correlation": 0.0,
        "gaussian_wasserstein_correlation_norm": 0.0,
        "mutual_info_score": 0.0,
    }
    with pytest.warns(DegenerateInputWarning):
        assert unsupervised(np.arange(10.0)[:, None])["mutual_info_score"] == 0.0
