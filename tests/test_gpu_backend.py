"""The CuPy path: the same metric code on a CUDA GPU gives NumPy's scores (skipped without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.backend import get_backend
from dbench.errors import DbenchError


def _cupy_or_skip():
    try:
        return get_backend("cupy")
    except DbenchError as exc:
        pytest.skip(f"no CuPy GPU backend here: {exc}")


def test_cupy_backend_without_gpu_is_a_clear_error():
    try:
        import cupy  # noqa: F401 - only whether it imports matters

        pytest.skip("CuPy is installed; the missing-GPU message is not reachable")
    except ImportError:
        pass
    with pytest.raises(DbenchError, match="pip install dbench\\[gpu\\]"):
        get_backend("cupy")
    assert get_backend("auto").name == "numpy"  # auto falls back quietly


@pytest.mark.gpu
@pytest.mark.parametrize("metric", ["mig", "sap", "modularity_explicitness", "irs", "unsupervised"])
def test_array_metrics_on_cupy_match_numpy(metric):
    backend = _cupy_or_skip()
    import dbench.metrics as m

    rng = np.random.default_rng(0)
    factors = rng.integers(0, (3, 6, 8), size=(1200, 3))
    codes = np.concatenate([factors + 0.3 * rng.standard_normal((1200, 3)), rng.standard_normal((1200, 2))], axis=1)
    fn = getattr(m, metric)
    arrays = (codes[:800], factors[:800], codes[800:], factors[800:])
    if metric in ("mig", "irs"):
        arrays = arrays[:2]
    elif metric == "unsupervised":
        arrays = arrays[:1]
    expected = fn(*arrays)
    on_gpu = fn(*(backend.asarray(a) for a in arrays))
    for key, value in expected.items():
        assert on_gpu[key] == pytest.approx(value, abs=1e-6), key
