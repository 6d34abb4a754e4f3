"""Property tests over the metric registry (scikit-learn's ``test_common`` pattern), driven by the specs.

Score bounds are the ones each metric declares (``MetricSpec.scores``) and the registry is
``dbench.metrics.METRIC_NAMES``: nothing here restates them. ``METRIC_TABLE`` says, per array-level
metric, how to call it on ``(codes_train, factors_train, codes_test, factors_test)`` and which keys are
invariant to permuting the latents or rescaling each one; hypothesis draws the inputs. A guard test keeps
the table in step with the registry, and every registered metric (sampling-level metrics and probes
included) is run through its spec once to check it returns only declared keys within their bounds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sampling_metric_data import GridDataset, plan_codes_from_table

from dbench.metrics import (
    METRIC_NAMES,
    DegenerateInputWarning,
    dci,
    get_metric,
    irs,
    mig,
    modularity_explicitness,
    sap,
    unsupervised,
)

ALL = "all declared keys"


@dataclass(frozen=True)
class MetricRow:
    """How to call one array-level metric and which of its keys promise which invariance."""

    call: Callable[[Any, Any, Any, Any], dict[str, float]]
    permutation_invariant: tuple[str, ...] | str = ()
    scale_invariant: tuple[str, ...] | str = ()
    registry_name: str | None = None  # a variant of a registered metric (an option set differently)
    # How closely scores on torch / array_api_strict codes agree with NumPy's. A metric whose default
    # estimator on such codes is a different one (the device estimators, docs/gpu.md) states the
    # measured agreement of the two here; the host estimator by name keeps 1e-9 (a row of its own).
    backend_tolerance: float = 1e-9

    def keys(self, name: str, which: tuple[str, ...] | str) -> tuple[str, ...]:
        declared = tuple(s.key for s in get_metric(self.registry_name or name).scores)
        return declared if which == ALL else which


METRIC_TABLE: dict[str, MetricRow] = {
    "mig": MetricRow(call=lambda c, f, ct, ft: mig(c, f), permutation_invariant=ALL, scale_invariant=ALL),
    "sap": MetricRow(
        call=lambda c, f, ct, ft: sap(c, f, ct, ft),
        permutation_invariant=ALL,
        # dlib's SVM penalty is not scale-free; sap(..., standardize=True) is (tests/test_metrics_sap.py).
    ),
    "sap_standardized": MetricRow(
        call=lambda c, f, ct, ft: sap(c, f, ct, ft, standardize=True),
        permutation_invariant=ALL,
        scale_invariant=ALL,
        registry_name="sap",
    ),
    "modularity_explicitness": MetricRow(
        call=lambda c, f, ct, ft: modularity_explicitness(c, f, ct, ft),
        # Explicitness standardises the codes first, so rescaling a latent changes nothing either.
        permutation_invariant=ALL,
        scale_invariant=ALL,
        # Off NumPy the logistic fits are solved to the optimum (scikit-learn's iterates stop at
        # gtol 1e-4): AUCs within 6e-5 of NumPy's on the fixtures and drawn inputs (docs/gpu.md).
        backend_tolerance=1e-4,
    ),
    "dci": MetricRow(
        call=lambda c, f, ct, ft: dci(c, f, ct, ft),
        # Trees depend only on the order of each latent's values; the importance matrix's rows move
        # with the latents, and D and C are symmetric in them. Off NumPy the array-API trees run:
        # the same trees here (a split can flip only at a near-tie, docs/gpu.md).
        permutation_invariant=ALL,
        scale_invariant=ALL,
    ),
    "irs": MetricRow(
        call=lambda c, f, ct, ft: irs(c, f),
        permutation_invariant=ALL,
        # Per-latent IRS is scale-free but the average is weighted by each latent's spread.
        scale_invariant=("num_active_dims",),
    ),
    "unsupervised": MetricRow(
        call=lambda c, f, ct, ft: unsupervised(c),
        permutation_invariant=ALL,
        # Total correlation and pairwise MI do not depend on the units of each latent.
        scale_invariant=("gaussian_total_correlation", "mutual_info_score"),
    ),
}

# Registry entries scored elsewhere: sampling-level metrics and probes (their own test files; all of
# them also run through test_every_registered_metric_returns_declared_keys_within_bounds below).
NOT_IN_TABLE = {"beta_vae", "factor_vae", "downstream_task", "few_shot"}

# Small parameters under which every registered metric runs on a tiny grid in well under a second or two.
SMALL_PARAMS: dict[str, dict[str, Any]] = {
    "beta_vae": {"batch_size": 8, "n_train": 60, "n_eval": 30},
    "factor_vae": {"batch_size": 8, "n_train": 60, "n_eval": 30, "n_variance_estimate": 200},
    "mig": {"n_train": 300},
    "dci": {"n_train": 200, "n_test": 100},
    "sap": {"n_train": 200, "n_test": 100},
    "modularity_explicitness": {"n_train": 200, "n_test": 100},
    "irs": {"n_train": 300},
    "unsupervised": {"n_train": 300},
    "downstream_task": {"n_train_sizes": [10, 60], "n_test": 60, "predictors": ["logistic_regression_cv", "gradient_boosting"]},
    "few_shot": {"shots": [1, "all"], "n_draws": 2, "n_pool": 120, "n_test": 60, "continuous_factors": [2]},
}


def _small(seed: int = 3, n: int = 600):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, (3, 5, 4), size=(2 * n, 3))
    codes = np.concatenate(
        [factors / (3.0, 5.0, 4.0) + 0.1 * rng.standard_normal((2 * n, 3)), rng.standard_normal((2 * n, 2))], axis=1
    )
    return codes[:n], factors[:n], codes[n:], factors[n:]


@st.composite
def coded_factors(draw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test ``(codes, factors)``: 1-3 factors with 2-5 values, 2-5 latents mixing them plus noise."""
    n = draw(st.integers(60, 160))
    sizes = np.asarray(draw(st.lists(st.integers(2, 5), min_size=1, max_size=3)))
    n_latents = draw(st.integers(2, 5))
    noise = draw(st.floats(0.05, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    factors = rng.integers(0, sizes, size=(2 * n, sizes.size))
    mixing = rng.normal(size=(sizes.size, n_latents))
    codes = (factors / sizes) @ mixing + noise * rng.standard_normal((2 * n, n_latents))
    return codes[:n], factors[:n], codes[n:], factors[n:]


def _call(row: MetricRow, *arrays) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        return row.call(*arrays)


def test_every_registered_metric_is_in_the_table_or_excused():
    registered = {row.registry_name or name for name, row in METRIC_TABLE.items()}
    assert registered | NOT_IN_TABLE == set(METRIC_NAMES)
    assert not registered & NOT_IN_TABLE
    assert set(SMALL_PARAMS) == set(METRIC_NAMES)


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_spec_defaults_follow_dlib_and_keys_match(name):
    registry_name = METRIC_TABLE[name].registry_name or name
    spec = get_metric(registry_name)
    assert spec.name == registry_name
    assert spec.defaults["n_train"] == 10_000
    scores = _call(METRIC_TABLE[name], *_small())
    assert set(scores) == {declared.key for declared in spec.scores}
    assert all(type(value) is float for value in scores.values())


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_scores_within_bounds_and_finite(name):
    row = METRIC_TABLE[name]
    get_metric(row.registry_name or name).check_scores(_call(row, *_small()))


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
@settings(max_examples=6)
@given(arrays=coded_factors())
def test_scores_within_declared_bounds_and_finite_on_drawn_codes(name, arrays):
    row = METRIC_TABLE[name]
    get_metric(row.registry_name or name).check_scores(_call(row, *arrays))


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_permuting_latents_changes_nothing(name):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = _small()
    order = np.random.default_rng(0).permutation(codes.shape[1])
    base = _call(row, codes, factors, codes_test, factors_test)
    permuted = _call(row, codes[:, order], factors, codes_test[:, order], factors_test)
    for key in row.keys(name, row.permutation_invariant):
        assert permuted[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
@settings(max_examples=6)
@given(arrays=coded_factors(), data=st.data())
def test_permuting_latents_changes_nothing_on_drawn_codes(name, arrays, data):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = arrays
    order = np.asarray(data.draw(st.permutations(range(codes.shape[1]))))
    base = _call(row, codes, factors, codes_test, factors_test)
    permuted = _call(row, codes[:, order], factors, codes_test[:, order], factors_test)
    for key in row.keys(name, row.permutation_invariant):
        assert permuted[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", sorted(n for n, row in METRIC_TABLE.items() if row.scale_invariant))
def test_positive_rescaling_of_a_latent(name):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = _small()
    scale = np.ones(codes.shape[1])
    scale[1] = 7.5
    base = _call(row, codes, factors, codes_test, factors_test)
    rescaled = _call(row, codes * scale, factors, codes_test * scale, factors_test)
    for key in row.keys(name, row.scale_invariant):
        assert rescaled[key] == pytest.approx(base[key], abs=1e-6), key


@pytest.mark.parametrize("name", sorted(n for n, row in METRIC_TABLE.items() if row.scale_invariant))
@settings(max_examples=6)
@given(arrays=coded_factors(), data=st.data())
def test_positive_rescaling_of_each_latent_on_drawn_codes(name, arrays, data):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = arrays
    scale = np.asarray(data.draw(st.lists(st.floats(0.2, 5.0), min_size=codes.shape[1], max_size=codes.shape[1])))
    base = _call(row, codes, factors, codes_test, factors_test)
    rescaled = _call(row, codes * scale, factors, codes_test * scale, factors_test)
    for key in row.keys(name, row.scale_invariant):
        assert rescaled[key] == pytest.approx(base[key], abs=1e-6), key


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
@pytest.mark.parametrize(
    "shape",
    [
        pytest.param((300, 1, 2), id="single-latent"),
        pytest.param((300, 2, 4), id="fewer-latents-than-factors"),
        pytest.param((120, 200, 2), id="many-latents-small-n"),
    ],
)
def test_shapes_give_finite_scores(name, shape):
    n, n_latents, n_factors = shape
    rng = np.random.default_rng(1)
    factors = rng.integers(0, 3, size=(2 * n, n_factors))
    codes = rng.standard_normal((2 * n, n_latents))
    codes[:, 0] += factors[:, 0]
    row = METRIC_TABLE[name]
    get_metric(row.registry_name or name).check_scores(_call(row, codes[:n], factors[:n], codes[n:], factors[n:]))


@pytest.mark.parametrize("name", [n for n in sorted(METRIC_TABLE) if n != "unsupervised"])
def test_factor_with_one_value_warns_and_stays_finite(name):
    codes, factors, codes_test, factors_test = _small()
    factors, factors_test = factors.copy(), factors_test.copy()
    factors[:, 1] = 2
    factors_test[:, 1] = 2
    with pytest.warns(DegenerateInputWarning):
        scores = METRIC_TABLE[name].call(codes, factors, codes_test, factors_test)
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_constant_codes_warn_and_stay_finite(name):
    codes, factors, codes_test, factors_test = _small()
    with pytest.warns(DegenerateInputWarning):
        scores = METRIC_TABLE[name].call(np.zeros_like(codes), factors, np.zeros_like(codes_test), factors_test)
    assert all(np.isfinite(v) for v in scores.values())


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_nan_codes_are_rejected_by_name(name):
    codes, factors, codes_test, factors_test = _small()
    codes = codes.copy()
    codes[3, 1] = np.nan
    with pytest.raises(ValueError, match="codes"):
        METRIC_TABLE[name].call(codes, factors, codes_test, factors_test)


@pytest.mark.parametrize("name", [n for n in sorted(METRIC_TABLE) if n != "unsupervised"])
def test_bad_factors_are_rejected_by_name(name):
    codes, factors, codes_test, factors_test = _small()
    with pytest.raises(ValueError, match="factors"):
        METRIC_TABLE[name].call(codes, factors + 0.5, codes_test, factors_test)
    with pytest.raises(ValueError, match="factors"):
        METRIC_TABLE[name].call(codes, factors[:-1], codes_test, factors_test)


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_backends_agree_with_numpy(name, backend):
    xp = pytest.importorskip(backend)
    row = METRIC_TABLE[name]
    arrays = _small(n=300)
    base = _call(row, *arrays)
    other = _call(row, *(xp.asarray(a) for a in arrays))
    for key in base:
        assert other[key] == pytest.approx(base[key], abs=row.backend_tolerance), key


# The host estimators by name, on codes of another namespace: the codes go to the host and every
# number is NumPy's.
HOST_ESTIMATORS = {
    "dci": lambda c, f, ct, ft: dci(c, f, ct, ft, estimator="numba"),
    "modularity_explicitness": lambda c, f, ct, ft: modularity_explicitness(c, f, ct, ft, solver="exact"),
}


@pytest.mark.parametrize("name", sorted(HOST_ESTIMATORS))
@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_host_estimators_by_name_agree_with_numpy_exactly(name, backend):
    xp = pytest.importorskip(backend)
    arrays = _small(n=300)
    base = _call(METRIC_TABLE[name], *arrays)
    other = _call(MetricRow(call=HOST_ESTIMATORS[name]), *(xp.asarray(a) for a in arrays))
    for key in base:
        assert other[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_every_registered_metric_returns_declared_keys_within_bounds(name):
    """Plan twice (same requests), score through the spec, and check every key against the declaration."""
    spec = get_metric(name)
    dataset = GridDataset((3, 4, 5))
    params = spec.resolve(SMALL_PARAMS[name])
    plan = spec.plan(dataset, np.random.default_rng(0), params)
    again = spec.plan(dataset, np.random.default_rng(0), params)
    for key, indices in plan.requests.items():
        np.testing.assert_array_equal(indices, again.requests[key])
    # Codes: the factors themselves, a little noise on them, plus a pure-noise latent.
    grid = np.stack(np.unravel_index(np.arange(60), dataset.factor_sizes), axis=1).astype(float)
    noise = np.random.default_rng(1)
    table = np.concatenate([grid + 0.1 * noise.standard_normal(grid.shape), noise.standard_normal((60, 1))], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        scored = spec.score(plan, plan_codes_from_table(plan, table), params)
    assert scored.scores
    spec.check_scores(scored.scores)
    assert (spec.plot is not None) == (name in ("dci", "downstream_task", "few_shot"))
