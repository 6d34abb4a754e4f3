"""The encoder contract: anything with ``encode(images) -> codes``.

No base class to inherit: any object with a conforming ``encode`` method is an encoder
(``isinstance(obj, Encoder)`` checks it at run time).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Encoder(Protocol):
    """Maps a batch of images to a batch of codes.

    ``images`` is float32 in [0, 1] with layout ``(N, C, H, W)``, or ``(N, H, W, C)`` when the encoder
    has an attribute ``channels_last = True``. The return value is ``(N, D)`` codes as NumPy, torch
    (CPU or CUDA), CuPy, or anything with ``__dlpack__``/``__array__``; or a ``(mean, log_variance)``
    pair of such arrays, in which case the mean is the default representation.
    """

    def encode(self, images: Any) -> Any: ...
