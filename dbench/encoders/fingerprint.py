"""Stable identities of encoders, used to key the encode-once code cache.

* File specs (Python file, TorchScript file, run directory): ``"sha256:<hex>"`` of the file's bytes
  (for a run directory, of ``encoder.pt``). A Python file may load weights from elsewhere, which its
  bytes do not show, so its encoder's identity is mixed in: a string attribute ``fingerprint`` on the
  encoder object when it has one (e.g. the hash of the weights it loads), else the module hash below
  when it is a torch module.
* ``torch.nn.Module`` objects: ``"module:<hex>"``, a hash of the class's qualified name and every
  parameter and buffer (name, dtype, shape, bytes).
* Any other in-memory object (a callable or an object with ``encode``): ``"probe:<hex>"``, a hash of
  the qualified name plus the codes on a fixed probe batch (uniform noise from seed 0, 8 images of the
  dataset's observation shape). Codes enter the hash rounded to 20 mantissa bits so tiny
  floating-point differences between runs on the same machine do not change it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dbench._json import file_sha256  # the hash of a file's bytes (re-exported: loaders import it from here)

PROBE_BATCH_SIZE = 8
PROBE_SEED = 0
# Mantissa bits kept when hashing probe codes (about 6 significant decimal digits).
_PROBE_MANTISSA_BITS = 20


def file_fingerprint(path: Path, extra: str | None = None) -> str:
    """``sha256:<hex>`` of the file, with an encoder-declared ``extra`` string mixed in when given."""
    digest = file_sha256(path)
    if extra:
        digest = hashlib.sha256(f"{digest}\0{extra}".encode()).hexdigest()
    return f"sha256:{digest}"


# Python encoder files are imported under unique module names starting with this prefix; the
# prefix and the counter after it must not leak into fingerprints, or every load would differ.
USER_MODULE_PREFIX = "dbench_user_encoder_"


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a function, or of an object's class (``<file>.QualName`` for user files)."""
    target = obj if callable(obj) and hasattr(obj, "__qualname__") else type(obj)
    module = str(getattr(target, "__module__", "?"))
    if module.startswith(USER_MODULE_PREFIX):
        module = "<file>"
    return f"{module}.{getattr(target, '__qualname__', type(target).__name__)}"


def module_fingerprint(module: Any) -> str:
    """``module:<hex>`` of a torch module's class name and all its parameters and buffers."""
    digest = hashlib.sha256(qualified_name(module).encode())
    for name, tensor in module.state_dict().items():
        values = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"\0{name}\0{values.dtype}\0{tuple(tensor.shape)}\0".encode())
        if values.is_floating_point():
            # Hash the raw bits through an integer view, so dtypes NumPy lacks (bfloat16) work too.
            values = values.view(_int_view_dtype(values))
        digest.update(values.numpy().tobytes())
    return f"module:{digest.hexdigest()}"


def _int_view_dtype(tensor: Any) -> Any:
    """An integer torch dtype of the same width as a floating tensor, to read its raw bytes."""
    import torch

    return {2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]


def probe_images(observation_shape: tuple[int, int, int]) -> np.ndarray:
    """The fixed probe batch: float32 uniform noise ``(8, C, H, W)`` from a seed-0 generator."""
    rng = np.random.default_rng(PROBE_SEED)
    return rng.random((PROBE_BATCH_SIZE, *observation_shape), dtype=np.float32)


def _rounded_bytes(x: np.ndarray) -> bytes:
    """Bytes of ``x`` rounded to a fixed number of mantissa bits (relative rounding, any scale)."""
    mantissa, exponent = np.frexp(np.asarray(x, dtype=np.float64))
    rounded = np.round(mantissa * (1 << _PROBE_MANTISSA_BITS)).astype(np.int64)
    return rounded.tobytes() + exponent.astype(np.int64).tobytes()


def probe_fingerprint(obj: Any, encode: Callable[[np.ndarray], Any], observation_shape: tuple[int, int, int]) -> str:
    """``probe:<hex>`` of the object's qualified name and its codes on the probe batch.

    ``encode`` returns an :class:`~dbench.encoders.validation.EncodedBatch`; both mean and logvar enter
    the hash.
    """
    batch = encode(probe_images(observation_shape))
    digest = hashlib.sha256(f"{qualified_name(obj)}\0{tuple(observation_shape)}\0".encode())
    digest.update(_rounded_bytes(batch.mean))
    if batch.logvar is not None:
        digest.update(b"\0logvar\0" + _rounded_bytes(batch.logvar))
    return f"probe:{digest.hexdigest()}"
