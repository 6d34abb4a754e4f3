"""The compiled boosted trees reproduce scikit-learn's GradientBoostingClassifier() on small problems."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.estimators import boosted_trees
from dbench.estimators.boosted_trees._gradients import initial_raw
from dbench.estimators.boosted_trees._split_scan import best_cuts4, scan_buffers

pytestmark = pytest.mark.skipif(not boosted_trees.numba_available(), reason="numba not installed")
GradientBoostingClassifier = pytest.importorskip("sklearn.ensemble").GradientBoostingClassifier


def _problem(n_classes: int, integer_codes: bool, seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    if integer_codes:
        x = np.stack([y, rng.integers(0, 4, n), y + rng.integers(0, 2, n), rng.integers(0, 7, n)], 1) * 1.0
    else:
        x = rng.normal(size=(n, 4))
        x[:, 0] += y  # one informative feature
    return x, y


@pytest.mark.parametrize("n_classes, integer_codes", [(2, False), (3, False), (4, True)])
def test_same_trees_predictions_and_importances_as_sklearn(n_classes, integer_codes):
    x, y = _problem(n_classes, integer_codes)
    x_test, _ = _problem(n_classes, integer_codes, seed=1, n=200)
    fast = boosted_trees.fit_boosted_trees(x, y, n_stages=30)
    reference = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(x, y)
    # Same partitions of the training set, hence the same raw predictions there...
    np.testing.assert_allclose(fast.train_raw, reference.decision_function(x).reshape(len(x), -1), atol=1e-9)
    np.testing.assert_allclose(fast.decision_function(x), fast.train_raw, atol=1e-12)
    np.testing.assert_array_equal(fast.predict_train(), reference.predict(x))
    # ...but where features tie on the training set, new points may fall on either side (as they
    # do between two sklearn seeds).
    assert np.mean(fast.predict(x_test) == reference.predict(x_test)) > 0.95
    # Ties between features go to a random one in sklearn and are shared here: compare with the
    # mean over sklearn seeds, within sklearn's own seed-to-seed spread.
    seeds = [GradientBoostingClassifier(n_estimators=30, random_state=s).fit(x, y).feature_importances_ for s in range(4)]
    spread = np.ptp(seeds, axis=0).max()
    np.testing.assert_allclose(fast.feature_importances, np.mean(seeds, axis=0), atol=max(2 * spread, 1e-9))


def test_initial_raw_prediction_is_the_prior_log_odds():
    y = np.array([0, 0, 0, 1])
    assert initial_raw(y, 2)[0] == pytest.approx(np.log(1 / 3))
    raw = initial_raw(np.array([0, 1, 1, 2, 2, 2]), 3)
    assert np.exp(raw) / np.exp(raw).sum() == pytest.approx([1 / 6, 2 / 6, 3 / 6])


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="2 classes"):
        boosted_trees.fit_boosted_trees(np.zeros((5, 2)), np.ones(5))


def test_constant_features_give_lone_leaves_and_zero_importances():
    y = np.array([0, 1] * 10)
    model = boosted_trees.fit_boosted_trees(np.ones((20, 3)), y, n_stages=5)
    assert np.all(model.feature == -1)
    np.testing.assert_array_equal(model.feature_importances, 0.0)


def test_training_raw_scores_equal_prediction_and_do_not_depend_on_threads():
    # DCI reads training accuracy off train_raw, so it must be exactly predict's raw score; the trees
    # of a stage are grown in parallel, which must not change any number.
    numba = pytest.importorskip("numba")
    x, y = _problem(5, False, seed=3, n=400)
    model = boosted_trees.fit_boosted_trees(x, y, n_stages=15)
    np.testing.assert_array_equal(model.decision_function(x), model.train_raw)
    np.testing.assert_array_equal(model.predict(x), model.predict_train())
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        serial = boosted_trees.fit_boosted_trees(x, y, n_stages=15)
    finally:
        numba.set_num_threads(threads)
    for name in ("feature", "threshold", "value", "train_raw", "feature_importances"):
        np.testing.assert_array_equal(getattr(serial, name), getattr(model, name))


@pytest.mark.parametrize("seed", [5, 14, 23, 26])
def test_permuting_or_rescaling_features_changes_no_bit(seed):
    # Small multi-class problems with many near-ties (the seeds where the node sums once followed
    # the first column's order): the fit is a function of the data, not of the column order.
    pytest.importorskip("numba")
    rng = np.random.default_rng(seed)
    n, n_features = 70, 4
    y = rng.integers(0, 4, size=n)
    x = np.stack([y / 4 * rng.normal() + 0.3 * rng.standard_normal(n) for _ in range(n_features)], axis=1)
    x[:, 2] = np.round(x[:, 2], 1)  # ties inside a feature too
    base = boosted_trees.fit_boosted_trees(x, y, n_stages=20)
    perm = rng.permutation(n_features)
    permuted = boosted_trees.fit_boosted_trees(x[:, perm], y, n_stages=20)
    mapped = np.where(permuted.feature >= 0, perm[np.maximum(permuted.feature, 0)], -1)
    np.testing.assert_array_equal(mapped, base.feature)
    for name in ("threshold", "value", "train_raw"):
        np.testing.assert_array_equal(getattr(permuted, name), getattr(base, name))
    np.testing.assert_array_equal(permuted.feature_importances, base.feature_importances[perm])
    rescaled = boosted_trees.fit_boosted_trees(np.exp(x) * 3.0 + 1.0, y, n_stages=20)
    np.testing.assert_array_equal(rescaled.feature, base.feature)
    np.testing.assert_array_equal(rescaled.train_raw, base.train_raw)
    np.testing.assert_array_equal(rescaled.feature_importances, base.feature_importances)


def _plain_scan(rows, xs, g, start, end, total, inverse):
    """The best cut of one sorted list by a plain scan: every proxy, first strict maximum."""
    rows = rows[start:end]
    xs = xs[rows]
    left = np.cumsum(g[rows])[:-1]  # sequential, like the compiled running sum
    n_left = np.arange(1, end - start)
    right = total - left
    proxy = left * left * inverse[n_left] + right * right * inverse[end - start - n_left]
    proxy[~(xs[1:] > xs[:-1] + np.float32(1e-7))] = -np.inf
    if not np.isfinite(proxy).any():
        return -np.inf, 0
    best = int(np.argmax(proxy))  # first maximum
    return proxy[best], start + best + 1


@pytest.mark.parametrize("seed", range(12))
def test_pruned_split_scan_finds_the_plain_scans_best_cut(seed):
    # The scan bounds blocks of cuts and skips those that cannot win; the cut it returns must be
    # exactly the plain scan's, including on flat gradients (many near-equal proxies), discrete
    # values (few valid cuts), a node in the middle of the lists and tiny nodes.
    rng = np.random.default_rng(seed)
    n, n_features = int(rng.choice([5, 40, 333, 3000])), 4
    x = rng.normal(size=(n_features, n)).astype(np.float32)
    if seed % 3 == 1:
        x = np.round(x * 2).astype(np.float32)  # ties: cuts only between distinct values
    g = rng.normal(size=n) * (1e-3 if seed % 4 == 2 else 1.0) - 0.02  # flat and shifted for some seeds
    if seed % 4 == 3:
        g = np.where(rng.random(n) < 0.03, 0.97, -0.03)  # one rare class's gradient, as in DCI
    lists = np.argsort(x, axis=1, kind="stable").astype(np.uint32)
    inverse = np.concatenate([[0.0], 1.0 / np.arange(1, n + 1)])
    start, end = (0, n) if seed % 2 == 0 else (n // 5, n - n // 7)
    total = float(np.cumsum(g[lists[0, start:end]])[-1])
    scan = scan_buffers(n)
    scan.features[:] = [0, 1, 2, 3]
    best_cuts4(lists, x, g, start, end, total, inverse, scan)
    for d in range(n_features):
        expected_proxy, expected_position = _plain_scan(lists[d], x[d], g, start, end, total, inverse)
        assert (scan.proxy[d], scan.position[d]) == (expected_proxy, expected_position)
