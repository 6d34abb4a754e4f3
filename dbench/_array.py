"""Conversions at the boundary between array namespaces (NumPy, CuPy, torch, array_api_strict)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array on the host, copying from a device only when needed.

    Accepts NumPy, torch (CPU or CUDA, with or without grad), CuPy, array_api_strict and anything
    that implements ``__dlpack__`` or ``__array__``.
    """
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "torch":
        return x.detach().cpu().numpy()
    if module == "cupy":
        return x.get()
    if module == "array_api_strict":
        # array_api_strict wraps a NumPy array; going through DLPack keeps it a zero-copy view.
        return np.from_dlpack(x)
    if hasattr(x, "__array__"):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (RuntimeError, BufferError, TypeError):
            pass
    return np.asarray(x)


def from_numpy(xp: Any, x: np.ndarray, *, device: Any = None) -> Any:
    """Move a host NumPy array into namespace ``xp`` (on ``device`` where the namespace has devices)."""
    if xp is np or getattr(xp, "__name__", "") in ("numpy", "array_api_compat.numpy"):
        return x
    if device is not None:
        return xp.asarray(x, device=device)
    return xp.asarray(x)


def device_name(x: Any) -> str:
    """Where array ``x`` lives, in words: ``"cpu"`` for host memory, ``"cuda:0"`` for a CUDA GPU.

    NumPy and array_api_strict arrays are ``"cpu"``; torch tensors name their device (``"cpu"``,
    ``"cuda:0"``); CuPy arrays ``"cuda:<id>"``; other namespaces their ``device`` as a string.
    """
    if isinstance(x, np.ndarray):
        return "cpu"
    module = type(x).__module__.split(".")[0]
    device = getattr(x, "device", None)
    if module == "cupy":
        return f"cuda:{getattr(device, 'id', 0)}"
    if module == "torch":
        return str(device)
    if module == "array_api_strict" or device is None:
        return "cpu"
    return str(device)


def is_host_numpy(x: Any) -> bool:
    """Whether ``x`` is a plain NumPy array (the namespace the compiled and scipy estimators take as is)."""
    return isinstance(x, np.ndarray)
