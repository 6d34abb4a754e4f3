"""Higgins et al.'s beta-VAE score: known answers, invariances, backends, errors, dlib parity."""

from __future__ import annotations

import numpy as np
import pytest
from sampling_metric_data import (
    BACKENDS,
    GridDataset,
    TableEncoder,
    codes_in_backend,
    distance_from_dlib_in_standard_errors,
    dlib_golden,
    factor_table,
    iid_noise_codes,
    mixed_table,
    plan_codes_from_table,
    score_exact_case,
)

import dbench.metrics._beta_vae as bv
from dbench.datasets.base import indices_to_factors
from dbench.metrics._validation import DegenerateInputWarning

SMALL = {"batch_size": 16, "n_train": 200, "n_eval": 100}


def _plan(dataset, seed=0, **overrides):
    return bv.SPEC.plan(dataset, np.random.default_rng(seed), bv.SPEC.resolve({**SMALL, **overrides}))


def test_ground_truth_factors_score_near_one():
    dataset = GridDataset()
    scores = bv.beta_vae(dataset, TableEncoder(dataset, factor_table(dataset)), seed=0, **SMALL)
    assert set(scores) == {"train_accuracy", "eval_accuracy"}
    assert scores["train_accuracy"] > 0.9 and scores["eval_accuracy"] > 0.9


def test_codes_independent_of_everything_score_near_chance():
    dataset = GridDataset((5, 5, 5))
    plan = _plan(dataset, n_train=300, n_eval=600, batch_size=8)
    scores = bv.SPEC.score(plan, iid_noise_codes(plan, n_latents=4), bv.SPEC.resolve(SMALL)).scores
    # chance = 1/3; 0.1 is about five standard errors of a 600-point accuracy
    assert abs(scores["eval_accuracy"] - 1 / 3) < 0.1


def test_scores_order_by_noise_level():
    dataset = GridDataset((4, 6, 8))
    plan = _plan(dataset)
    clean, noisy = (bv.SPEC.score(plan, plan_codes_from_table(plan, mixed_table(dataset, s)), SMALL).scores for s in (0.3, 3.0))
    assert clean["eval_accuracy"] > noisy["eval_accuracy"] + 0.2


def test_permuting_latents_leaves_the_score_unchanged():
    dataset = GridDataset((4, 6, 8))
    table = mixed_table(dataset, 2.0)
    plan = _plan(dataset)
    base = bv.SPEC.score(plan, plan_codes_from_table(plan, table), SMALL).scores
    permuted = bv.SPEC.score(plan, plan_codes_from_table(plan, table[:, [2, 0, 1]]), SMALL).scores
    # lbfgs is permutation-equivariant up to rounding; allow one flipped borderline prediction
    assert permuted["train_accuracy"] == pytest.approx(base["train_accuracy"], abs=1 / SMALL["n_train"] + 1e-12)
    assert permuted["eval_accuracy"] == pytest.approx(base["eval_accuracy"], abs=1 / SMALL["n_eval"] + 1e-12)


def test_plan_pairs_share_exactly_the_labelled_factor():
    dataset = GridDataset((4, 6, 8))
    plan = _plan(dataset)
    assert plan.requests["train_a"].shape == (SMALL["n_train"], SMALL["batch_size"])
    assert plan.requests["eval_b"].shape == (SMALL["n_eval"], SMALL["batch_size"])
    for split in ("train", "eval"):
        labels = plan.extra[f"{split}_labels"]
        shape = plan.requests[f"{split}_a"].shape + (3,)
        fa = indices_to_factors(dataset, plan.requests[f"{split}_a"].ravel()).reshape(shape)
        fb = indices_to_factors(dataset, plan.requests[f"{split}_b"].ravel()).reshape(shape)
        rows = np.arange(labels.size)
        assert np.all(fa[rows, :, labels] == fb[rows, :, labels])
        assert set(np.unique(labels)) == {0, 1, 2}
    assert not np.array_equal(fa, fb)  # the other factors are drawn independently


def test_same_seed_same_result_and_different_seed_different_sample():
    dataset = GridDataset((4, 6, 8))
    encoder = TableEncoder(dataset, mixed_table(dataset, 2.0))
    first, again = (bv.beta_vae(dataset, encoder, seed=3, **SMALL) for _ in range(2))
    assert first == again
    assert not np.array_equal(_plan(dataset, seed=3).requests["train_a"], _plan(dataset, seed=4).requests["train_a"])


