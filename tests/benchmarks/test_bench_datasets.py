"""Rendering throughput of the procedural datasets (run with ``pytest --benchmark-only``).

Target for ``dsprites``: >= 20,000 images/s for 10,000 random indices on a 2-core CPU (sprite masks
already rendered; the one-off mask rendering is measured separately).
"""

from __future__ import annotations

import numpy as np

from dbench.datasets.dsprites import DSprites, _MaskBank
from dbench.datasets.variants import ColorDSprites, NoisyDSprites

N = 10_000


def random_indices(dataset, n=N):
    return np.random.default_rng(0).integers(0, int(np.prod(dataset.factor_sizes)), n)


def test_bench_dsprites_10k_random_images(benchmark):
    data = DSprites()
    idx = random_indices(data)
    data.images(idx)  # warm the shared mask cache
    images = benchmark(data.images, idx)
    assert images.shape == (N, 1, 64, 64)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.mean


def test_bench_dsprites_render_all_masks_cold(benchmark):
    def render_all():
        bank = _MaskBank()
        bank.ensure(np.repeat(np.arange(3), 6), np.tile(np.arange(6), 3))

    benchmark.pedantic(render_all, rounds=3, iterations=1)


def test_bench_color_dsprites_10k(benchmark):
    data = ColorDSprites(DSprites())
    idx = random_indices(data)
    data.images(idx)
    benchmark(data.images, idx)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.mean


def test_bench_noisy_dsprites_2k(benchmark):
    data = NoisyDSprites(DSprites())
    idx = random_indices(data, 2000)
    benchmark.pedantic(data.images, args=(idx,), rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = 2000 / benchmark.stats.stats.mean
