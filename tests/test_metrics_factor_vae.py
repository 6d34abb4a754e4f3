"""Kim & Mnih's FactorVAE score: known answers, invariances, pruning, backends, errors, dlib parity."""

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

import dbench.metrics._factor_vae as fv
from dbench.datasets.base import indices_to_factors
from dbench.metrics._validation import DegenerateInputWarning

SMALL = {"batch_size": 16, "n_train": 200, "n_eval": 100, "n_variance_estimate": 200, "prune_threshold": 0.05}


def _plan(dataset, seed=0, **overrides):
    return fv.SPEC.plan(dataset, np.random.default_rng(seed), fv.SPEC.resolve({**SMALL, **overrides}))


def _score(dataset, table, seed=0, **overrides):
    params = fv.SPEC.resolve({**SMALL, **overrides})
    plan = fv.SPEC.plan(dataset, np.random.default_rng(seed), params)
    return fv.SPEC.score(plan, plan_codes_from_table(plan, table), params).scores


def test_ground_truth_factors_score_one():
    dataset = GridDataset()
    scores = fv.factor_vae(dataset, TableEncoder(dataset, factor_table(dataset)), seed=0, **SMALL)
    assert scores == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 3}


def test_codes_independent_of_everything_score_near_chance():
    dataset = GridDataset((5, 5, 5))
    plan = _plan(dataset, n_train=300, n_eval=600, batch_size=8)
    scores = fv.SPEC.score(plan, iid_noise_codes(plan, n_latents=4), SMALL).scores
    assert abs(scores["eval_accuracy"] - 1 / 3) < 0.1  # about five standard errors
    assert scores["num_active_dims"] == 4


def test_permuting_latents_leaves_the_score_unchanged():
    dataset = GridDataset((4, 6, 8))
    table = mixed_table(dataset, 2.0)
    assert _score(dataset, table[:, [1, 2, 0]]) == _score(dataset, table)


def test_positive_rescaling_of_a_latent_leaves_the_score_unchanged():
    # Votes compare variances normalised by each latent's global variance.
    dataset = GridDataset((4, 6, 8))
    table = mixed_table(dataset, 2.0)
    assert _score(dataset, table * np.array([3.0, 0.5, 40.0])) == _score(dataset, table)


def test_pruning_uses_the_absolute_standard_deviation():
    # dlib prunes sqrt(var) < threshold, not relative to the largest latent: shrinking one latent below
    # 0.05 removes it, whatever the others.
    dataset = GridDataset((4, 6, 8))
    table = factor_table(dataset) * np.array([1.0, 1.0, 0.001])
    scores = _score(dataset, table)
    assert scores["num_active_dims"] == 2
    assert scores["eval_accuracy"] < 0.9  # the third factor's batches now vote for the wrong latents
    assert _score(dataset, table, prune_threshold=0.0)["eval_accuracy"] == 1.0


def test_constant_codes_give_dlibs_zero_scores_with_a_warning():
    dataset = GridDataset()
    plan = _plan(dataset)
    codes = {key: np.full(idx.shape + (3,), 2.5) for key, idx in plan.requests.items()}
    for threshold in (0.05, 0.0):  # at 0 dlib would divide 0 by 0; a zero-variance latent is never active
        with pytest.warns(DegenerateInputWarning, match="prune_threshold"):
            scores = fv.SPEC.score(plan, codes, {**SMALL, "prune_threshold": threshold}).scores
        assert scores == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}


def test_ties_go_to_the_first_latent_and_the_first_factor():
    codes = np.zeros((2, 4, 3))
    codes[:, :, 2] = [1.0, -1.0, 1.0, -1.0]  # latents 0 and 1 tie at variance 0
    votes = fv.vote_latents(codes, np.ones(3), np.array([True, True, True]))
    assert votes.tolist() == [0, 0]
    matrix = fv.vote_matrix(np.array([1, 0]), np.array([0, 0]), n_factors=2, n_latents=3)
    assert np.argmax(matrix, axis=0)[0] == 0  # one vote each: the first factor wins, as np.argmax


