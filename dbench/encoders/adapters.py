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


#: Images per forward call of a torch module on a CPU (a larger batch is split into chunks this size).
CPU_CHUNK = 64


def _concatenate(parts: list[Any]) -> Any:
    """The chunks' outputs joined along the batch axis: tensors, or tuples/lists of tensors; None otherwise."""
    import torch

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts) if all(isinstance(p, torch.Tensor) and p.ndim >= 1 for p in parts) else None
    if isinstance(first, (tuple, list)) and first and all(
        isinstance(p, type(first)) and len(p) == len(first) and all(isinstance(t, torch.Tensor) and t.ndim >= 1 for t in p)
        for p in parts
    ):
        return type(first)(torch.cat([p[k] for p in parts]) for k in range(len(first)))
    return None


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
            if self.device.type != "cpu" or len(x) <= CPU_CHUNK:
                return self._forward(x)
            # On a CPU, convolutions run ~2.5x faster per image in chunks of 64 than in one batch of
            # 256 (activations stay in cache; measured with examples/torch_cnn_encoder.py), so a
            # batch is split; codes do not depend on the batch (eval mode, one image at a time).
            parts = [self._forward(x[i : i + CPU_CHUNK]) for i in range(0, len(x), CPU_CHUNK)]
            joined = _concatenate(parts)
            return joined if joined is not None else self._forward(x)


class FunctionEncoder:
    """A plain function ``f(images) -> codes`` seen as an encoder."""

    def __init__(self, function: Any) -> None:
        self.function = function

    def encode(self, images: np.ndarray) -> Any:
        return self.function(images)
