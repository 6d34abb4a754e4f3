"""The GPU paths: the same metric code on CuPy and torch-CUDA gives NumPy's scores (skipped without a GPU)."""

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


# How closely each metric on a GPU agrees with NumPy. Element-wise maths and reductions agree to
# rounding; the device estimators are other computations of the same estimate: explicitness's fits
# reach the optimum scikit-learn's iterate approaches (1e-4 AUC), and DCI's trees may flip a split at a
# near-tie that the GPU's parallel sums order differently (docs/gpu.md).
_TOLERANCE = {"mig": 1e-6, "sap": 1e-6, "irs": 1e-6, "unsupervised": 1e-6, "modularity_explicitness": 1e-4, "dci": 0.01}


def _gpu_backend_or_skip(name):
    if name == "cupy":
        return _cupy_or_skip()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU for torch here")
    return get_backend("torch")


@pytest.mark.gpu
@pytest.mark.parametrize("backend_name", ["cupy", "torch"])
@pytest.mark.parametrize("metric", sorted(_TOLERANCE))
def test_array_metrics_on_a_gpu_match_numpy(metric, backend_name):
    backend = _gpu_backend_or_skip(backend_name)
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
        assert on_gpu[key] == pytest.approx(value, abs=_TOLERANCE[metric]), key


@pytest.mark.gpu
@pytest.mark.parametrize("backend_name", ["cupy", "torch"])
def test_beta_vae_score_on_a_gpu_matches_numpy(backend_name):
    backend = _gpu_backend_or_skip(backend_name)
    from estimator_agreement import sampling_score_agreement

    expected, on_gpu = sampling_score_agreement("beta_vae", backend.asarray)
    assert on_gpu.estimator["estimator"] == "batched_logistic" and on_gpu.estimator["device"].startswith("cuda")
    # The optimum against scikit-learn's iterate: a few boundary points (docs/gpu.md).
    for key, value in expected.scores.items():
        assert on_gpu.scores[key] == pytest.approx(value, abs=0.02), key
