"""Interventional Robustness Score: dlib golden values and known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from metric_cases import GOLDEN_CASES, dlib_case

from dbench.metrics._irs import irs
from dbench.metrics._validation import DegenerateInputWarning

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_irs.json").read_text())


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_matches_disentanglement_lib(case):
    codes, factors, _, _ = dlib_case(case)
    scores = irs(codes, factors)
    assert scores["irs"] == pytest.approx(GOLDEN["cases"][case]["irs"], abs=1e-6)
    assert scores["num_active_dims"] == (5.0 if case == "constant_dim" else float(codes.shape[1]))


def test_quantile_one_is_the_papers_version():
    codes, factors, _, _ = dlib_case("ground_truth")
    assert irs(codes, factors, diff_quantile=1.0)["irs"] == pytest.approx(1.0)


def test_factors_with_many_values_are_binned_like_dlib():
    # 40 values fall into 20 histogram bins: pairs of values share a group, so IRS drops below 1.
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 40, size=(3000, 1))
    assert irs(factors.astype(float), factors)["irs"] < 1.0
    assert irs(factors.astype(float), factors, n_bins=40)["irs"] == pytest.approx(1.0)


def test_noise_scores_low_and_constant_codes_zero():
    rng = np.random.default_rng(1)
    _, factors, _, _ = dlib_case("ground_truth")
    assert irs(rng.standard_normal((2000, 4)), factors)["irs"] < 0.3
    with pytest.warns(DegenerateInputWarning):
        assert irs(np.ones((2000, 3)), factors) == {"irs": 0.0, "num_active_dims": 0.0}


def test_bad_quantile_is_named():
    codes, factors, _, _ = dlib_case("noisy_mixed", n_train=50, n_test=1)
    with pytest.raises(ValueError, match="diff_quantile"):
        irs(codes, factors, diff_quantile=0.0)
