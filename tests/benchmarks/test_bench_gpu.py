"""GPU speed of the headline metrics: CuPy and torch-CUDA against NumPy, in one run (skipped without a GPU).

Every headline metric (the beta-VAE score, FactorVAE, MIG, DCI, SAP, and explicitness, whose logistic
fits also moved to the device) is timed on ``numpy``, ``cupy`` and ``torch-cuda`` at
disentanglement_lib's published sizes and at ten times the samples and latents:

* published: 10,000 training / 5,000 test points, 10 latents, batches of 64 pairs (beta-VAE,
  FactorVAE), the five dSprites factors with 3, 6, 40, 32 and 32 values;
* 10x: 100,000 / 50,000 points and 100 latents.

The timed call is the metric's ``score`` on codes already on the backend (encoding excluded, as the
pipeline encodes once); its scores are Python floats, so the device work is finished when it returns.
A small warm-up call per (metric, backend) runs first (CUDA context, CuPy's kernel compilation).
Run: ``pytest tests/benchmarks/test_bench_gpu.py --benchmark-only`` (``benchmarks/gpu_check.sh`` does,
and writes the timings into its JSON). Without a CUDA GPU the whole module is skipped; the NumPy rows
are the baseline of the same run.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the backend helpers

from estimator_agreement import GPU_BACKENDS, converter

from dbench.metrics import get_metric
from dbench.metrics._spec import Plan

if not any(converter(name) is not None for name in GPU_BACKENDS):
    pytest.skip("no CUDA GPU with CuPy or torch here: the GPU benchmarks need one", allow_module_level=True)

FACTOR_SIZES = np.array([3, 6, 40, 32, 32])
SIZES = {
    "published": {"n_train": 10_000, "n_test": 5_000, "n_latents": 10, "batch_size": 64},
    "10x": {"n_train": 100_000, "n_test": 50_000, "n_latents": 100, "batch_size": 64},
}
METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity_explicitness")
BACKENDS = ("numpy",) + GPU_BACKENDS
_TINY = {"n_train": 300, "n_test": 200, "n_latents": 6, "batch_size": 8}


def _paired_codes(
    rng: np.random.Generator, n_points: int, batch: int, n_latents: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """beta-VAE pairs: latent ``k`` follows factor ``k``; in each point's pairs the fixed factor's latent agrees."""
    labels = rng.integers(0, FACTOR_SIZES.size, n_points)
    a = rng.standard_normal((n_points, batch, n_latents), dtype=np.float32)
    b = rng.standard_normal((n_points, batch, n_latents), dtype=np.float32)
    rows = np.arange(n_points)
    b[rows, :, labels] = a[rows, :, labels] + 0.1 * rng.standard_normal((n_points, batch), dtype=np.float32)
    return a, b, labels


def _vote_codes(rng: np.random.Generator, n_points: int, batch: int, n_latents: int) -> tuple[np.ndarray, np.ndarray]:
    """FactorVAE batches: the fixed factor's latent barely varies within its batch."""
    labels = rng.integers(0, FACTOR_SIZES.size, n_points)
    codes = rng.standard_normal((n_points, batch, n_latents), dtype=np.float32)
    rows = np.arange(n_points)
    codes[rows, :, labels] = 0.05 * codes[rows, :, labels] + rng.standard_normal((n_points, 1), dtype=np.float32)
    return codes, labels


def _factor_codes(rng: np.random.Generator, n: int, n_latents: int) -> tuple[np.ndarray, np.ndarray]:
    """i.i.d. (code, factor) pairs: noisy, partly mixed codes of the dSprites-like factors."""
    factors = rng.integers(0, FACTOR_SIZES, size=(n, FACTOR_SIZES.size))
    mixing = rng.standard_normal((FACTOR_SIZES.size, n_latents)) * (rng.uniform(size=(FACTOR_SIZES.size, n_latents)) < 0.3)
    mixing[np.arange(FACTOR_SIZES.size), np.arange(FACTOR_SIZES.size)] = 1.0
    codes = (factors / FACTOR_SIZES) @ mixing + 0.1 * rng.standard_normal((n, n_latents))
    return codes.astype(np.float32), factors


