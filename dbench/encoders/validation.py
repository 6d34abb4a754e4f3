"""Turning whatever an encoder returned into validated host codes, with one-line errors.

Each step is a separate function so that :mod:`dbench.encoders.check` can report every step as its
own pass/fail row; :func:`validate_output` chains them for the normal encode path. Every error is an
:class:`~dbench.errors.EncoderError` whose message is one line: what is wrong, then how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dbench._array import to_numpy
from dbench.errors import EncoderError

# Longest excerpt of a user's exception message that goes into an error line.
_MAX_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class EncodedBatch:
    """Validated codes of one batch of images.

    Attributes
    ----------
    mean : np.ndarray
        Float ``(N, D)`` codes (the mean of the posterior when the encoder returned a pair).
    logvar : np.ndarray or None
        Float ``(N, D)`` log-variances when the encoder returned ``(mean, logvar)``, else None.
    """

    mean: np.ndarray
    logvar: np.ndarray | None = None


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, shortened, for quoting inside a one-line error."""
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= _MAX_MESSAGE_CHARS else line[: _MAX_MESSAGE_CHARS - 3] + "..."
    return ""


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (or just the type name when the message is empty)."""
    message = first_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _is_array_like(x: Any) -> bool:
    # Python lists of numbers are array-like too, but a list of two such lists is a 2-row code
    # table, not a (mean, logvar) pair; only real array objects count as pair members.
    return hasattr(x, "shape") or hasattr(x, "__array__") or hasattr(x, "__dlpack__")


def split_pair(raw: Any, who: str) -> tuple[Any, Any | None]:
    """Split an encoder's return value into ``(mean, logvar or None)``.

    A tuple (or list) of exactly two array objects is a ``(mean, logvar)`` pair; any other tuple is
    an error; everything else is the codes themselves.
    """
    if isinstance(raw, (tuple, list)) and raw and all(_is_array_like(x) for x in raw):
        if len(raw) == 2:
            return raw[0], raw[1]
        raise EncoderError(
            f"encoder {who} returned a {type(raw).__name__} of {len(raw)} arrays; "
            "return one (N, D) array of codes or a (mean, logvar) pair"
        )
    if isinstance(raw, tuple):
        raise EncoderError(
            f"encoder {who} returned a tuple of {len(raw)} non-array items; "
            "return one (N, D) array of codes or a (mean, logvar) pair of arrays"
        )
    if raw is None:
        raise EncoderError(f"encoder {who} returned None; make encode(images) return the (N, D) codes")
    return raw, None


def as_host_array(x: Any, who: str, what: str = "codes") -> np.ndarray:
    """Convert NumPy / torch (CPU or CUDA, with grad) / CuPy / DLPack / ``__array__`` output to NumPy."""
    if type(x).__module__.split(".")[0] == "torch" and str(getattr(x, "dtype", "")) == "torch.bfloat16":
        # NumPy has no bfloat16; widen on the torch side before crossing over.
        x = x.float()
    try:
        return np.asarray(to_numpy(x))
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the encoder's output's fault
        raise EncoderError(
            f"encoder {who} returned {what} of type {type(x).__name__} that cannot be converted to an array "
            f"({describe_exception(exc)}); return a NumPy array, torch tensor or CuPy array"
        ) from None


def as_float(x: np.ndarray, who: str, what: str = "codes") -> np.ndarray:
    """Cast numeric codes to a float dtype: float16 -> float32, integers/bool -> float64, floats kept."""
    kind = x.dtype.kind
    if kind == "f":
        return x.astype(np.float32) if x.dtype.itemsize < 4 else x
    if kind in "iub":
        return x.astype(np.float64)
    raise EncoderError(
        f"encoder {who} returned {what} of dtype {x.dtype}, which is not real-valued numeric; "
        "return float codes (e.g. float32)"
    )


def check_shape(x: np.ndarray, n_images: int, who: str, what: str = "codes") -> None:
    """Require ``(n_images, D)`` with ``D >= 1``; say how to reshape when the fix is obvious."""
    if x.ndim == 1 and x.shape[0] == n_images:
        raise EncoderError(
            f"encoder {who} returned 1-D {what} of shape {x.shape} for {n_images} images; "
            f"{what} must be (N, D): reshape to (N, 1)"
        )
    if x.ndim == 0:
        raise EncoderError(f"encoder {who} returned a scalar as {what}; {what} must be (N, D), one row per image")
    if x.ndim > 2 and x.shape[0] == n_images:
        raise EncoderError(
            f"encoder {who} returned {what} of shape {x.shape}; {what} must be (N, D): "
            "flatten with reshape(N, -1)"
        )
    if x.ndim != 2:
        raise EncoderError(f"encoder {who} returned {what} of shape {x.shape}; {what} must be (N, D), one row per image")
    if x.shape[0] != n_images:
        raise EncoderError(
            f"encoder {who} returned {x.shape[0]} rows of {what} for {n_images} images; "
            "return exactly one row per input image"
        )
    if x.shape[1] == 0:
        raise EncoderError(f"encoder {who} returned {what} with 0 dimensions; {what} must have D >= 1 columns")


def check_finite(x: np.ndarray, who: str, what: str = "codes") -> None:
    """Reject NaN or inf, saying in how many rows they occur."""
    finite_rows = np.isfinite(x).all(axis=1)
    if not finite_rows.all():
        bad = int(x.shape[0] - np.count_nonzero(finite_rows))
        raise EncoderError(
            f"encoder {who} returned NaN or inf {what} in {bad} of {x.shape[0]} rows; "
            "check the encoder for divisions by zero, log of 0 or overflow"
        )


def check_logvar_shape(mean: np.ndarray, logvar: np.ndarray, who: str) -> None:
    """The log-variance must match the mean exactly (one variance per code dimension)."""
    if logvar.shape != mean.shape:
        raise EncoderError(
            f"encoder {who} returned logvar of shape {logvar.shape} but mean of shape {mean.shape}; "
            "return (mean, logvar) with the same (N, D) shape"
        )


def validated_array(x: Any, n_images: int, who: str, what: str) -> np.ndarray:
    """One returned array through conversion, dtype, shape and finiteness checks."""
    array = as_float(as_host_array(x, who, what), who, what)
    check_shape(array, n_images, who, what)
    check_finite(array, who, what)
    return array


def validate_output(raw: Any, n_images: int, who: str) -> EncodedBatch:
    """Validate an encoder's return value for ``n_images`` images and convert it to an :class:`EncodedBatch`."""
    mean_raw, logvar_raw = split_pair(raw, who)
    mean = validated_array(mean_raw, n_images, who, "codes" if logvar_raw is None else "mean")
    if logvar_raw is None:
        return EncodedBatch(mean=mean)
    logvar = as_float(as_host_array(logvar_raw, who, "logvar"), who, "logvar")
    check_logvar_shape(mean, logvar, who)
    check_finite(logvar, who, "logvar")
    return EncodedBatch(mean=mean, logvar=logvar)