def test_inactive_latents_never_get_votes():
    codes = np.zeros((1, 4, 2))
    codes[0, :, 1] = [0.0, 1.0, 0.0, 1.0]
    assert fv.vote_latents(codes, np.array([0.0, 1.0]), np.array([False, True])).tolist() == [1]


def test_plan_batches_share_the_labelled_factor_value():
    dataset = GridDataset((4, 6, 8))
    plan = _plan(dataset)
    assert plan.requests["variance"].shape == (SMALL["n_variance_estimate"],)
    assert plan.requests["train"].shape == (SMALL["n_train"], SMALL["batch_size"])
    shape = (SMALL["n_eval"], SMALL["batch_size"], 3)
    factors = indices_to_factors(dataset, plan.requests["eval"].ravel()).reshape(shape)
    labels = plan.extra["eval_labels"]
    fixed = factors[np.arange(labels.size), :, labels]
    assert np.all(fixed == fixed[:, :1])
    assert set(np.unique(labels)) == {0, 1, 2}


def test_same_seed_same_result_and_different_seed_different_sample():
    dataset = GridDataset((4, 6, 8))
    encoder = TableEncoder(dataset, mixed_table(dataset, 2.0))
    assert fv.factor_vae(dataset, encoder, seed=5, **SMALL) == fv.factor_vae(dataset, encoder, seed=5, **SMALL)
    assert not np.array_equal(_plan(dataset, seed=5).requests["train"], _plan(dataset, seed=6).requests["train"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_score_agrees_across_array_backends(backend):
    dataset = GridDataset((4, 6, 8))
    plan = _plan(dataset)
    table = np.concatenate([mixed_table(dataset, 2.0), 0.01 * factor_table(dataset)[:, :1]], axis=1)
    codes = plan_codes_from_table(plan, table)
    assert fv.SPEC.score(plan, codes_in_backend(codes, backend), SMALL).scores == fv.SPEC.score(plan, codes, SMALL).scores


@pytest.mark.parametrize(
    ("overrides", "name"),
    [({"batch_size": 1}, "batch_size"), ({"n_train": 0}, "n_train"), ({"n_eval": 0}, "n_eval"),
     ({"n_variance_estimate": 1}, "n_variance_estimate"), ({"prune_threshold": -0.1}, "prune_threshold"),
     ({"prune_threshold": float("nan")}, "prune_threshold"), ({"prune_threshold": "0.05"}, "prune_threshold")],
)
def test_bad_parameters_name_the_parameter(overrides, name):
    with pytest.raises(ValueError, match=name):
        _plan(GridDataset(), **overrides)


def test_bad_codes_are_named():
    dataset = GridDataset()
    plan = _plan(dataset)
    codes = plan_codes_from_table(plan, factor_table(dataset))
    with pytest.raises(ValueError, match=r"codes\['train'\] has 3 latents but codes\['variance'\] has 2"):
        fv.SPEC.score(plan, {**codes, "variance": codes["variance"][:, :2]}, SMALL)
    with pytest.raises(ValueError, match="inf"):
        fv.SPEC.score(plan, {**codes, "train": np.full_like(codes["train"], np.inf)}, SMALL)


@pytest.mark.parametrize("case", range(len(dlib_golden("factor_vae")["exact"])))
def test_matches_dlib_on_the_same_samples(case):
    """dlib's compute_factor_vae, fed dbench's planned samples, gave these accuracies (fixture)."""
    ours, dlib = score_exact_case(fv.SPEC, case)
    assert ours["train_accuracy"] == pytest.approx(dlib["train_accuracy"], abs=1e-12)
    assert ours["eval_accuracy"] == pytest.approx(dlib["eval_accuracy"], abs=1e-12)
    # dlib reports len(mask) = every latent (4 here); dbench counts the active ones (the collapsed one is not).
    assert (dlib["num_active_dims"], ours["num_active_dims"]) == (4, 3)


def test_matches_dlib_in_distribution_with_independent_random_streams():
    """Mean eval accuracy over seeds agrees with dlib's own sampling (RandomState) within 4 standard errors."""
    assert distance_from_dlib_in_standard_errors(fv.factor_vae, "factor_vae") < 4
