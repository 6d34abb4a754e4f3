"""The array-API boosted trees reproduce the compiled trees (and so scikit-learn's GradientBoostingClassifier()).

* given the compiled trees' ``exp`` (libm's) they are the same trees bit for bit: the algorithm is
  the same, sum for sum;
* with the backend's own ``exp`` (NumPy's SIMD one differs from libm's by an ulp on ~5% of inputs)
  a split can differ only where it changes no output: in nodes whose samples all carry the same
  gradient (every cut then has the same improvement, and such a node's rounding-level impurity may
  fall on either side of eps). On the DCI fixtures: importances within 1e-12, predictions and
  DCI identical, dlib's golden values within 0.02, on NumPy, array_api_strict and torch (CPU);
* several targets fitted in one pass, and any chunking of the work, give the same numbers.

GPU runs of the same comparisons: tests/test_gpu_estimators.py; measured rates: docs/gpu.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dci_cases import golden_inputs
from estimator_agreement import converter, tree_agreement

from dbench.estimators import boosted_trees
from dbench.estimators.array_trees import fit_array_trees, fit_array_trees_multi

pytestmark = pytest.mark.skipif(not boosted_trees.numba_available(), reason="the comparison needs the compiled trees (numba)")


def _problem(n_classes: int, kind: str, seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    if kind == "integer":  # many exact ties, between values and between features
        x = np.stack([y, rng.integers(0, 4, n), y + rng.integers(0, 2, n), rng.integers(0, 7, n)], 1) * 1.0
    elif kind == "constant_feature":
        x = np.concatenate([rng.normal(size=(n, 2)) + y[:, None], np.full((n, 1), 0.5)], axis=1)
    else:
        x = rng.normal(size=(n, 4))
        x[:, 0] += y
    return x, y


_PROBLEMS = [(2, "normal"), (3, "normal"), (4, "integer"), (5, "constant_feature")]


class _LibmExp:
    """The NumPy namespace with libm's ``exp`` (the compiled kernels' ``np.exp``) in place of NumPy's."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        return getattr(self._xp, name)

    def exp(self, x):
        return np.vectorize(math.exp, otypes=[np.float64])(x)


@pytest.mark.parametrize("n_classes, kind", _PROBLEMS)
def test_same_trees_bit_for_bit_as_the_compiled_trees_given_their_exp(monkeypatch, n_classes, kind):
    import dbench.estimators.array_trees._fit as fit_module

    gradients = fit_module.negative_gradients
    monkeypatch.setattr(fit_module, "negative_gradients", lambda xp, raw, targets: gradients(_LibmExp(xp), raw, targets))
    x, y = _problem(n_classes, kind)
    x_test, _ = _problem(n_classes, kind, seed=1, n=150)
    compiled = boosted_trees.fit_boosted_trees(x, y, n_stages=25)
    array = fit_array_trees(x, y, n_stages=25)
    for name in ("feature", "threshold", "value", "feature_importances", "train_raw", "init_raw", "classes"):
        np.testing.assert_array_equal(getattr(array, name), getattr(compiled, name), err_msg=name)
    np.testing.assert_array_equal(array.decision_function(x_test), compiled.decision_function(x_test))
    np.testing.assert_array_equal(array.predict(x_test), compiled.predict(x_test))


