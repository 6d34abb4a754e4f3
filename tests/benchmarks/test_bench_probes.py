"""Speed of the logistic-regression downstream task (run with ``pytest tests/benchmarks --benchmark-only``).

Size: disentanglement_lib's defaults (training sizes 10, 100, 1000, 10 000; 5000 test codes; 10
latents; the 5 dSprites factors with 3, 6, 40, 32 and 32 values), on precomputed random codes.

* ``downstream-lr`` — dbench's default, ``logistic_solver="exact"`` (scikit-learn's procedure and
  optimiser on a vectorised objective, :mod:`dbench.estimators.exact_logistic`);
* ``downstream-lr-batched`` — the array-API batched solver (``logistic_solver="batched"``);
* ``downstream-lr-sklearn`` — disentanglement_lib's loop (one ``LogisticRegressionCV(Cs=10,
  cv=KFold(5))`` per factor and size) on the same data. It also checks that the exact path gives the
  same test accuracies within 0.02 (identical except where 100-iteration fits stop far from the optimum);
  ``downstream-lr-batched`` checks the batched one within 0.02.

Timings are noisy on a shared machine: compare them within one run (``docs/probes.md``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dbench.probes.downstream import downstream_accuracies

DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)
TRAIN_SIZES = (10, 100, 1000, 10000)
N_TEST = 5000


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = np.asarray(DSPRITES_FACTOR_SIZES)
    sets = []
    for n in TRAIN_SIZES:
        ytr, yte = rng.integers(0, sizes, size=(n, sizes.size)), rng.integers(0, sizes, size=(N_TEST, sizes.size))
        # Codes weakly informative about the factors (a noisy linear read-out), so accuracies sit
        # between chance and one and the regularisation path matters.
        mix = rng.normal(size=(sizes.size, 10))
        xtr = (ytr / sizes) @ mix + rng.normal(size=(n, 10))
        xte = (yte / sizes) @ mix + rng.normal(size=(N_TEST, 10))
        sets.append((n, xtr, ytr, xte, yte))
    return sets


def _dbench(sets, logistic_solver: str = "exact"):
    return {
        n: downstream_accuracies(xtr, ytr, xte, yte, logistic_solver=logistic_solver)[1]
        for n, xtr, ytr, xte, yte in sets
    }


def _sklearn(sets):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, xtr, ytr, xte, yte in sets:
            acc = []
            for i in range(ytr.shape[1]):
                model = LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)).fit(xtr, ytr[:, i])
                acc.append(np.mean(model.predict(xte) == yte[:, i]))
            out[n] = np.array(acc)
    return out


@pytest.fixture(scope="module")
def sets():
    return _data()


def test_downstream_lr(benchmark, sets):
    result = benchmark.pedantic(_dbench, args=(sets,), rounds=1, iterations=1)
    assert set(result) == set(TRAIN_SIZES)


def test_downstream_lr_batched(benchmark, sets):
    batched = benchmark.pedantic(_dbench, args=(sets, "batched"), rounds=1, iterations=1)
    exact = _dbench(sets)  # scikit-learn's accuracies (test_downstream_lr_sklearn)
    for n in TRAIN_SIZES:
        np.testing.assert_allclose(batched[n], exact[n], atol=0.02)


def test_downstream_lr_sklearn(benchmark, sets):
    reference = benchmark.pedantic(_sklearn, args=(sets,), rounds=1, iterations=1)
    exact = _dbench(sets)
    for n in TRAIN_SIZES:
        np.testing.assert_allclose(exact[n], reference[n], atol=0.02)
