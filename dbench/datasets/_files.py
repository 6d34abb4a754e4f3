"""Finding dataset files and checking their layout, with one-line :class:`DatasetError` messages.

Also reads ``.npz`` members without holding a second full copy in memory: a member stored uncompressed
(``numpy.savez``) is memory-mapped in place; a compressed one (``numpy.savez_compressed``, like the
official dSprites file) is streamed in row chunks.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dbench.errors import DatasetError

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


class NpzFile:
    """Read-only access to the arrays of an ``.npz`` file, member by member, without pickles."""

    def __init__(self, dataset: str, path: Path) -> None:
        self.dataset = dataset
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise DatasetError(f"{dataset}: {self.path} is not a readable .npz file ({reason}); download it again") from None
        self.keys = {name[: -len(".npy")]: name for name in self._zip.namelist() if name.endswith(".npy")}

    def close(self) -> None:
        self._zip.close()

    def require(self, *keys: str) -> None:
        """DatasetError listing the missing keys and the keys present."""
        missing = [k for k in keys if k not in self.keys]
        if missing:
            raise DatasetError(
                f"{self.dataset}: {self.path.name} lacks key(s) {missing}; it has {sorted(self.keys)} "
                f"(expected the official file's keys {list(keys)})"
            )

    def header(self, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
        """``(shape, dtype, offset of the array data inside the member)`` of member ``key``."""
        with self._zip.open(self.keys[key]) as f:
            shape, dtype = _read_npy_header(self.dataset, self.path, key, f)
            return shape, dtype, f.tell()

    def load(self, key: str) -> np.ndarray:
        """The whole array of member ``key`` (for the small arrays: labels, factor values)."""
        with self._zip.open(self.keys[key]) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def memmap(self, key: str) -> np.ndarray | None:
        """A read-only memory map of member ``key`` if it is stored uncompressed, else ``None``."""
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
        return np.memmap(self.path, dtype=dtype, mode="r", offset=member_start + data_offset, shape=shape)

    def iter_rows(self, key: str, rows_per_chunk: int) -> Iterator[np.ndarray]:
        """Consecutive row blocks of member ``key`` (decompressed on the fly, one block in memory at a time)."""
        with self._zip.open(self.keys[key]) as f:
            shape, dtype = _read_npy_header(self.dataset, self.path, key, f)
            row_items = int(np.prod(shape[1:], dtype=np.int64))
            for start in range(0, shape[0], rows_per_chunk):
                rows = min(rows_per_chunk, shape[0] - start)
                nbytes = rows * row_items * dtype.itemsize
                buf = f.read(nbytes)
                if len(buf) != nbytes:
                    raise DatasetError(f"{self.dataset}: {self.path.name} key {key!r} is truncated")
                yield np.frombuffer(buf, dtype=dtype).reshape((rows,) + shape[1:])


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
