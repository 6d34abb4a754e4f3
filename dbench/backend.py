"""Choice of array backend for metric maths: NumPy (CPU), CuPy (GPU) or torch (CPU/CUDA).

CuPy and torch are imported lazily, only when asked for, so ``import dbench`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dbench.choices import BACKENDS
from dbench.errors import DbenchError


@dataclass(frozen=True)
class Backend:
    """An array namespace plus the device arrays are created on."""

    name: str
    xp: Any
    device: Any = None

    def asarray(self, x: np.ndarray) -> Any:
        """Move a host array onto this backend (one copy at the boundary)."""
        if self.name == "numpy":
            return np.asarray(x)
        if self.device is not None:
            return self.xp.asarray(x, device=self.device)
        return self.xp.asarray(x)

    def describe(self) -> str:
        return self.name if self.device is None else f"{self.name}:{self.device}"


def _cupy_backend() -> Backend:
    try:
        import cupy
        from array_api_compat import cupy as xp

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
    except Exception as exc:  # noqa: BLE001 - ImportError or any of CUDA's driver errors becomes one line
        raise DbenchError(
            f"backend 'cupy' is not available ({exc.__class__.__name__}: {exc}); "
            "install the GPU extra with `pip install dbench[gpu]` on a machine with a CUDA GPU, "
            "or use --backend numpy"
        ) from None
    return Backend("cupy", xp)


def _torch_backend() -> Backend:
    try:
        import torch
        from array_api_compat import torch as xp
    except ImportError:
        raise DbenchError(
            "backend 'torch' needs PyTorch; install it with `pip install dbench[torch]` or use --backend numpy"
        ) from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return Backend("torch", xp, torch.device(device))


def get_backend(name: str = "auto") -> Backend:
    """Return the backend called ``name``; ``auto`` takes CuPy when a GPU is usable, else NumPy."""
    if name not in BACKENDS:
        raise DbenchError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return Backend("numpy", np)
    if name == "cupy":
        return _cupy_backend()
    if name == "torch":
        return _torch_backend()
    try:
        return _cupy_backend()
    except DbenchError:
        return Backend("numpy", np)
