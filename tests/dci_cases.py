"""The seeded inputs of DCI's golden fixture (tests/fixtures/dlib_golden_dci.json) and its values.

Shared by the DCI tests, the array-API trees' agreement tests and benchmarks/gpu_agreement.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN_CASES = ("ground_truth", "noisy", "mixed", "noise")
SCORE_KEYS = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
_FACTOR_SIZES = np.array([3, 6, 10, 8])


def golden_inputs(case: str, n_train: int = 1000, n_test: int = 500):
    """Seeded codes/factors for one golden case (the recipe the fixture was produced from)."""
    rng = np.random.default_rng(GOLDEN_CASES.index(case) + 100)
    factors = rng.integers(0, _FACTOR_SIZES, size=(n_train + n_test, _FACTOR_SIZES.size))
    scaled = factors / _FACTOR_SIZES
    if case == "ground_truth":
        codes = factors.astype(np.float64)
    elif case == "noisy":
        codes = np.concatenate([scaled + 0.05 * rng.normal(size=scaled.shape), rng.normal(size=(len(factors), 2))], 1)
    elif case == "mixed":
        codes = scaled @ rng.normal(size=(4, 6)) + 0.02 * rng.normal(size=(len(factors), 6))
    else:
        codes = rng.normal(size=(len(factors), 5))
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


def golden_scores() -> dict:
    """dlib's DCI scores per golden case (mean over 5 scikit-learn seeds)."""
    return json.loads((Path(__file__).parent / "fixtures" / "dlib_golden_dci.json").read_text())["cases"]
