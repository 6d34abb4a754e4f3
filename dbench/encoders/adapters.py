"""Adapters that give every accepted kind of encoder the same ``encode(images) -> raw output`` call.

``images`` reaching an adapter are float32 NumPy arrays already in the layout the encoder asked for;
what the adapter returns is validated afterwards (:mod:`dbench.encoders.validation`). torch is imported
only inside the torch adapter, so ``import dbench.encoders`` stays cheap.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import numpy as np


def is_torch_module(obj: Any) -> bool:
    """True for a ``torch.nn.Module`` (including TorchScript modules); never imports torch itself."""
    torch = sys.modules.get("torch")
    # If torch was never imported, nothing can be a torch module.
    return torch is not None and isinstance(obj, torch.nn.Module)


def module_device(module: Any) -> Any:
    """The device of a module's first parameter (or buffer); CPU for a module with neither."""
    import torch

    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _module_float_dtype(module: Any) -> Any:
    """The dtype of the module's first floating parameter, so float16/float64 models get matching inputs."""
    import torch

    for tensor in module.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


class TorchModuleEncoder:
    """Runs a ``torch.nn.Module`` as an encoder.

    The module is put in eval mode (so dropout and batch norm do not depend on the batch) and called
    under ``torch.inference_mode()`` with the images as a tensor on the module's own device and in its
    floating dtype; ``module.encode(x)`` is called when the module has an ``encode`` method (a VAE),
    else ``module(x)``. Outputs stay torch tensors; validation brings them back to the host.
    """

    def __init__(self, module: Any, device: Any = None) -> None:
        if device is not None:
            module = module.to(device)
        # torch.export modules refuse eval(); they keep the mode they were exported in.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            module.eval()
        self.module = module
        self.device = module_device(module)
        self.dtype = _module_float_dtype(module)
        encode = getattr(module, "encode", None)
        self._forward = encode if callable(encode) else module

    def encode(self, images: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(images)).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            return self._forward(x)


class FunctionEncoder:
    """A plain function ``f(images) -> codes`` seen as an encoder."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def encode(self, images: np.ndarray) -> Any:
        return self.function(images)
