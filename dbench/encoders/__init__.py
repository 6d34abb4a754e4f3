"""Encoders: anything that maps images to codes, loaded and validated.

* :func:`load_encoder` -- a Python file, TorchScript file, run directory, torch module, object with
  ``encode`` or plain callable -> :class:`LoadedEncoder` with validated ``encode(images) -> EncodedBatch``.
* :func:`check_encoder` -- a seconds-long health check on tiny data (``dbench check ENCODER``).

The sampled representation (one posterior sample per observation) is built from the encoded codes in
:mod:`dbench.codes.sampled`, one layer up.

See docs/encoders.md. Importing this package does not import torch.
"""

from dbench.encoders.base import Encoder
from dbench.encoders.check import CheckReport, CheckRow, check_encoder
from dbench.encoders.loaded import LoadedEncoder
from dbench.encoders.loading import load_encoder
from dbench.encoders.validation import EncodedBatch

__all__ = [
    "CheckReport",
    "CheckRow",
    "EncodedBatch",
    "Encoder",
    "LoadedEncoder",
    "check_encoder",
    "load_encoder",
]
