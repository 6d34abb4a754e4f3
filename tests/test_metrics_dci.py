"""DCI: golden values from disentanglement_lib, known answers, invariances, degenerate and bad input.

tests/fixtures/dlib_golden_dci.json was produced by running disentanglement_lib's own
``evaluation/metrics/dci.py`` (compute_importance_gbt + disentanglement + completeness, saved outside
the repo with gin/absl stubbed) on the inputs that ``dci_cases.golden_inputs`` builds, averaged over 5
global NumPy seeds because dlib leaves GradientBoostingClassifier's random_state at None.
"""

from __future__ import annotations

import numpy as np
import pytest
from dci_cases import GOLDEN_CASES, SCORE_KEYS, golden_inputs, golden_scores

from dbench.metrics._dci import SPEC, completeness_score, dci, dci_importance, disentanglement_score
from dbench.metrics._validation import DegenerateInputWarning


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_fast_estimator_matches_disentanglement_lib(case):
    expected = golden_scores()[case]
    scores = dci(*golden_inputs(case))
    for key in SCORE_KEYS:
        assert scores[key] == pytest.approx(expected[key], abs=0.02), key


@pytest.mark.parametrize("case", ["ground_truth"])
def test_sklearn_estimator_matches_disentanglement_lib(case):
    expected = golden_scores()[case]
    scores = dci(*golden_inputs(case), estimator="sklearn")
    for key in SCORE_KEYS:
        assert scores[key] == pytest.approx(expected[key], abs=0.02), key


def test_ground_truth_codes_score_near_the_top_and_noise_near_zero():
    truth = dci(*golden_inputs("ground_truth", 300, 150))
    assert truth["disentanglement"] > 0.9 and truth["completeness"] > 0.9
    assert truth["informativeness_test"] > 0.95
    noise = dci(*golden_inputs("noise", 300, 150))
    assert noise["disentanglement"] < 0.2


def test_latent_permutation_and_positive_rescaling_leave_scores_unchanged():
    ztr, ftr, zte, fte = golden_inputs("mixed", 300, 150)
    base = dci(ztr, ftr, zte, fte)
    perm = np.array([3, 0, 5, 1, 4, 2])
    scale = np.array([0.5, 3.0, 1.0, 10.0, 0.25, 2.0])  # powers of two and exact-ish: float32 order kept
    moved = dci(ztr[:, perm] * scale, ftr, zte[:, perm] * scale, fte)
    for key in SCORE_KEYS:
        assert moved[key] == pytest.approx(base[key], abs=1e-9), key


def test_importance_matrix_layout_and_column_sums():
    importance, _ = dci_importance(*golden_inputs("noisy", 200, 100))
    assert importance.shape == (6, 4)
    np.testing.assert_allclose(importance.sum(axis=0), 1.0)
    assert np.argmax(importance[:4], axis=0).tolist() == [0, 1, 2, 3]


def test_entropy_maths_matches_dlib_formulas():
    # Diagonal -> 1; uniform -> 0; all-zero -> dlib's uniform weights and ~0 scores.
    assert disentanglement_score(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert completeness_score(np.eye(3)) == pytest.approx(1.0, abs=1e-8)
    assert disentanglement_score(np.ones((4, 3))) == pytest.approx(0.0, abs=1e-12)
    assert completeness_score(np.zeros((4, 3))) == pytest.approx(0.0, abs=1e-9)
    # one latent capturing two factors equally: D = 0 for it; completeness = 1
    assert disentanglement_score(np.array([[0.5, 0.5]])) == pytest.approx(0.0, abs=1e-9)
    assert completeness_score(np.array([[0.5, 0.5]])) == pytest.approx(1.0)


def test_constant_codes_and_single_valued_factor_warn_and_stay_finite():
    ztr, ftr, zte, fte = golden_inputs("noise", 200, 100)
    with pytest.warns(DegenerateInputWarning):
        scores = dci(np.zeros_like(ztr), ftr, np.zeros_like(zte), fte)
    assert all(np.isfinite(v) for v in scores.values())
    assert scores["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    ftr1, fte1 = ftr.copy(), fte.copy()
    ftr1[:, 0] = 0
    fte1[:, 0] = 0
    with pytest.warns(DegenerateInputWarning, match="factor 0"):
        scores = dci(ztr, ftr1, zte, fte1)
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(codes_train=np.zeros(10)), "codes_train"),
        (dict(factors_test=np.zeros((5, 4), dtype=int)), "factors_test"),
        (dict(codes_test=np.zeros((100, 3))), "codes_test"),
        (dict(codes_train=np.full((200, 5), np.nan)), "codes_train"),
        (dict(estimator="xgboost"), "estimator"),
        (dict(estimator="gpu"), "'fast', 'numba', 'array', 'sklearn'"),
    ],
)
def test_bad_input_names_the_argument(bad, match):
    ztr, ftr, zte, fte = golden_inputs("noise", 200, 100)
    args = dict(codes_train=ztr, factors_train=ftr, codes_test=zte, factors_test=fte)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        dci(**args)


def test_array_api_strict_and_torch_inputs_give_the_same_scores():
    ztr, ftr, zte, fte = golden_inputs("noisy", 200, 100)
    base = dci(ztr, ftr, zte, fte)
    xps = pytest.importorskip("array_api_strict")
    torch = pytest.importorskip("torch")
    for convert in (xps.asarray, torch.from_numpy):
        arrays = [convert(a) for a in (ztr, ftr, zte, fte)]
        # The compiled trees by name: the codes go to the host, the numbers are NumPy's exactly.
        assert dci(*arrays, estimator="numba") == base
        # The default runs the array-API trees where the codes live: the same trees here (a split
        # may flip only at a near-tie; tests/test_array_trees.py and docs/gpu.md measure how often).
        assert dci(*arrays) == pytest.approx(base, abs=1e-12)
    xp_importance = xps.asarray(dci_importance(ztr, ftr, zte, fte)[0])
    assert disentanglement_score(xp_importance) == pytest.approx(base["disentanglement"], abs=1e-12)


def test_spec_plans_train_and_test_requests_and_scores():
    class Grid:
        name, factor_names, factor_sizes, observation_shape = "grid", ("a", "b"), (3, 4), (1, 2, 2)

    params = SPEC.resolve({"n_train": 120, "n_test": 60})
    plan = SPEC.plan(Grid(), np.random.default_rng(0), params)
    assert plan.requests["train"].shape == (120,) and plan.requests["test"].shape == (60,)
    codes = {key: plan.extra[f"factors_{key}"].astype(np.float64) for key in ("train", "test")}
    scores = SPEC.score(plan, codes, params).scores
    assert scores["disentanglement"] > 0.9
    assert SPEC.defaults["n_train"] == 10000 and SPEC.defaults["n_test"] == 5000


def test_importance_heatmap_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    from dbench.plots.dci import plot_importance_matrix

    path = plot_importance_matrix(np.eye(3)[:, :2], ["shape", "scale"], path=tmp_path / "dci.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="factor_names"):
        plot_importance_matrix(np.eye(3), ["one"], path=tmp_path / "bad.png")