def make_case(metric: str, size: dict[str, int]) -> tuple[Plan, dict[str, np.ndarray], dict[str, Any]]:
    """A plan (only its shapes and labels are read), host codes and parameters for ``metric`` at ``size``."""
    rng = np.random.default_rng(0)
    n_train, n_test, d, batch = size["n_train"], size["n_test"], size["n_latents"], size["batch_size"]
    spec = get_metric(metric)
    if metric == "beta_vae":
        train_a, train_b, train_labels = _paired_codes(rng, n_train, batch, d)
        eval_a, eval_b, eval_labels = _paired_codes(rng, n_test, batch, d)
        codes = {"train_a": train_a, "train_b": train_b, "eval_a": eval_a, "eval_b": eval_b}
        extra = {"train_labels": train_labels, "eval_labels": eval_labels, "n_factors": FACTOR_SIZES.size}
        params = spec.resolve({"batch_size": batch, "n_train": n_train, "n_eval": n_test})
    elif metric == "factor_vae":
        variance = rng.standard_normal((n_train, d), dtype=np.float32)
        train, train_labels = _vote_codes(rng, n_train, batch, d)
        evaluated, eval_labels = _vote_codes(rng, n_test, batch, d)
        codes = {"variance": variance, "train": train, "eval": evaluated}
        extra = {"train_labels": train_labels, "eval_labels": eval_labels, "n_factors": FACTOR_SIZES.size}
        params = spec.resolve({"batch_size": batch, "n_train": n_train, "n_eval": n_test, "n_variance_estimate": n_train})
    else:
        train, f_train = _factor_codes(rng, n_train, d)
        test, f_test = _factor_codes(rng, n_test, d)
        codes, extra = {"train": train}, {"train": f_train}
        overrides: dict[str, Any] = {"n_train": n_train}
        if metric != "mig":
            codes["test"], extra["test"] = test, f_test
            overrides["n_test"] = n_test
        if metric == "dci":
            extra = {"factors_train": f_train, "factors_test": f_test, "factor_names": []}
        params = spec.resolve(overrides)
    requests = {key: np.zeros(value.shape[:-1], dtype=np.int64) for key, value in codes.items()}
    return Plan(requests=requests, extra=extra), codes, params


_CASES: dict[tuple[str, str], tuple[Plan, dict[str, np.ndarray], dict[str, Any]]] = {}
_WARM: set[tuple[str, str]] = set()


def _case(metric: str, size: str):
    if (metric, size) not in _CASES:
        _CASES.clear()  # one size's arrays at a time: the 10x ones take gigabytes
        _CASES[(metric, size)] = make_case(metric, SIZES[size])
    return _CASES[(metric, size)]


def _score(metric: str, plan: Plan, codes: dict[str, Any], params: dict[str, Any]) -> tuple[dict[str, float], Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = get_metric(metric).score(plan, codes, params)
    return scored.scores, scored.estimator


@pytest.mark.gpu
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("metric", METRICS)
def test_bench_gpu_metric(benchmark, metric, size, backend):
    deadline = os.environ.get("DBENCH_BENCH_DEADLINE")  # set by benchmarks/gpu_check.sh
    if deadline and time.time() > float(deadline):
        pytest.skip("the device check's time budget is spent")
    convert = converter(backend)
    if convert is None:
        pytest.skip(f"backend {backend} is not available here")
    if (metric, backend) not in _WARM:
        tiny_plan, tiny_codes, tiny_params = make_case(metric, _TINY)
        _score(metric, tiny_plan, {k: convert(v) for k, v in tiny_codes.items()}, tiny_params)
        _WARM.add((metric, backend))
    plan, host_codes, params = _case(metric, size)
    codes = {key: convert(value) for key, value in host_codes.items()}
    benchmark.group = f"{metric}, {size}"
    benchmark.extra_info.update({"metric": metric, "size": size, "backend": backend})
    scores, ran = benchmark.pedantic(_score, args=(metric, plan, codes, params), rounds=1, iterations=1, warmup_rounds=0)
    benchmark.extra_info["estimator"] = ran
    benchmark.extra_info["scores"] = scores
    assert all(np.isfinite(v) for v in scores.values())
