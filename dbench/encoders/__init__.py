"""Encoders: anything that maps images to codes, loaded and validated.

* :func:`load_encoder` -- a Python file, TorchScript file, run directory, torch module, object with
  ``encode`` or plain callable -> :class:`LoadedEncoder` with validated ``encode(images) -> EncodedBatch``.
* :func:`check_encoder` -- a seconds-long health check on tiny data (``dbench check ENCODER``).
* :func:`sample_representation` -- the sampled representation, reproducible per observation index.

See docs/encoders.md. Importing this package does not import torch.
"""

from dbench.encoders.base import Encoder
from dbench.encoders.check import CheckReport, CheckRow, check_encoder
from dbench.encoders.loaded import REPRESENTATIONS, LoadedEncoder
from dbench.encoders.loading import load_encoder
from dbench.encoders.sampling import sample_representation
from dbench.encoders.validation import EncodedBatch

__all__ = [
    "REPRESENTATIONS",
    "CheckReport",
    "CheckRow",
    "EncodedBatch",
    "Encoder",
    "LoadedEncoder",
    "check_encoder",
    "load_encoder",
    "sample_representation",
]