def test_encoder_returning_mean_and_log_variance_uses_the_mean():
    dataset = GridDataset()
    table = mixed_table(dataset, 1.0)
    plain = TableEncoder(dataset, table)

    class MeanLogvar:
        def encode(self, images):
            mean = plain.encode(images)
            return mean, np.zeros_like(mean)

    assert bv.beta_vae(dataset, MeanLogvar(), seed=1, **SMALL) == bv.beta_vae(dataset, plain, seed=1, **SMALL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_score_agrees_across_array_backends(backend):
    dataset = GridDataset((4, 6, 8))
    plan = _plan(dataset)
    codes = plan_codes_from_table(plan, mixed_table(dataset, 2.0))
    expected = bv.SPEC.score(plan, codes, SMALL).scores
    got = bv.SPEC.score(plan, codes_in_backend(codes, backend), SMALL).scores
    assert got == pytest.approx(expected, abs=1e-12)


def test_constant_codes_warn_and_score_the_most_frequent_factor():
    dataset = GridDataset()
    plan = _plan(dataset)
    codes = {key: np.ones(idx.shape + (2,)) for key, idx in plan.requests.items()}
    with pytest.warns(DegenerateInputWarning, match="do not vary"):
        scores = bv.SPEC.score(plan, codes, SMALL).scores
    majority = np.bincount(plan.extra["train_labels"]).max() / SMALL["n_train"]
    assert scores["train_accuracy"] == pytest.approx(majority)
    assert np.all(np.isfinite(list(scores.values())))


def test_single_factor_dataset_warns_and_predicts_that_factor():
    dataset = GridDataset((7,))
    with pytest.warns(DegenerateInputWarning, match="same factor"):
        scores = bv.beta_vae(dataset, TableEncoder(dataset, factor_table(dataset)), seed=0, **SMALL)
    assert scores == {"train_accuracy": 1.0, "eval_accuracy": 1.0}


@pytest.mark.parametrize(
    ("overrides", "name"),
    [({"n_train": 0}, "n_train"), ({"n_eval": -1}, "n_eval"), ({"batch_size": 0}, "batch_size"),
     ({"batch_size": 2.5}, "batch_size"), ({"n_train": True}, "n_train")],
)
def test_bad_parameters_name_the_parameter(overrides, name):
    with pytest.raises(ValueError, match=name):
        _plan(GridDataset(), **overrides)


def test_unknown_parameter_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="batch_size, n_eval, n_train"):
        bv.SPEC.resolve({"num_train": 10})


def test_bad_codes_and_inputs_are_named():
    dataset = GridDataset()
    plan = _plan(dataset)
    codes = plan_codes_from_table(plan, factor_table(dataset))
    with pytest.raises(ValueError, match="train_b"):
        bv.SPEC.score(plan, {**codes, "train_b": codes["train_b"][:5]}, SMALL)
    with pytest.raises(ValueError, match="NaN"):
        bv.SPEC.score(plan, {**codes, "eval_a": np.full_like(codes["eval_a"], np.nan)}, SMALL)
    with pytest.raises(ValueError, match="missing"):
        bv.SPEC.score(plan, {k: v for k, v in codes.items() if k != "eval_b"}, SMALL)
    with pytest.raises(ValueError, match="seed"):
        bv.beta_vae(dataset, TableEncoder(dataset, factor_table(dataset)), seed=None, **SMALL)
    with pytest.raises(ValueError, match="dataset"):
        bv.beta_vae(object(), TableEncoder(dataset, factor_table(dataset)), seed=0, **SMALL)


@pytest.mark.parametrize("case", range(len(dlib_golden("beta_vae")["exact"])))
def test_matches_dlib_on_the_same_samples(case):
    """dlib's compute_beta_vae_sklearn, fed dbench's planned samples, gave these numbers (fixture)."""
    ours, dlib = score_exact_case(bv.SPEC, case)
    assert ours == pytest.approx(dlib, abs=1e-12)


def test_matches_dlib_in_distribution_with_independent_random_streams():
    """Mean eval accuracy over seeds agrees with dlib's own sampling (RandomState) within 4 standard errors."""
    assert distance_from_dlib_in_standard_errors(bv.beta_vae, "beta_vae") < 4
