"""The one fixed file format that crosses the sandbox boundary, in either direction.

The scorer hands the sandbox its query set in it, and reads back only this format from the sandbox:
a submission's manifest (what the sandbox found in it) and its codes. It is deliberately dumb::

    16 bytes   magic  b"DBENCH-WIRE-1\\n\\0\\0"
     4 bytes   header length H, unsigned little-endian (at most MAX_HEADER_BYTES)
     H bytes   header: UTF-8 JSON {"manifest": {...} | null, "arrays": [...], "stats": {...}}
     rest      the arrays' raw little-endian bytes, in header order, nothing else

Each array entry names its dataset, its part (``indices``, ``mean`` or ``logvar``), a dtype
(``<i8``, ``<f4`` or ``<f8``) and a shape. :func:`read_wire` checks the magic, the header's size,
depth and schema, every shape against what the reader expects (rows equal to the query count,
latents at most :data:`MAX_LATENTS`) and the file's exact size **before it reads a byte of array
data**; then it reads exactly the declared bytes. No pickles, no compression, no offsets to trust.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from dbench._json import canonical_json, loads_bounded
from dbench.errors import ConfigError

MAGIC = b"DBENCH-WIRE-1\n\0\0"
MAX_HEADER_BYTES = 1 << 16
#: Most latent dimensions a submission may have (documented in docs/submissions.md).
MAX_LATENTS = 256
_LENGTH = struct.Struct("<I")
_DTYPES: dict[str, np.dtype] = {"<i8": np.dtype("<i8"), "<f4": np.dtype("<f4"), "<f8": np.dtype("<f8")}

Part = Literal["indices", "mean", "logvar"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArrayEntry(_Strict):
    dataset: str = Field(min_length=1, max_length=100)
    part: Part
    dtype: Literal["<i8", "<f4", "<f8"]
    shape: list[StrictInt] = Field(min_length=1, max_length=2)


class DatasetStats(_Strict):
    n_encoded: StrictInt = Field(ge=0)
    seconds: float = Field(ge=0, allow_inf_nan=False)


class Header(_Strict):
    manifest: dict[str, Any] | None = None
    arrays: list[ArrayEntry] = Field(default_factory=list, max_length=64)
    stats: dict[str, DatasetStats] = Field(default_factory=dict)


@dataclass
class Wire:
    """What a wire file holds: an optional manifest, arrays by (dataset, part), per-dataset statistics."""

    manifest: dict[str, Any] | None = None
    arrays: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    stats: dict[str, DatasetStats] = field(default_factory=dict)


def write_wire(path: str | os.PathLike[str], wire: Wire) -> None:
    """Write ``wire`` to ``path`` (an existing file is truncated in place: it may be a bind mount)."""
    entries, blobs = [], []
    for (dataset, part), array in wire.arrays.items():
        kind = "<i8" if part == "indices" else ("<f4" if array.dtype.itemsize <= 4 else "<f8")
        data = np.ascontiguousarray(array, dtype=_DTYPES[kind])
        entries.append({"dataset": dataset, "part": part, "dtype": kind, "shape": list(data.shape)})
        blobs.append(data)
    header = canonical_json({
        "manifest": wire.manifest,
        "arrays": entries,
        "stats": {k: {"n_encoded": int(v.n_encoded), "seconds": float(v.seconds)} for k, v in wire.stats.items()},
    }).encode()
    if len(header) > MAX_HEADER_BYTES:
        raise ConfigError(f"wire header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    with open(path, "r+b" if Path(path).exists() else "wb") as handle:
        handle.truncate(0)
        handle.write(MAGIC + _LENGTH.pack(len(header)) + header)
        for blob in blobs:
            blob.tofile(handle)


@dataclass(frozen=True)
class Expect:
    """What a reader accepts: rows per dataset (``rows=None``: any dataset, any count), parts, a manifest."""

    rows: Mapping[str, int] | None
    parts: tuple[str, ...] = ("mean", "logvar")
    manifest: bool = False


def read_wire(path: str | os.PathLike[str], expect: Expect, *, source: str = "sandbox output") -> Wire:
    """Read a wire file written by the other side, checking everything before reading array data."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(f"{source}: not written ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not _is_regular(info.st_mode):
            raise ConfigError(f"{source}: not a regular file")
        prefix = handle.read(len(MAGIC) + _LENGTH.size)
        if len(prefix) < len(MAGIC) + _LENGTH.size or prefix[: len(MAGIC)] != MAGIC:
            raise ConfigError(f"{source}: empty or not in dbench's exchange format (nothing was produced)")
        (length,) = _LENGTH.unpack(prefix[len(MAGIC):])
        if length > MAX_HEADER_BYTES:
            raise ConfigError(f"{source}: header of {length:,} bytes is larger than {MAX_HEADER_BYTES:,}")
        raw = handle.read(length)
        header = _parse_header(raw, length, source)
        offset = len(prefix) + length
        plan = []
        for entry in header.arrays:
            plan.append((entry, _check_entry(entry, expect, source)))
        seen = [(e.dataset, e.part) for e in header.arrays]
        if len(set(seen)) != len(seen):
            raise ConfigError(f"{source}: an array appears twice")
        if expect.manifest and header.manifest is None:
            raise ConfigError(f"{source}: no manifest")
        total = offset + sum(nbytes for _, nbytes in plan)
        if info.st_size != total:
            raise ConfigError(f"{source}: {info.st_size:,} bytes where its header declares {total:,}")
        wire = Wire(manifest=header.manifest, stats=dict(header.stats))
        for entry, nbytes in plan:
            dtype = _DTYPES[entry.dtype]
            data = np.fromfile(handle, dtype=dtype, count=nbytes // dtype.itemsize)
            if data.nbytes != nbytes:
                raise ConfigError(f"{source}: truncated while reading")
            wire.arrays[(entry.dataset, entry.part)] = data.reshape(entry.shape)
    return wire


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _parse_header(raw: bytes, length: int, source: str) -> Header:
    if len(raw) != length:
        raise ConfigError(f"{source}: truncated header")
    data = loads_bounded(raw, source=source, max_bytes=MAX_HEADER_BYTES, max_depth=8)
    try:
        return Header.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "header"
        raise ConfigError(f"{source}: {where}: {err['msg']}") from None


def _check_entry(entry: ArrayEntry, expect: Expect, source: str) -> int:
    """Bytes the entry occupies, after checking its dataset, part, dtype and shape."""
    if expect.rows is not None and entry.dataset not in expect.rows:
        raise ConfigError(f"{source}: codes for dataset {entry.dataset!r}, which the protocol does not use")
    if entry.part not in expect.parts:
        raise ConfigError(f"{source}: unexpected array {entry.part!r}")
    want = None if expect.rows is None else expect.rows[entry.dataset]
    if entry.part == "indices":
        if entry.dtype != "<i8" or len(entry.shape) != 1:
            raise ConfigError(f"{source}: indices must be a 1-D int64 array")
    else:
        if entry.dtype == "<i8" or len(entry.shape) != 2:
            raise ConfigError(f"{source}: {entry.part} must be a 2-D float array")
        if not 1 <= entry.shape[1] <= MAX_LATENTS:
            raise ConfigError(f"{source}: {entry.shape[1]} latent dimensions; between 1 and {MAX_LATENTS} are allowed")
    rows = entry.shape[0]
    if rows < 0 or (want is not None and rows != want):
        raise ConfigError(f"{source}: {entry.part} of {entry.dataset} has {rows:,} rows; the query set has {want:,}")
    return int(np.prod(entry.shape, dtype=np.int64)) * _DTYPES[entry.dtype].itemsize


__all__ = ["MAGIC", "MAX_LATENTS", "ArrayEntry", "DatasetStats", "Expect", "Header", "Wire", "read_wire", "write_wire"]
