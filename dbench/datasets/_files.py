"""Finding dataset files and checking their layout, with one-line :class:`DatasetError` messages.

Also reads ``.npz`` members without holding a second full copy in memory: a member stored uncompressed
(``numpy.savez``) is memory-mapped in place (after one pass that checks its CRC-32, about a second per
GB); a compressed one (``numpy.savez_compressed``, like the official dSprites file) is streamed in row
chunks and its CRC-32 checked at its end. Any damage is a one-line :class:`DatasetError`.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dbench.errors import DatasetError, excerpt

DATA_DIR_ENV = "DBENCH_DATA_DIR"
#: disentanglement_lib's data folder (files in ``dsprites/``, ``3dshapes/``, ``mpi3d_toy/``... below it).
DLIB_DATA_DIR_ENV = "DISENTANGLEMENT_LIB_DATA"

_LOCAL_HEADER_SIZE = 30  # fixed part of a zip local file header
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def default_data_dir() -> Path:
    """The user's own data folder: ``$XDG_DATA_HOME/dbench`` (absolute only), else ``~/.local/share/dbench``.

    ``dbench download`` puts files here when no folder is given or set; loaders look here last.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "dbench"


def pin_data_dirs() -> None:
    """Make the data folders named by ``$DBENCH_DATA_DIR`` and ``$DISENTANGLEMENT_LIB_DATA`` absolute.

    Called before user code is loaded, so an encoder that changes the working folder (``os.chdir``)
    cannot change which data files are found (child processes see the same absolute folders).
    """
    for name in (DATA_DIR_ENV, DLIB_DATA_DIR_ENV):
        value = os.environ.get(name)
        if value:
            os.environ[name] = os.path.abspath(os.path.expanduser(value))


