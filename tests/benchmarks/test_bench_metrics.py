"""Speed of the array-level metrics on NumPy (run with ``pytest tests/benchmarks --benchmark-only``).

Sizes: disentanglement_lib's defaults (10,000 training and 5,000 test codes, 10 latents, the 5
dSprites factors with 3, 6, 40, 32 and 32 values) and ten times the samples and latents. Reference
points measured with disentanglement_lib's own code at the default size: about 0.1 s (MIG), 0.5 s (SAP),
3 s (modularity/explicitness). ``sap-sklearn`` runs dlib's per-pair scikit-learn loop for comparison,
``modularity_explicitness-sklearn`` scikit-learn's own ``LogisticRegression`` (the default fit takes the
same L-BFGS steps on a vectorised objective).
Add a metric by adding a row to ``BENCHMARKS``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dbench.metrics._irs import irs
from dbench.metrics._mig import mig
from dbench.metrics._modularity import modularity_explicitness
from dbench.metrics._sap import sap
from dbench.metrics._unsupervised import unsupervised

DSPRITES_FACTOR_SIZES = (3, 6, 40, 32, 32)

BENCHMARKS = {
    "mig": lambda c, f, ct, ft: mig(c, f),
    "sap": lambda c, f, ct, ft: sap(c, f, ct, ft),
    "sap-sklearn": lambda c, f, ct, ft: sap(c, f, ct, ft, solver="sklearn"),
    "modularity_explicitness": lambda c, f, ct, ft: modularity_explicitness(c, f, ct, ft),
    "modularity_explicitness-sklearn": lambda c, f, ct, ft: modularity_explicitness(c, f, ct, ft, solver="sklearn"),
    "irs": lambda c, f, ct, ft: irs(c, f),
    "unsupervised": lambda c, f, ct, ft: unsupervised(c),
}
SIZES = {"default": (10_000, 5_000, 10), "10x": (100_000, 50_000, 100)}
# The scikit-learn reference paths at 10x take many minutes; they are only measured at the default size.
SKIP = {("sap-sklearn", "10x"), ("modularity_explicitness-sklearn", "10x")}


def _codes(n_train: int, n_test: int, n_latents: int, seed: int = 0):
    """Noisy, partly mixed codes of dSprites-like factors (the cost does not depend on quality)."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(DSPRITES_FACTOR_SIZES)
    factors = rng.integers(0, sizes, size=(n_train + n_test, sizes.size))
    mixing = rng.standard_normal((sizes.size, n_latents)) * (rng.uniform(size=(sizes.size, n_latents)) < 0.3)
    codes = (factors / sizes) @ mixing + 0.1 * rng.standard_normal((n_train + n_test, n_latents))
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_bench_metric(benchmark, name, size):
    if (name, size) in SKIP:
        pytest.skip("too slow to be useful")
    arrays = _codes(*SIZES[size])
    benchmark.group = f"array-level metrics, {size}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rounds = 3 if size == "default" else 1
        scores = benchmark.pedantic(BENCHMARKS[name], args=arrays, rounds=rounds, iterations=1, warmup_rounds=0)
    assert all(np.isfinite(v) for v in scores.values())
