"""Property tests over the array-level metric registry (scikit-learn's ``test_common`` pattern).

``METRIC_TABLE`` lists each array-level metric once: how to call it on ``(codes, factors)`` and which
promises it makes (score bounds, invariance to permuting latents, to positive rescaling of a latent).
One generic test per property runs over every metric that makes the promise; a guard test keeps the
table in step with the registry. To add a metric, add a row.

``dlib_case`` builds the seeded inputs the dlib golden fixtures (``tests/fixtures/dlib_golden_*.json``)
were computed on; the per-metric test files import it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

from dbench.metrics import METRIC_MODULES, get_metric
from dbench.metrics._validation import DegenerateInputWarning
from dbench.metrics.dci import dci
from dbench.metrics.irs import irs
from dbench.metrics.mig import mig
from dbench.metrics.modularity import modularity_explicitness
from dbench.metrics.sap import sap
from dbench.metrics.unsupervised import unsupervised

GOLDEN_FACTOR_SIZES = (3, 6, 10, 8)
GOLDEN_CASES = ("ground_truth", "noisy_mixed", "constant_dim")


def dlib_case(name: str, seed: int = 20190601, n_train: int = 2000, n_test: int = 1000):
    """Seeded ``(codes_train, factors_train, codes_test, factors_test)`` for a golden case.

    ``ground_truth``: the factor indices themselves are the codes. ``noisy_mixed``: three latents follow
    one factor each with noise, one mixes two factors, two are pure noise. ``constant_dim``: the noisy
    codes with one latent replaced by a constant.
    """
    rng = np.random.default_rng(seed)
    sizes = np.asarray(GOLDEN_FACTOR_SIZES)
    factors = rng.integers(0, sizes, size=(n_train + n_test, sizes.size))
    scaled = factors / sizes
    if name == "ground_truth":
        codes = factors.astype(np.float64)
    elif name in ("noisy_mixed", "constant_dim"):
        n = factors.shape[0]
        codes = np.stack(
            [
                scaled[:, 0] + 0.05 * rng.standard_normal(n),
                scaled[:, 1] + 0.10 * rng.standard_normal(n),
                2.0 * scaled[:, 2] + 0.20 * rng.standard_normal(n),
                scaled[:, 2] - scaled[:, 3] + 0.10 * rng.standard_normal(n),
                rng.standard_normal(n),
                rng.uniform(-1.0, 1.0, n),
            ],
            axis=1,
        )
        if name == "constant_dim":
            codes[:, 4] = 0.75
    else:
        raise ValueError(f"unknown golden case {name!r}")
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


@dataclass(frozen=True)
class MetricRow:
    """How to call one metric on ``(codes_train, factors_train, codes_test, factors_test)`` and what it promises."""

    call: Callable[[Any, Any, Any, Any], dict[str, float]]
    bounds: dict[str, tuple[float, float]]
    permutation_invariant: tuple[str, ...] = ()
    scale_invariant: tuple[str, ...] = ()
    registry_name: str | None = None  # a variant of a registered metric (an option set differently)


METRIC_TABLE: dict[str, MetricRow] = {
    "mig": MetricRow(
        call=lambda c, f, ct, ft: mig(c, f),
        bounds={"mig": (0.0, 1.0)},
        permutation_invariant=("mig",),
        scale_invariant=("mig",),
    ),
    "sap": MetricRow(
        call=lambda c, f, ct, ft: sap(c, f, ct, ft),
        bounds={"sap": (0.0, 1.0)},
        permutation_invariant=("sap",),
        # dlib's SVM penalty is not scale-free; sap(..., standardize=True) is (tests/test_metrics_sap.py).
    ),
    "sap_standardized": MetricRow(
        call=lambda c, f, ct, ft: sap(c, f, ct, ft, standardize=True),
        bounds={"sap": (0.0, 1.0)},
        permutation_invariant=("sap",),
        scale_invariant=("sap",),
        registry_name="sap",
    ),
    "modularity_explicitness": MetricRow(
        call=lambda c, f, ct, ft: modularity_explicitness(c, f, ct, ft),
        bounds={"modularity": (0.0, 1.0), "explicitness_train": (0.0, 1.0), "explicitness_test": (0.0, 1.0)},
        # Explicitness standardises the codes first, so rescaling a latent changes nothing either.
        permutation_invariant=("modularity", "explicitness_train", "explicitness_test"),
        scale_invariant=("modularity", "explicitness_train", "explicitness_test"),
    ),
    "dci": MetricRow(
        call=lambda c, f, ct, ft: dci(c, f, ct, ft),
        bounds={
            "disentanglement": (0.0, 1.0),
            "completeness": (0.0, 1.0),
            "informativeness_train": (0.0, 1.0),
            "informativeness_test": (0.0, 1.0),
        },
        # Trees depend only on the order of each latent's values; the importance matrix's rows move
        # with the latents, and D and C are symmetric in them.
        permutation_invariant=("disentanglement", "completeness", "informativeness_train", "informativeness_test"),
        scale_invariant=("disentanglement", "completeness", "informativeness_train", "informativeness_test"),
    ),
    "irs": MetricRow(
        call=lambda c, f, ct, ft: irs(c, f),
        bounds={"irs": (-np.inf, 1.0), "num_active_dims": (0.0, np.inf)},
        permutation_invariant=("irs", "num_active_dims"),
        # Per-latent IRS is scale-free but the average is weighted by each latent's spread.
        scale_invariant=("num_active_dims",),
    ),
    "unsupervised": MetricRow(
        call=lambda c, f, ct, ft: unsupervised(c),
        bounds={
            "gaussian_total_correlation": (0.0, np.inf),
            "gaussian_wasserstein_correlation": (0.0, np.inf),
            "gaussian_wasserstein_correlation_norm": (0.0, 1.0),
            "mutual_info_score": (0.0, np.inf),
        },
        permutation_invariant=(
            "gaussian_total_correlation",
            "gaussian_wasserstein_correlation",
            "gaussian_wasserstein_correlation_norm",
            "mutual_info_score",
        ),
        # Total correlation and pairwise MI do not depend on the units of each latent.
        scale_invariant=("gaussian_total_correlation", "mutual_info_score"),
    ),
}

# Registry entries scored elsewhere: sampling-level metrics, probes, and array-level metrics whose
# engineers have not added their row yet (add the row and remove the name here).
NOT_IN_TABLE = {"beta_vae", "factor_vae", "downstream_task", "few_shot"}


def _small(seed: int = 3, n: int = 600):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, (3, 5, 4), size=(2 * n, 3))
    codes = np.concatenate(
        [factors / (3.0, 5.0, 4.0) + 0.1 * rng.standard_normal((2 * n, 3)), rng.standard_normal((2 * n, 2))], axis=1
    )
    return codes[:n], factors[:n], codes[n:], factors[n:]


def _call(row: MetricRow, *arrays) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        return row.call(*arrays)


def test_every_registered_metric_is_in_the_table_or_excused():
    registered = {row.registry_name or name for name, row in METRIC_TABLE.items()}
    assert registered | NOT_IN_TABLE == set(METRIC_MODULES)
    assert not registered & NOT_IN_TABLE


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_spec_defaults_follow_dlib_and_keys_match(name):
    registry_name = METRIC_TABLE[name].registry_name or name
    spec = get_metric(registry_name)
    assert spec.name == registry_name
    assert spec.defaults["n_train"] == 10_000
    scores = _call(METRIC_TABLE[name], *_small())
    assert set(scores) == set(METRIC_TABLE[name].bounds)
    assert all(type(value) is float for value in scores.values())


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_scores_within_bounds_and_finite(name):
    row = METRIC_TABLE[name]
    scores = _call(row, *_small())
    for key, (low, high) in row.bounds.items():
        assert np.isfinite(scores[key]), key
        assert low - 1e-9 <= scores[key] <= high + 1e-9, (key, scores[key])


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_permuting_latents_changes_nothing(name):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = _small()
    order = np.random.default_rng(0).permutation(codes.shape[1])
    base = _call(row, codes, factors, codes_test, factors_test)
    permuted = _call(row, codes[:, order], factors, codes_test[:, order], factors_test)
    for key in row.permutation_invariant:
        assert permuted[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", sorted(METRIC_TABLE))
def test_positive_rescaling_of_a_latent(name):
    row = METRIC_TABLE[name]
    codes, factors, codes_test, factors_test = _small()
    scale = np.ones(codes.shape[1])
    scale[1] = 7.5
    base = _call(row, codes, factors, codes_test, factors_test)
    rescaled = _call(row, codes * scale, factors, codes_test * scale, factors_test)
    for key in row.scale_invariant:
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
    scores = _call(row, codes[:n], factors[:n], codes[n:], factors[n:])
    for key, (low, high) in row.bounds.items():
        assert np.isfinite(scores[key]), key
        assert low - 1e-9 <= scores[key] <= high + 1e-9, (key, scores[key])


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
        assert other[key] == pytest.approx(base[key], abs=1e-9), key


@pytest.mark.parametrize("name", sorted(n for n, row in METRIC_TABLE.items() if row.registry_name is None))
def test_spec_plan_and_score_on_a_toy_dataset(name):
    name = METRIC_TABLE[name].registry_name or name

    class Toy:
        name = "toy"
        factor_names = ("a", "b")
        factor_sizes = (3, 4)
        observation_shape = (1, 2, 2)

    spec = get_metric(name)
    params = spec.resolve({key: 200 for key in ("n_train", "n_test") if key in spec.defaults})
    plan = spec.plan(Toy(), np.random.default_rng(0), params)
    again = spec.plan(Toy(), np.random.default_rng(0), params)
    for key, indices in plan.requests.items():
        np.testing.assert_array_equal(indices, again.requests[key])
    # Codes: the factors themselves plus a noise latent (flat index -> factor vector, row-major grid).
    noise = np.random.default_rng(1)
    codes = {}
    for key, indices in plan.requests.items():
        grid = np.stack(np.unravel_index(indices, Toy.factor_sizes), axis=-1).astype(float)
        codes[key] = np.concatenate([grid, noise.standard_normal((indices.size, 1))], axis=1)
    scores = spec.score(plan, codes, params)
    assert set(scores) == set(METRIC_TABLE[name].bounds)
