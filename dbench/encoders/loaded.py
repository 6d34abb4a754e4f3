"""``LoadedEncoder``: one validated encoder, whatever it was loaded from.

It owns the parts every kind of encoder shares: the input layout (NCHW, or NHWC for encoders that
declare ``channels_last = True``), the guess that catches a wrong layout on the first call, turning
exceptions and bad outputs into one-line :class:`~dbench.errors.EncoderError` messages, and the
fingerprint that keys the code cache. Which representation the metrics see (the mean or a posterior
sample) is chosen above this layer, in :mod:`dbench.codes.sampled`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np

from dbench.encoders.containment import user_code
from dbench.encoders.fingerprint import probe_fingerprint, qualified_name
from dbench.encoders.validation import EncodedBatch, describe_exception, validate_output
from dbench.errors import EncoderError

DEFAULT_PROBE_SHAPE = (1, 64, 64)

# Words in an exception message that suggest the encoder choked on the input's shape (as opposed to,
# say, a missing file), which is when retrying in the other layout is worth one extra call.
_SHAPE_ERROR = re.compile(
    r"shape|size|dimension|\bdims?\b|channel|mismatch|broadcast|reshape|\baxis\b|\baxes\b|expected .*input",
    re.IGNORECASE,
)


_EXIT_FIX = "make encode(images) return the codes (or raise an exception) instead of ending the process"


def _layout_name(channels_last: bool) -> str:
    return "(N, H, W, C)" if channels_last else "(N, C, H, W)"


class LoadedEncoder:
    """An encoder ready for dbench: NumPy images in, validated codes out.

    Attributes
    ----------
    name : str
        Short name for tables and result files (file stem, run directory name, or object name).
    kind : str
        What it was loaded from: ``python-file``, ``torchscript``, ``torch-export``, ``run-dir``,
        ``torch-module``, ``encoder-object`` or ``callable``.
    channels_last : bool
        Whether images are passed as ``(N, H, W, C)`` instead of ``(N, C, H, W)``.
    fingerprint : str
        Stable identity for caching (see :mod:`dbench.encoders.fingerprint`); computed on first access
        for in-memory objects, by encoding the probe batch of shape ``probe_shape``.
    source : str or None
        The absolute path it was loaded from, fixed before its code ran (user code that changes the
        working folder cannot change which file a result's provenance names); None for objects.
    """

    def __init__(
        self,
        encoder: Any,
        *,
        name: str,
        kind: str,
        channels_last: bool,
        fingerprint: str | None = None,
        probe_shape: tuple[int, int, int] = DEFAULT_PROBE_SHAPE,
    ) -> None:
        self._encoder = encoder
        self.name = name
        self.kind = kind
        self.channels_last = bool(channels_last)
        channels, height, width = probe_shape
        self.probe_shape = (channels, height, width)
        self._fingerprint = fingerprint
        self.source: str | None = None
        # The layout guess runs only until the first successful call: afterwards a failure is the
        # encoder's own, and retrying every failing batch would double its cost.
        self._layout_confirmed = False

    def __repr__(self) -> str:
        return f"LoadedEncoder(name={self.name!r}, kind={self.kind!r})"

    @property
    def who(self) -> str:
        """How error messages refer to this encoder."""
        return repr(self.name)

    # -- fingerprint -------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self._probe_fingerprint()
        return self._fingerprint

    def _probe_fingerprint(self) -> str:
        try:
            return probe_fingerprint(self._encoder, self.encode, self.probe_shape)
        except EncoderError:
            # An encoder that cannot encode the probe cannot be identified; a fingerprint unique to
            # this load keeps its codes from ever being mistaken for another encoder's in a cache.
            return f"unverified:{qualified_name(self._encoder)}:{uuid.uuid4().hex}"

    # -- encoding ----------------------------------------------------------------------------------

    def _call(self, images: np.ndarray, channels_last: bool) -> Any:
        batch = np.ascontiguousarray(images.transpose(0, 2, 3, 1)) if channels_last else images
        # sys.exit() and other BaseExceptions from encode become one line; Ctrl-C stays an interrupt.
        with user_code(f"encoder {self.who}", _EXIT_FIX):
            return self._encoder.encode(batch)

    def _works_in_other_layout(self, images: np.ndarray) -> bool:
        try:
            self._call(images, not self.channels_last)
        except Exception:  # noqa: BLE001 - any failure means the other layout is no better
            return False
        return True

    def encode_raw(self, images: np.ndarray) -> Any:
        """Run the encoder on float32 ``(N, C, H, W)`` images and return its output unvalidated.

        If the very first call raises a shape-like error and the same images in the other layout
        encode fine, the error says to set ``channels_last`` accordingly.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W); got shape {images.shape}")
        try:
            raw = self._call(images, self.channels_last)
        except EncoderError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the encoder raises becomes one line
            if not self._layout_confirmed and _SHAPE_ERROR.search(str(exc)) and self._works_in_other_layout(images):
                flip = not self.channels_last
                raise EncoderError(
                    f"encoder {self.who} raised {describe_exception(exc)} on {_layout_name(self.channels_last)} images "
                    f"but works on {_layout_name(flip)}; set channels_last = {flip} on the encoder "
                    f"(or pass channels_last={flip} to load_encoder)"
                ) from None
            raise EncoderError(
                f"encoder {self.who} raised {describe_exception(exc)}; fix the encoder so that encode(images) "
                f"accepts float32 {_layout_name(self.channels_last)} images in [0, 1]"
            ) from None
        self._layout_confirmed = True
        return raw

    def encode(self, images: np.ndarray) -> EncodedBatch:
        """Validated codes of float32 ``(N, C, H, W)`` images: ``EncodedBatch(mean (N, D), logvar or None)``.

        Raises :class:`~dbench.errors.EncoderError` (one line) when the encoder raises or returns a
        wrong shape or non-finite codes.
        """
        raw = self.encode_raw(images)
        # Reading the output runs the user's objects too (__array__, __dlpack__, properties).
        with user_code(f"encoder {self.who}", _EXIT_FIX):
            try:
                return validate_output(raw, images.shape[0], self.who)
            except EncoderError:
                raise
            except Exception as exc:  # noqa: BLE001 - an output object that fails when read becomes one line
                raise EncoderError(
                    f"encoder {self.who} returned a {type(raw).__name__} that failed when read "
                    f"({describe_exception(exc)}); return a NumPy array, torch tensor or CuPy array"
                ) from None

    def encode_arrays(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(mean, logvar or None)`` of validated codes: the form the code table stores."""
        batch = self.encode(images)
        return batch.mean, batch.logvar

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Mean codes ``(N, D)``, so a loaded encoder can be passed wherever ``encode_fn(images)`` is expected."""
        return self.encode(images).mean

    def with_options(self, *, channels_last: bool | None = None) -> LoadedEncoder:
        """A copy with another input layout (same underlying encoder and fingerprint)."""
        return LoadedEncoder(
            self._encoder,
            name=self.name,
            kind=self.kind,
            channels_last=self.channels_last if channels_last is None else channels_last,
            fingerprint=self._fingerprint,
            probe_shape=self.probe_shape,
        )
