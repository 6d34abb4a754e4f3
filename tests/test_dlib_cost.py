"""benchmarks/dlib_cost.py: disentanglement_lib's encoder-call count and the code pool its metric time uses."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from dlib_cost import CodePool, dlib_encoder_calls
from sampling_metric_data import GridDataset

from dbench.datasets.base import indices_to_factors, num_observations


def test_encoder_calls_at_the_published_defaults():
    calls = dlib_encoder_calls()
    assert calls["beta_vae"] == (10_000 + 5_000) * 2 * 64  # the 1.92 M
    assert calls["factor_vae"] == 10_000 + (10_000 + 5_000) * 64
    assert calls["downstream_task"] == 2 * (11_110 + 4 * 5_000)
    assert sum(calls.values()) == 3_027_220
    assert dlib_encoder_calls(0.1)["beta_vae"] == (1_000 + 500) * 2 * 64


def test_code_pool_draws_batches_sharing_the_fixed_factor():
    dataset = GridDataset((3, 4, 5))
    indices = np.arange(num_observations(dataset))
    codes = indices_to_factors(dataset, indices).astype(float)
    pool = CodePool(dataset, codes, indices)
    batch, factors = pool(32, fixed=1)
    assert np.unique(factors[:, 1]).size == 1 and np.all(batch[:, 1] == factors[:, 1])
    a, b = pool(32, fixed=2, pair=True)
    assert np.all(a[:, 2] == b[:, 2]) and not np.all(a == b)
    x, y = pool(100)
    np.testing.assert_array_equal(x, y.astype(float))
