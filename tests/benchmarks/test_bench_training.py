"""Training throughput of the reference VAEs on CPU (run with ``pytest --benchmark-only``).

One step = encoder + decoder forward/backward and Adam update at dlib's batch size 64 on dSprites
images (FactorVAE adds its 6x1000 discriminator). Reported as ``steps_per_s`` in extra_info; the
image rendering is excluded (see test_bench_datasets.py), and the full loop including it is timed by
``test_bench_train_loop``. Measured with one torch thread, as the baselines are trained.
"""

from __future__ import annotations

import numpy as np
import pytest

from dbench.datasets import get_dataset
from dbench.datasets.base import sample_factors, sample_observations_from_factors

torch = pytest.importorskip("torch")

from reference_models.training import build_trainer, train, training_step  # noqa: E402 - imports torch: only after the importorskip
from reference_models.variants import get_variant  # noqa: E402 - imports torch: only after the importorskip

BATCH = 64


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("model", ["vae", "factor_vae", "beta_tcvae", "dip_vae_ii"])
def test_bench_training_step(benchmark, model):
    data = get_dataset("dsprites")
    factors = sample_factors(data, BATCH, np.random.default_rng(0))
    images = torch.from_numpy(sample_observations_from_factors(data, factors))
    variant = get_variant(model)
    hparams = variant.resolve_hparams(None)
    trainer = build_trainer(variant, 0, torch.device("cpu"), 1)
    step = iter(range(10**6))
    benchmark.pedantic(lambda: training_step(trainer, variant, hparams, images, next(step)), rounds=10, warmup_rounds=2)
    benchmark.extra_info["steps_per_s"] = 1.0 / benchmark.stats.stats.mean


def test_bench_train_loop(benchmark, tmp_path):
    runs = iter(range(10**6))

    def train_20_steps():
        return train("beta_vae", dataset="dsprites", steps=20, seed=0, out_dir=tmp_path / str(next(runs)), progress=False)

    result = benchmark.pedantic(train_20_steps, rounds=2, iterations=1)
    benchmark.extra_info["steps_per_s"] = 20 / benchmark.stats.stats.mean
    assert result.steps == 20
