"""Downstream task, few-shot probes, summaries and plots on a tiny synthetic factor grid.

Known answers: ground-truth factors as codes are learnt almost perfectly with enough labels; codes
independent of the factors stay at chance level (the majority-class rate, about 1 / n_values).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from array_api_compat import array_namespace
from sampling_metric_data import GridDataset
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

import dbench.metrics as dbench_metrics
from dbench.datasets.base import indices_to_factors
from dbench.metrics._validation import DegenerateInputWarning
from dbench.probes import downstream, few_shot
from dbench.probes.plots import plot_learning_curves
from dbench.probes.summaries import dlib_keys, learning_curves, log_curve_area, sample_efficiency, summarize

SIZES = (3, 4, 6)


def _codes(dataset, requests, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = {}
    for key, idx in requests.items():
        factors = indices_to_factors(dataset, idx).astype(np.float64)
        if kind == "factors":
            out[key] = factors + 0.01 * rng.normal(size=factors.shape)
        else:
            out[key] = rng.normal(size=factors.shape[:-1] + (4,))
    return out


def _downstream(kind: str, sizes=(20, 300), predictors=("logistic_regression_cv",), seed=0):
    dataset = GridDataset(SIZES)
    params = downstream.SPEC.resolve({"n_train_sizes": list(sizes), "n_test": 400, "predictors": list(predictors)})
    plan = downstream.SPEC.plan(dataset, np.random.default_rng(seed), params)
    return plan, downstream.SPEC.score(plan, _codes(dataset, plan.requests, kind), params).scores


def test_ground_truth_codes_are_learnt():
    _, scores = _downstream("factors")
    assert scores["logistic_regression_cv:300:min_test_accuracy"] >= 0.95
    assert scores["logistic_regression_cv:300:mean_train_accuracy"] >= 0.95


def test_noise_codes_stay_at_chance():
    _, scores = _downstream("noise")
    chance = np.mean([1 / k for k in SIZES])
    assert abs(scores["logistic_regression_cv:300:mean_test_accuracy"] - chance) < 0.1


def test_dlib_key_names():
    _, scores = _downstream("factors", sizes=(20, 100))
    keys = set(dlib_keys(scores, "logistic_regression_cv"))
    expected = set()
    for n in (20, 100):
        expected |= {f"{n}:{w}_{s}_accuracy" for w in ("mean", "min") for s in ("train", "test")}
        expected |= {f"{n}:{s}_accuracy_factor_{i}" for s in ("train", "test") for i in range(len(SIZES))}
    assert keys == expected
    assert "logistic_regression_cv:log_n_auc" in scores


def test_logistic_probe_matches_sklearn_estimator_dlib_uses():
    # Default (exact) solver: scikit-learn's own procedure, so the accuracies are identical; the batched
    # array-API solver reaches the optimum scikit-learn approaches, within dlib-parity 0.02.
    plan, scores = _downstream("noise", sizes=(150,))
    codes = _codes(GridDataset(SIZES), plan.requests, "noise")
    Xtr, Xte = codes["train_150"], codes["test_150"]
    ytr, yte = plan.extra["factors"]["train_150"], plan.extra["factors"]["test_150"]
    _, batched = downstream.downstream_accuracies(Xtr, ytr, Xte, yte, logistic_solver="batched")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(SIZES)):
            model = LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)).fit(Xtr, ytr[:, i])
            ref = np.mean(model.predict(Xte) == yte[:, i])
            assert scores[f"logistic_regression_cv:150:test_accuracy_factor_{i}"] == ref
            assert abs(batched[i] - ref) <= 0.02


def test_gradient_boosting_matches_sklearn():
    plan, scores = _downstream("factors", sizes=(40,), predictors=("gradient_boosting",))
    codes = _codes(GridDataset(SIZES), plan.requests, "factors")
    ytr, yte = plan.extra["factors"]["train_40"], plan.extra["factors"]["test_40"]
    for i in range(len(SIZES)):
        if np.unique(ytr[:, i]).size < 2:
            continue
        model = GradientBoostingClassifier(random_state=0).fit(codes["train_40"], ytr[:, i])
        ref = np.mean(model.predict(codes["test_40"]) == yte[:, i])
        assert scores[f"gradient_boosting:40:test_accuracy_factor_{i}"] == pytest.approx(ref)


def test_deterministic_per_seed_and_backend_agreement():
    plan_a, scores_a = _downstream("noise", sizes=(30,), seed=3)
    _, scores_b = _downstream("noise", sizes=(30,), seed=3)
    assert scores_a == scores_b
    torch = pytest.importorskip("torch")
    params = downstream.SPEC.resolve({"n_train_sizes": [30], "n_test": 400, "predictors": ["logistic_regression_cv"]})
    codes = {k: torch.asarray(v) for k, v in _codes(GridDataset(SIZES), plan_a.requests, "noise").items()}
    assert downstream.SPEC.score(plan_a, codes, params).scores == pytest.approx(scores_a, abs=1e-12)


def test_single_valued_training_factor_warns():
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.stack([np.zeros(20, dtype=int), np.arange(20) % 2], axis=1)
    with pytest.warns(DegenerateInputWarning, match="single value"):
        train, test = downstream.downstream_accuracies(X, y, X, y)
    assert train[0] == 1.0 and test[0] == 1.0


def test_downstream_bad_params():
    with pytest.raises(ValueError, match="predictor"):
        downstream.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), downstream.SPEC.resolve({"predictors": ["svm"]}))
    with pytest.raises(ValueError, match="n_train_sizes"):
        downstream.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), downstream.SPEC.resolve({"n_train_sizes": [3]}))
    with pytest.raises(ValueError, match="logistic_solver"):
        downstream.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), downstream.SPEC.resolve({"logistic_solver": "newton"}))


# ---- few-shot ---------------------------------------------------------------------------------


def _few_shot(kind: str, continuous=(), shots=(1, 5, "all"), seed=0, probes=("linear", "knn")):
    dataset = GridDataset(SIZES)
    params = few_shot.SPEC.resolve(
        {"n_pool": 1000, "n_test": 300, "shots": list(shots), "n_draws": 3, "continuous_factors": list(continuous),
         "probes": list(probes)}
    )
    plan = few_shot.SPEC.plan(dataset, np.random.default_rng(seed), params)
    return plan, few_shot.SPEC.score(plan, _codes(dataset, plan.requests, kind), params).scores


def test_few_shot_known_answers():
    _, good = _few_shot("factors")
    _, noise = _few_shot("noise")
    chance = np.mean([1 / k for k in SIZES])
    # Fixed C = 1 keeps the linear probe's weights moderate, so ordered 6-valued factors are slightly blurred.
    assert good["linear:all:mean_accuracy"] >= 0.9
    assert good["knn:all:mean_accuracy"] >= 0.95
    for probe in ("linear", "knn"):
        assert abs(noise[f"{probe}:all:mean_accuracy"] - chance) < 0.12
        assert good[f"{probe}:5:mean_accuracy"] > noise[f"{probe}:5:mean_accuracy"] + 0.2
    # 1-NN on one exact example per class recovers a factor coded alone... up to the other factors' spread.
    assert good["knn:1:mean_accuracy"] > chance


def test_few_shot_spread_keys_and_ci():
    _, scores = _few_shot("noise")
    for key in ("linear:5:accuracy_factor_0", "knn:1:mean_accuracy"):
        low, mean, high = scores[key + ":ci95_low"], scores[key], scores[key + ":ci95_high"]
        assert low <= mean <= high and scores[key + ":std"] >= 0
    assert scores["linear:all:mean_accuracy:std"] == 0.0


def test_few_shot_continuous_factor_uses_r2():
    _, scores = _few_shot("factors", continuous=["f2"], shots=(5,))
    assert scores["linear:5:r2_factor_2"] > 0.95
    assert "linear:5:accuracy_factor_2" not in scores


def test_balanced_subsets():
    labels = np.repeat(np.arange(4), [5, 6, 7, 8])
    subsets = few_shot.balanced_subsets(labels, 3, 4, np.random.default_rng(0))
    assert subsets.shape == (4, 12)
    for row in subsets:
        assert np.unique(row).size == 12
        np.testing.assert_array_equal(np.bincount(labels[row]), [3, 3, 3, 3])
    with pytest.raises(ValueError, match="smallest class"):
        few_shot.balanced_subsets(labels, 6, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="single value"):
        few_shot.balanced_subsets(np.zeros(10, dtype=int), 1, 1, np.random.default_rng(0))


def test_few_shot_errors_and_neighbours():
    assert few_shot.n_neighbours(1) == 1 and few_shot.n_neighbours(50) == 5 and few_shot.n_neighbours("all") == 5
    with pytest.raises(ValueError, match="single value"):
        few_shot.SPEC.plan(GridDataset((1, 3)), np.random.default_rng(0), few_shot.SPEC.resolve({"n_pool": 50}))
    with pytest.raises(ValueError, match="smallest class"):
        few_shot.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), few_shot.SPEC.resolve({"n_pool": 30, "shots": [10]}))
    with pytest.raises(ValueError, match="shots"):
        few_shot.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), few_shot.SPEC.resolve({"shots": [0]}))


def test_few_shot_deterministic_and_strict_backend():
    plan, a = _few_shot("noise", shots=(1, 5), seed=4)
    _, b = _few_shot("noise", shots=(1, 5), seed=4)
    assert a == b
    import array_api_strict as xps

    params = few_shot.SPEC.resolve({"n_pool": 1000, "n_test": 300, "shots": [1, 5], "n_draws": 3})
    codes = {k: xps.asarray(v) for k, v in _codes(GridDataset(SIZES), plan.requests, "noise").items()}
    assert few_shot.SPEC.score(plan, codes, params).scores == pytest.approx(a, abs=1e-9)


# ---- summaries and plots ----------------------------------------------------------------------


def test_summaries():
    assert sample_efficiency(0.5, 0.8) == pytest.approx(0.625)
    assert log_curve_area([10, 100, 1000], [0.7, 0.7, 0.7]) == pytest.approx(0.7)
    assert log_curve_area([10, 100, 1000], [0.0, 0.5, 1.0]) == pytest.approx(0.5)
    assert log_curve_area([10, 1000], [0.2, 1.0]) == pytest.approx(0.6)
    scores = {}
    for n, acc in ((10, 0.4), (100, 0.6), (1000, 0.8), (10000, 0.9)):
        scores.update(downstream.dlib_scores(n, np.array([acc]), np.array([acc])))
    prefixed = {f"lr:{k}": v for k, v in scores.items()}
    summary = summarize(prefixed)
    assert summary["lr:sample_efficiency"] == pytest.approx(0.6 / 0.9)
    assert 0.4 < summary["lr:log_n_auc"] < 0.9
    np.testing.assert_array_equal(learning_curves(prefixed)["lr"]["sizes"], [10, 100, 1000, 10000])
    with pytest.raises(ValueError):
        sample_efficiency(0.5, 0.0)
    with pytest.raises(ValueError):
        log_curve_area([10, 10], [0.1, 0.2])


def test_plot_learning_curves(tmp_path):
    _, scores = _downstream("factors", sizes=(20, 100))
    path = plot_learning_curves(scores, tmp_path / "curves" / "lc.png", factor_names=["a", "b", "c"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no downstream"):
        plot_learning_curves({"x": 1.0}, tmp_path / "none.png")


def test_few_shot_torch_backend_agrees_with_numpy():
    torch = pytest.importorskip("torch")
    params = few_shot.SPEC.resolve({"n_pool": 300, "n_test": 200, "shots": [1, "all"], "n_draws": 2, "continuous_factors": [2]})
    plan = few_shot.SPEC.plan(GridDataset(SIZES), np.random.default_rng(0), params)
    codes = _codes(GridDataset(SIZES), plan.requests, "factors")
    reference = few_shot.SPEC.score(plan, codes, params).scores
    on_torch = few_shot.SPEC.score(plan, {k: torch.asarray(v) for k, v in codes.items()}, params).scores
    assert on_torch == pytest.approx(reference, abs=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def test_knn_neighbours_are_a_stable_sorts_nearest(backend):
    # Nearest first, ties to the lower training index: the first columns of a stable argsort of the
    # distances. Integer coordinates keep every distance exact, so equal distances are true ties
    # (plenty of them on a small grid, and duplicated training rows add more).
    rng = np.random.default_rng(4)
    train = rng.integers(-3, 4, size=(3, 60, 2)).astype(np.float64)
    train[:, 30:] = train[:, :30]  # every row twice
    test = rng.integers(-3, 4, size=(25, 2)).astype(np.float64)
    distances = ((test[None, :, None, :] - train[:, None, :, :]) ** 2).sum(-1)
    expected = np.argsort(distances, axis=-1, kind="stable")[..., :5]
    if backend == "numpy":
        arrays = (train, test)
    elif backend == "array_api_strict":
        xps = pytest.importorskip("array_api_strict")
        arrays = (xps.asarray(train), xps.asarray(test))
    else:
        torch = pytest.importorskip("torch")
        arrays = (torch.as_tensor(train), torch.as_tensor(test))
    got = few_shot._knn_neighbours(array_namespace(*arrays), *arrays, 5, chunk=10)
    got = got.numpy() if backend == "torch" else np.asarray(got)
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_probe_code_and_declaration_name_the_same_options():
    """The declaration (re-exported by dbench/metrics/_downstream_task.py) and the code (PREDICTORS) list the same predictors."""
    from dbench.metrics._downstream_task import PREDICTOR_NAMES

    assert set(downstream.PREDICTORS) == set(PREDICTOR_NAMES)
    assert downstream.SPEC is dbench_metrics.get_metric("downstream_task")
    assert few_shot.SPEC is dbench_metrics.get_metric("few_shot")
