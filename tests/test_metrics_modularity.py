"""Modularity and explicitness: dlib golden values, the modularity formula, AUC, known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from test_metrics_common import GOLDEN_CASES, dlib_case

from dbench.metrics._validation import DegenerateInputWarning
from dbench.metrics.modularity import macro_roc_auc, modularity_explicitness, modularity_from_mutual_information

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
    assert scores["explicitness_train"] == pytest.approx(expected["explicitness_train"], abs=0.02)
    assert scores["explicitness_test"] == pytest.approx(expected["explicitness_test"], abs=0.02)


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
