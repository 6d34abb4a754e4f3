"""Seeded inputs shared by the array-level metric tests (the dlib golden fixtures were computed on them).

``dlib_case`` builds the inputs of ``tests/fixtures/dlib_golden_*.json``; the per-metric test files and
the property table (``test_metrics_common.py``) import it from here.
"""

from __future__ import annotations

import numpy as np

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
