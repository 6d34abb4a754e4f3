"""Turning whatever an encoder returned into validated host codes, with one-line errors.

:func:`validate_codes` is the one check of codes, whatever their source: an encoder's output
(:func:`validate_output`), a shard of the on-disk cache, a submission's precomputed codes. Codes must
be real-valued, ``(N, D)`` with one row per observation (and the width the source promised), finite,
and no larger in magnitude than :data:`MAX_ABS_CODE`; a log-variance must match the mean and stay
below :data:`MAX_LOGVAR`. Observation indices (:func:`validate_indices`) must be a 1-D integer array
inside the dataset.

Each step is a separate function so that :mod:`dbench.encoders.check` can report every step as its
own pass/fail row. Every error is an :class:`~dbench.errors.EncoderError` whose message is one line:
``"<origin> <what is wrong>; <how to fix it>"``, where ``origin`` names the source ("encoder 'x'
returned", "cache shard s holds").

Why codes of absurd scale are refused, and why not rescaled. The narrowest arithmetic codes meet is
float32: scikit-learn's trees and dbench's exact boosted trees (DCI, the downstream probe) cast codes
to it, so codes beyond its range (3.4e38) become ``inf``, and the float64 metrics overflow too when
they square codes (codes x 1e300 made SAP 0.000 instead of 0.079). Those trees also treat differences
below 1e-7 as ties (scikit-learn's ``FEATURE_THRESHOLD``), so codes scaled down to ~1e-6 score as
constant (DCI disentanglement 0.82 at scale 1, 0.78 at 1e-5, 0.00 at 1e-6, measured on the NumPy
example). So codes must satisfy ``|code| <=`` :data:`MAX_ABS_CODE` and, unless they are all zero, reach
at least :data:`MIN_LARGEST_CODE` somewhere in the batch. Rescaling them instead would be invisible,
and is not neutral for every metric (the regularised logistic probes, FactorVAE's pruning threshold
and the unsupervised scores depend on the scale), so the user rescales, knowingly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dbench._array import to_numpy
from dbench.errors import EncoderError

# Longest excerpt of a user's exception message that goes into an error line.
_MAX_MESSAGE_CHARS = 300

#: Largest magnitude of a code: well inside float32 (3.4e38), the narrowest arithmetic codes meet.
MAX_ABS_CODE = 1e30
#: The largest magnitude in a batch must reach this (all-zero codes excepted): the trees see ties below 1e-7.
MIN_LARGEST_CODE = 1e-4
#: Largest log-variance: the sampled representation's exp(logvar / 2) then stays below MAX_ABS_CODE.
MAX_LOGVAR = 2 * math.log(MAX_ABS_CODE)


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
        if not line:
            continue
        if len(line) > _MAX_MESSAGE_CHARS // 2:  # a long message: its first sentence is what matters
            end = line.find(". ", 40)
            if 0 < end < _MAX_MESSAGE_CHARS - 3:
                return line[: end + 1]
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


def encoder_origin(who: str) -> str:
    """The ``origin`` of codes an encoder returned: ``"encoder 'name' returned"``."""
    return f"encoder {who} returned"


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


def as_host_array(x: Any, origin: str, what: str = "codes") -> np.ndarray:
    """Convert NumPy / torch (CPU or CUDA, with grad) / CuPy / DLPack / ``__array__`` output to NumPy."""
    if type(x).__module__.split(".")[0] == "torch" and str(getattr(x, "dtype", "")) == "torch.bfloat16":
        # NumPy has no bfloat16; widen on the torch side before crossing over.
        x = x.float()
    try:
        return np.asarray(to_numpy(x))
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the encoder's output's fault
        raise EncoderError(
            f"{origin} {what} of type {type(x).__name__} that cannot be converted to an array "
            f"({describe_exception(exc)}); return a NumPy array, torch tensor or CuPy array"
        ) from None


def as_float(x: np.ndarray, origin: str, what: str = "codes") -> np.ndarray:
    """Cast numeric codes to a float dtype: float16 -> float32, integers/bool -> float64, floats kept."""
    kind = x.dtype.kind
    if kind == "f":
        return x.astype(np.float32) if x.dtype.itemsize < 4 else x
    if kind in "iub":
        return x.astype(np.float64)
    raise EncoderError(
        f"{origin} {what} of dtype {x.dtype}, which is not real-valued numeric; "
        "return float codes (e.g. float32)"
    )


def check_shape(x: np.ndarray, n_images: int, origin: str, what: str = "codes") -> None:
    """Require ``(n_images, D)`` with ``D >= 1``; say how to reshape when the fix is obvious."""
    if x.ndim == 1 and x.shape[0] == n_images:
        raise EncoderError(
            f"{origin} 1-D {what} of shape {x.shape} for {n_images} images; "
            f"{what} must be (N, D): reshape to (N, 1)"
        )
    if x.ndim == 0:
        raise EncoderError(f"{origin} a scalar as {what}; {what} must be (N, D), one row per image")
    if x.ndim > 2 and x.shape[0] == n_images:
        raise EncoderError(f"{origin} {what} of shape {x.shape}; {what} must be (N, D): flatten with reshape(N, -1)")
    if x.ndim != 2:
        raise EncoderError(f"{origin} {what} of shape {x.shape}; {what} must be (N, D), one row per image")
    if x.shape[0] != n_images:
        raise EncoderError(
            f"{origin} {x.shape[0]} rows of {what} for {n_images} images; return exactly one row per input image"
        )
    if x.shape[1] == 0:
        raise EncoderError(f"{origin} {what} with 0 dimensions; {what} must have D >= 1 columns")


def check_width(x: np.ndarray, width: int | None, origin: str, what: str = "codes") -> None:
    """Require ``D == width`` when the source promised a width (the cache, earlier batches)."""
    if width is not None and x.shape[1] != width:
        raise EncoderError(
            f"{origin} {what} of width {x.shape[1]} where {width} were expected; "
            "the code size must be the same for every observation"
        )


def check_finite(x: np.ndarray, origin: str, what: str = "codes") -> None:
    """Reject NaN or inf, saying in how many rows they occur."""
    finite_rows = np.isfinite(x).all(axis=1)
    if not finite_rows.all():
        bad = int(x.shape[0] - np.count_nonzero(finite_rows))
        raise EncoderError(
            f"{origin} NaN or inf {what} in {bad} of {x.shape[0]} rows; "
            "check the encoder for divisions by zero, log of 0 or overflow"
        )


def check_magnitude(x: np.ndarray, origin: str, what: str = "codes") -> None:
    """Reject finite codes of a scale the metrics' arithmetic cannot score (see the module docstring)."""
    largest = float(np.max(np.abs(x))) if x.size else 0.0
    if largest > MAX_ABS_CODE:
        raise EncoderError(
            f"{origin} {what} as large as {largest:.3g} in magnitude, beyond {MAX_ABS_CODE:.0e}: the metrics' float32 "
            "trees and squared float64 sums overflow; rescale the codes (e.g. divide by their standard deviation)"
        )
    if 0.0 < largest < MIN_LARGEST_CODE:
        raise EncoderError(
            f"{origin} {what} no larger than {largest:.3g} in magnitude, below {MIN_LARGEST_CODE:.0e}: the metrics' "
            "trees treat code differences under 1e-7 as ties, so they would score as constant; rescale the codes "
            "(e.g. divide by their standard deviation)"
        )


