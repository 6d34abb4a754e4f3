"""DCI speed: the compiled boosted trees vs scikit-learn at dlib's default sizes, and 10x sizes.

Run with ``pytest tests/benchmarks/test_bench_dci.py --benchmark-only``. Default sizes: 10,000 train,
5,000 test, 10 latents, dSprites' 5 factors (3, 6, 40, 32, 32 values).
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.metrics._dci import dci

_SIZES = np.array([3, 6, 40, 32, 32])


def _codes(n: int, n_latents: int, seed: int):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, _SIZES, size=(n, _SIZES.size))
    signal = np.zeros((n, n_latents))
    signal[:, : _SIZES.size] = factors / _SIZES
    codes = signal + 0.3 * rng.normal(size=(n, n_latents)) @ rng.normal(size=(n_latents, n_latents)) / np.sqrt(n_latents)
    return codes, factors


def _inputs(n_train: int, n_test: int, n_latents: int):
    return (*_codes(n_train, n_latents, 0), *_codes(n_test, n_latents, 1))


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    dci(*_inputs(200, 100, 10))  # numba compilation (cached on disk after the first run)


@pytest.mark.parametrize("estimator", ["fast", "sklearn"])
def test_bench_dci_default_sizes(benchmark, estimator):
    args = _inputs(10000, 5000, 10)
    scores = benchmark.pedantic(dci, args=args, kwargs={"estimator": estimator}, rounds=1, iterations=1)
    assert 0.0 <= scores["disentanglement"] <= 1.0


def test_bench_dci_fast_10x_samples_and_latents(benchmark):
    args = _inputs(100000, 50000, 100)
    scores = benchmark.pedantic(dci, args=args, rounds=1, iterations=1)
    assert 0.0 <= scores["disentanglement"] <= 1.0


@pytest.mark.parametrize(
    "backend, estimator",
    [("numpy", "numba"), ("numpy", "array"), ("torch", "array")],
    ids=["compiled-trees", "array-trees-numpy", "array-trees-torch-cpu"],
)
def test_bench_dci_trees_on_cpu_backends(benchmark, backend, estimator):
    """The array-API trees (issue 15, for device codes) against the compiled trees on a CPU, at dlib's sizes.

    A CPU slowdown of the array trees is expected: they are written for a GPU's parallel scans."""
    args = _inputs(10000, 5000, 10)
    if backend == "torch":
        torch = pytest.importorskip("torch")
        args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in args)
    benchmark.group = "DCI trees on a CPU, dlib's sizes"
    scores = benchmark.pedantic(dci, args=args, kwargs={"estimator": estimator}, rounds=1, iterations=1)
    assert 0.0 <= scores["disentanglement"] <= 1.0