@pytest.mark.parametrize("n_classes, kind", _PROBLEMS)
def test_same_predictions_and_importances_as_the_compiled_trees(n_classes, kind):
    x, y = _problem(n_classes, kind)
    x_test, _ = _problem(n_classes, kind, seed=1, n=150)
    compiled = boosted_trees.fit_boosted_trees(x, y, n_stages=25)
    array = fit_array_trees(x, y, n_stages=25)
    np.testing.assert_allclose(array.feature_importances, compiled.feature_importances, rtol=0, atol=1e-12)
    np.testing.assert_allclose(array.train_raw, compiled.train_raw, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(array.predict(x_test), compiled.predict(x_test))
    np.testing.assert_array_equal(array.predict_train(), compiled.predict_train())
    np.testing.assert_allclose(array.decision_function(x), array.train_raw, rtol=0, atol=1e-12)


def test_several_targets_in_one_pass_equal_one_fit_each():
    x, y3 = _problem(3, "normal", seed=4)
    rng = np.random.default_rng(5)
    labels = np.stack([y3, rng.integers(0, 2, x.shape[0]), (x[:, 1] > 0).astype(int) + 2 * (x[:, 2] > 0.5)], axis=1)
    together = fit_array_trees_multi(x, labels, n_stages=15)
    for j, model in enumerate(together):
        alone = fit_array_trees(x, labels[:, j], n_stages=15)
        for name in ("feature", "threshold", "value", "feature_importances", "train_raw", "classes"):
            np.testing.assert_array_equal(getattr(model, name), getattr(alone, name), err_msg=f"target {j}: {name}")


def test_chunking_of_the_work_changes_no_number():
    x, y = _problem(4, "integer", seed=2)
    default = fit_array_trees(x, y, n_stages=10)
    tiny_chunks = fit_array_trees(x, y, n_stages=10, max_elements=1000)  # one lane per chunk
    for name in ("feature", "threshold", "value", "feature_importances", "train_raw"):
        np.testing.assert_array_equal(getattr(tiny_chunks, name), getattr(default, name), err_msg=name)
    tiny_chunks.max_elements = 50  # prediction in one-stage chunks
    np.testing.assert_array_equal(tiny_chunks.decision_function(x), default.decision_function(x))


@pytest.mark.parametrize("backend", ["array_api_strict", "torch"])
def test_other_namespaces_give_numpys_trees(backend):
    convert = converter(backend)
    if convert is None:
        pytest.skip(f"{backend} is not installed")
    from dbench._array import to_numpy

    x, y = _problem(3, "integer", seed=7)
    on_numpy = fit_array_trees(x, y, n_stages=15)
    other = fit_array_trees(convert(x), convert(y), n_stages=15)
    np.testing.assert_array_equal(other.feature, on_numpy.feature)
    np.testing.assert_array_equal(other.threshold, on_numpy.threshold)
    np.testing.assert_allclose(other.value, on_numpy.value, rtol=0, atol=1e-12)
    np.testing.assert_allclose(other.feature_importances, on_numpy.feature_importances, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(to_numpy(other.predict(convert(x))), on_numpy.predict(x))
    assert type(other.predict(convert(x))).__module__.split(".")[0] == type(convert(x)).__module__.split(".")[0]


def test_constant_features_give_lone_leaves_and_zero_importances():
    y = np.array([0, 1] * 10)
    model = fit_array_trees(np.ones((20, 3)), y, n_stages=5)
    assert np.all(model.feature == -1)
    np.testing.assert_array_equal(model.feature_importances, 0.0)
    compiled = boosted_trees.fit_boosted_trees(np.ones((20, 3)), y, n_stages=5)
    np.testing.assert_array_equal(model.predict_train(), compiled.predict_train())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 classes"):
        fit_array_trees(np.zeros((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="2-D"):
        fit_array_trees(np.zeros(5), np.arange(5) % 2)
    with pytest.raises(ValueError, match="1-D"):
        fit_array_trees(np.zeros((6, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match="n_samples = 6"):
        fit_array_trees_multi(np.zeros((6, 2)), np.zeros((5, 2)))


# The DCI fixtures: each fit is a whole DCI's worth of trees, so the slowest tests of this file.
_FIXTURE_RUNS = [("numpy", case) for case in ("ground_truth", "noisy", "mixed", "noise")] + [
    ("array_api_strict", "noisy"),
    ("torch", "noisy"),
    ("torch", "mixed"),
]
_REPORTS: dict[tuple[str, str], dict] = {}


def _report(backend: str, case: str) -> dict:
    if (backend, case) not in _REPORTS:
        convert = converter(backend)
        if convert is None:
            pytest.skip(f"{backend} is not installed")
        _REPORTS[(backend, case)] = tree_agreement(golden_inputs(case), convert, golden=case)
    return _REPORTS[(backend, case)]


@pytest.mark.slow
@pytest.mark.parametrize("backend, case", _FIXTURE_RUNS)
def test_dci_fixtures_give_the_compiled_trees_importances_and_predictions(backend, case):
    report = _report(backend, case)
    # Splits may differ only where no output changes (nodes of equal gradients); measured: 5 of the
    # 2,700 trees of the 'noisy' case, none elsewhere.
    assert report["trees_with_different_outputs"] == 0
    for factor in report["factors"]:
        assert factor["importance_max_abs_diff"] <= 1e-12
        assert factor["train_predictions_differing"] == 0 and factor["test_predictions_differing"] == 0
    assert report["dci_max_abs_diff"] <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("backend, case", _FIXTURE_RUNS)
def test_dci_fixtures_match_disentanglement_lib_within_0_02(backend, case):
    assert _report(backend, case)["dlib_max_abs_diff"] <= 0.02