def search_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders searched for data files, in order.

    ``data_dir`` alone if given; else ``$DBENCH_DATA_DIR``, ``$DISENTANGLEMENT_LIB_DATA`` (each if set)
    and :func:`default_data_dir` (if it exists).
    """
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = [Path(os.environ[name]).expanduser() for name in (DATA_DIR_ENV, DLIB_DATA_DIR_ENV) if os.environ.get(name)]
    if default_data_dir().is_dir():
        dirs.append(default_data_dir())
    return list(dict.fromkeys(dirs))


def find_data_file(
    dataset: str,
    filename: str,
    data_dir: str | os.PathLike | None,
    *,
    subdir: str,
    source: str,
    download: str | None = None,
) -> Path:
    """Path of ``filename`` in a data folder (directly or in ``subdir/``); DatasetError saying how to get it.

    ``download`` names the ``dbench download`` argument that fetches the file, when there is one.
    """
    dirs = search_dirs(data_dir)
    for folder in dirs:
        for candidate in (folder / filename, folder / subdir / filename):
            if candidate.is_file():
                return candidate
    if dirs:
        where = f"not found in {' or '.join(str(d) for d in dirs)} (nor their {subdir}/ subfolders)"
    else:
        where = (f"not found: no data folder is set (--data-dir, ${DATA_DIR_ENV} or ${DLIB_DATA_DIR_ENV}) and "
                 f"{default_data_dir()} does not exist")
    get = f"run `dbench download {download}`" if download else f"download it from {source}"
    raise DatasetError(
        f"{dataset}: {filename} {where}; {get} (into --data-dir, ${DATA_DIR_ENV}, ${DLIB_DATA_DIR_ENV} or "
        f"{default_data_dir()}), or point --data-dir at the folder that has it"
    )


def check_array(
    dataset: str,
    path: Path,
    key: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    expected_shape: tuple[int, ...],
    expected_dtype: npt.DTypeLike,
) -> None:
    """DatasetError naming the file, the key and what differs, when shape or dtype are not as expected."""
    expected_dtype = np.dtype(expected_dtype)
    if tuple(shape) != tuple(expected_shape):
        raise DatasetError(f"{dataset}: {path.name} key {key!r} has shape {tuple(shape)}; expected {tuple(expected_shape)}")
    if np.dtype(dtype) != expected_dtype:
        raise DatasetError(f"{dataset}: {path.name} key {key!r} has dtype {np.dtype(dtype)}; expected {expected_dtype}")


@contextmanager
def reading_file(dataset: str, path: Path, what: str, *, kind: str) -> Iterator[None]:
    """Turn any failure while reading ``what`` of a data file into one DatasetError line naming the file.

    An operating-system error with an errno (permission denied, a folder) is "cannot read"; anything
    else (zlib.error, BadZipFile, EOFError, ValueError, HDF5's errno-less OSError "filter returned
    failure", ...) means the file is damaged or truncated: download it again.
    """
    try:
        yield
    except DatasetError:
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise DatasetError(f"{dataset}: cannot read {path} ({exc.strerror or exc})") from None
        raise DatasetError(_damaged(dataset, path, what, kind, exc)) from None
    except Exception as exc:  # noqa: BLE001 - every other failure of a reader means damage
        raise DatasetError(_damaged(dataset, path, what, kind, exc)) from None


def _damaged(dataset: str, path: Path, what: str, kind: str, exc: BaseException) -> str:
    detail = " ".join(str(exc).split())[:160] or type(exc).__name__
    return (f"{dataset}: {path} is not a readable {kind} file, damaged or truncated ({what}: "
            f"{type(exc).__name__}: {detail}); download it again")


class NpzFile:
    """Read-only access to the arrays of an ``.npz`` file, member by member, without pickles.

    Every read is checked: a damaged file (flipped bytes, truncation, a zip that is not one, a member
    with a broken ``.npy`` header) is a one-line :class:`DatasetError` naming the file, the member and
    what is wrong, never a zlib or zip exception. Compressed members are read to their end so their
    CRC-32 is checked; a stored member that is memory-mapped has its CRC-32 computed once when mapped.
    """

    def __init__(self, dataset: str, path: Path) -> None:
        self.dataset = dataset
        self.path = Path(path)
        with self._reading("its zip directory"):
            self._zip = zipfile.ZipFile(self.path)
        with self._reading("its zip directory"):
            self.keys = {name[: -len(".npy")]: name for name in self._zip.namelist() if name.endswith(".npy")}

    def _reading(self, what: str) -> AbstractContextManager[None]:
        return reading_file(self.dataset, self.path, what, kind=".npz")

    def close(self) -> None:
        self._zip.close()

    def require(self, *keys: str) -> None:
        """DatasetError listing the missing keys and the keys present."""
        missing = [k for k in keys if k not in self.keys]
        if missing:
            raise DatasetError(
                f"{self.dataset}: {self.path.name} lacks key(s) {missing}; it has {excerpt(sorted(self.keys))} "
                f"(expected the official file's keys {list(keys)})"
            )

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
        """``(shape, dtype, offset of the array data inside the member)`` of member ``key``."""
        with self._reading(f"member {key!r}"), self._zip.open(self.keys[key]) as f:
            shape, dtype = _read_npy_header(self.dataset, self.path, key, f)
            return shape, dtype, f.tell()

    def load(self, key: str) -> np.ndarray:
        """The whole array of member ``key`` (for the small arrays: labels, factor values), CRC checked."""
        with self._reading(f"member {key!r}"), self._zip.open(self.keys[key]) as f:
            shape, dtype = _read_npy_header(self.dataset, self.path, key, f)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise EOFError(f"{len(data):,} of {nbytes:,} bytes")
            _read_to_end(f)
            return np.frombuffer(data, dtype=dtype).reshape(shape).copy()

    def memmap(self, key: str) -> np.ndarray | None:
        """A read-only memory map of member ``key`` if it is stored uncompressed, else ``None``."""
        with self._reading(f"member {key!r}"):
            info = self._zip.getinfo(self.keys[key])
            if info.compress_type != zipfile.ZIP_STORED:
                return None
            shape, dtype, data_offset = self.header(key)
            with open(self.path, "rb") as raw:
                raw.seek(info.header_offset)
                local = raw.read(_LOCAL_HEADER_SIZE)
            if local[:4] != _LOCAL_HEADER_SIGNATURE:
                return None
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            member_start = info.header_offset + _LOCAL_HEADER_SIZE + name_len + extra_len
            if member_start + info.file_size > self.path.stat().st_size:
                raise EOFError("the file ends inside the member (truncated)")
            if _crc32(self.path, member_start, info.file_size) != info.CRC:
                raise zipfile.BadZipFile(f"bad CRC-32 for member {key!r} (its bytes changed after it was written)")
            return np.memmap(self.path, dtype=dtype, mode="r", offset=member_start + data_offset, shape=shape)

    def iter_rows(self, key: str, rows_per_chunk: int) -> Iterator[np.ndarray]:
        """Consecutive row blocks of member ``key`` (decompressed on the fly, one block in memory at a time).

        The member is read to its end after the last block, so its CRC-32 is checked.
        """
        with self._reading(f"member {key!r}"), self._zip.open(self.keys[key]) as f:
            shape, dtype = _read_npy_header(self.dataset, self.path, key, f)
            row_items = int(np.prod(shape[1:], dtype=np.int64))
            for start in range(0, shape[0], rows_per_chunk):
                rows = min(rows_per_chunk, shape[0] - start)
                nbytes = rows * row_items * dtype.itemsize
                buf = f.read(nbytes)
                if len(buf) != nbytes:
                    raise DatasetError(f"{self.dataset}: {self.path.name} key {key!r} is truncated; download it again")
                yield np.frombuffer(buf, dtype=dtype).reshape((rows,) + shape[1:])
            _read_to_end(f)


def _read_to_end(f) -> None:
    """Read past the array data to the member's end: zipfile checks the CRC-32 there; no trailing bytes allowed."""
    if f.read(1):
        raise ValueError("the member holds more bytes than its header declares")


def _crc32(path: Path, start: int, size: int) -> int:
    """CRC-32 of ``size`` bytes of ``path`` from ``start``, read in 64 MB chunks."""
    crc = 0
    with open(path, "rb") as handle:
        handle.seek(start)
        left = size
        while left:
            chunk = handle.read(min(left, 64 << 20))
            if not chunk:
                raise EOFError("the file ends inside the member (truncated)")
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
    return crc


def _read_npy_header(dataset: str, path: Path, key: str, f) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    if fortran:
        raise DatasetError(f"{dataset}: {path.name} key {key!r} is stored in Fortran order; re-save it in C order")
    if dtype.hasobject:
        raise DatasetError(f"{dataset}: {path.name} key {key!r} holds Python objects; expected a numeric array")
    return tuple(shape), dtype