def check_logvar(mean: np.ndarray, logvar: np.ndarray, origin: str) -> None:
    """The log-variance must match the mean exactly (one variance per code dimension), finite and not huge."""
    if logvar.shape != mean.shape:
        raise EncoderError(
            f"{origin} logvar of shape {logvar.shape} but mean of shape {mean.shape}; "
            "return (mean, logvar) with the same (N, D) shape"
        )
    check_finite(logvar, origin, "logvar")
    largest = float(np.max(logvar)) if logvar.size else 0.0
    if largest > MAX_LOGVAR:
        raise EncoderError(
            f"{origin} logvar up to {largest:.3g}; the sampled representation draws mean + exp(logvar / 2) * noise, "
            f"which overflows the metrics' arithmetic above logvar {MAX_LOGVAR:.0f}: return log-variances, not variances"
        )


def validated_array(x: Any, n_images: int, origin: str, what: str, width: int | None = None) -> np.ndarray:
    """One returned array through conversion, dtype, shape, width, finiteness and magnitude checks."""
    array = as_float(as_host_array(x, origin, what), origin, what)
    check_shape(array, n_images, origin, what)
    check_width(array, width, origin, what)
    check_finite(array, origin, what)
    check_magnitude(array, origin, what)
    return array


def validate_codes(
    mean: Any, logvar: Any | None, n_rows: int, *, origin: str, width: int | None = None
) -> EncodedBatch:
    """The one check of codes from any source: ``(n_rows, D)`` real, finite, not huge; logvar to match.

    Parameters
    ----------
    mean, logvar
        The codes (or posterior means) and the log-variances (None when there are none), as any
        array-like.
    n_rows : int
        Observations the codes are for (one row each).
    origin : str
        Names the source in errors: ``"encoder 'x' returned"``, ``"cache shard s holds"``.
    width : int, optional
        The code width the source must have (known from the cache or earlier batches).
    """
    mean = validated_array(mean, n_rows, origin, "codes" if logvar is None else "mean", width)
    if logvar is None:
        return EncodedBatch(mean=mean)
    logvar = as_float(as_host_array(logvar, origin, "logvar"), origin, "logvar")
    check_logvar(mean, logvar, origin)
    return EncodedBatch(mean=mean, logvar=logvar)


def validate_indices(indices: Any, n_observations: int, origin: str) -> np.ndarray:
    """Observation indices as int64: a 1-D integer array with every entry in ``[0, n_observations)``."""
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise EncoderError(
            f"{origin} indices of dtype {indices.dtype} and shape {indices.shape}; they must be a 1-D integer array"
        )
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= n_observations):
        raise EncoderError(
            f"{origin} observation indices outside [0, {n_observations}) (from {int(indices.min())} to "
            f"{int(indices.max())}); indices must be flat indices of the dataset"
        )
    return indices.astype(np.int64, copy=False)


def validate_output(raw: Any, n_images: int, who: str, *, width: int | None = None) -> EncodedBatch:
    """Validate an encoder's return value for ``n_images`` images and convert it to an :class:`EncodedBatch`."""
    mean_raw, logvar_raw = split_pair(raw, who)
    return validate_codes(mean_raw, logvar_raw, n_images, origin=encoder_origin(who), width=width)
