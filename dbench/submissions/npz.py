"""Reading a submission's ``codes.npz`` without trusting it; runs inside the sandbox only.

Keys, for each dataset of the protocol: ``<dataset>__indices`` (integers, shape ``(N,)``: exactly the
exported query set, in any order), ``<dataset>__codes`` (float16/32/64, shape ``(N, D)``,
``1 <= D <= MAX_LATENTS``) and optionally ``<dataset>__logvar`` (the shape of codes). A file for a
single dataset may use plain ``indices``/``codes``/``logvar``.

Each member's ``.npy`` header is read first: object dtypes (pickles) are refused, and the declared
shape must have exactly the query count as rows and at most :data:`MAX_LATENTS` columns before a
byte of data is decompressed. Then exactly the declared number of bytes is read (a member holding
more data than its header declares is refused), so memory stays at the size of the codes themselves.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

from dbench.errors import ConfigError
from dbench.submissions.wire import MAX_LATENTS

MAX_MEMBERS = 64
_CHUNK = 1 << 22


def read_codes_npz(path: Path, queries: Mapping[str, np.ndarray], *,
                   label: str = "codes.npz") -> dict[str, dict[str, np.ndarray]]:
    """Codes per dataset in the order of ``queries[dataset]`` (sorted unique indices): ``{"mean", "logvar"?}``."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename: info for info in zf.infolist()}
            if len(members) > MAX_MEMBERS:
                raise ConfigError(f"{label}: {len(members)} arrays; a codes file holds at most {MAX_MEMBERS}")
            out = {}
            for dataset, wanted in queries.items():
                out[dataset] = _dataset_codes(zf, members, dataset, wanted, label, single=len(queries) == 1)
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise ConfigError(f"{label}: not a readable .npz (zip) file ({exc.__class__.__name__}: {str(exc)[:100]}); "
                          "write it with numpy.savez or numpy.savez_compressed") from None


def _dataset_codes(zf: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo], dataset: str, wanted: np.ndarray,
                   label: str, *, single: bool) -> dict[str, np.ndarray]:
    prefix = f"{dataset}__" if f"{dataset}__indices.npy" in members or not single else ""
    need = [f"{prefix}indices", f"{prefix}codes"]
    missing = [k for k in need if f"{k}.npy" not in members]
    if missing:
        raise ConfigError(f"{label}: missing array(s) {', '.join(missing)} for dataset {dataset!r}; write the indices "
                          "from `dbench protocols export-queries` and their codes (see docs/submissions.md)")
    n = int(wanted.size)
    indices = _read_member(zf, members[f"{prefix}indices.npy"], label, kinds="iu", shape=(n,))
    codes = _read_member(zf, members[f"{prefix}codes.npy"], label, kinds="f", shape=(n, None))
    logvar = None
    if f"{prefix}logvar.npy" in members:
        logvar = _read_member(zf, members[f"{prefix}logvar.npy"], label, kinds="f", shape=codes.shape)
    indices = indices.astype(np.int64, copy=False)
    order = np.argsort(indices, kind="stable")
    if not np.array_equal(indices[order], wanted):
        extra = np.setdiff1d(indices, wanted)
        lost = np.setdiff1d(wanted, indices)
        what = (f"index {int(extra[0])} is not in the query set" if extra.size
                else f"{lost.size:,} query indices missing (e.g. {int(lost[0])})" if lost.size else "indices repeat")
        raise ConfigError(f"{label}: {prefix}indices must be exactly the query set of {dataset}: {what}; "
                          "encode the indices from `dbench protocols export-queries`")
    out = {"mean": _finite(codes[order], f"{label}: {prefix}codes")}
    if logvar is not None:
        out["logvar"] = _finite(logvar[order], f"{label}: {prefix}logvar")
    return out


def _finite(array: np.ndarray, where: str) -> np.ndarray:
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ConfigError(f"{where}: NaN or inf in {int(bad.sum()):,} rows")
    return array


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, *, kinds: str,
                 shape: tuple[int | None, ...]) -> np.ndarray:
    name = f"{label}: {info.filename[:-4]}"
    if info.flag_bits & 0x1:
        raise ConfigError(f"{name}: encrypted; not allowed")
    with zf.open(info) as stream:
        dtype, declared, fortran = _read_header(stream, name)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise ConfigError(f"{name}: dtype {dtype} holds Python objects or records (pickles are not allowed); "
                              "save plain numeric arrays")
        if dtype.kind not in kinds:
            want = "integers" if kinds == "iu" else "floats (float16/32/64)"
            raise ConfigError(f"{name}: dtype {dtype}; must be {want}")
        if len(declared) != len(shape) or any(w is not None and d != w for d, w in zip(declared, shape, strict=True)):
            want = "(" + ", ".join("D" if w is None else f"{w:,}" for w in shape) + (",)" if len(shape) == 1 else ")")
            raise ConfigError(f"{name}: shape {declared} does not match the query set; must be {want}, one row per "
                              "index from `dbench protocols export-queries`")
        if len(declared) == 2 and not 1 <= declared[1] <= MAX_LATENTS:
            raise ConfigError(f"{name}: {declared[1]:,} latent dimensions; between 1 and {MAX_LATENTS} are allowed")
        count = int(np.prod(declared, dtype=np.int64))
        data = np.empty(count, dtype=dtype)
        view = memoryview(data.data).cast("B")
        filled = 0
        while filled < view.nbytes:
            got = stream.readinto(view[filled: filled + _CHUNK]) if hasattr(stream, "readinto") else 0
            if not got:
                raise ConfigError(f"{name}: truncated: {filled:,} of {view.nbytes:,} data bytes")
            filled += got
        if stream.read(1):
            raise ConfigError(f"{name}: more data than its header declares; not a file numpy.save wrote")
    data = data.reshape(declared, order="F" if fortran else "C")
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    return data if data.dtype.kind != "f" or data.dtype.itemsize >= 4 else data.astype(np.float32)


def _read_header(stream: IO[bytes], name: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(stream)
        reader = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = reader(stream, max_header_size=10000)
    except (ValueError, SyntaxError, TypeError, EOFError, OverflowError) as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
        raise ConfigError(f"{name}: not a valid .npy array ({why})") from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ConfigError(f"{name}: invalid shape {shape}")
    return np.dtype(dtype), tuple(int(d) for d in shape), bool(fortran)


__all__ = ["MAX_MEMBERS", "read_codes_npz"]
