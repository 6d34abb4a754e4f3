"""The one JSON helper: plain-data conversion, canonical text for hashes, atomic writes.

- :func:`jsonable` turns tuples, NumPy scalars and arrays and paths into plain JSON data, or raises a
  one-line :class:`~dbench.errors.ConfigError` naming where the offending value sits.
- :func:`canonical_json` is the text every hash is taken over: sorted keys, no spaces, ASCII, no NaN.
- :func:`write_json_atomic` writes through a temporary file in the same folder and a rename, so a
  killed run never leaves a half-written file; :func:`write_atomic` does the same for any writer
  (a checkpoint, a TorchScript file, a code shard).

Files written atomically get the permissions ``open()`` would give them (``0o666`` less the umask,
and a folder's default ACL): the temporary file is created with ``os.open(..., 0o666)`` rather than
``tempfile.mkstemp``, whose files are always ``0o600`` (unreadable to colleagues and web servers).

- :func:`file_sha256` is the hash of a file's bytes (encoder fingerprints, downloaded datasets).
- :func:`loads_bounded` / :func:`read_json_bounded` parse JSON that may be hostile: the size is
  checked before a byte is parsed and the nesting depth without recursion, so a huge or deeply nested
  file is one :class:`~dbench.errors.ConfigError` line instead of a MemoryError or RecursionError.

NumPy is never imported here: its scalars and arrays are recognised by their ``item``/``tolist``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path
from typing import Any

from dbench.errors import ConfigError


def jsonable(value: Any, where: str = "value", *, finite: bool = False) -> Any:
    """``value`` as plain JSON data: dicts with string keys, lists, str, int, float, bool, None.

    Tuples become lists, NumPy scalars Python numbers, NumPy arrays nested lists, paths strings.
    With ``finite=True`` a NaN or infinite float is an error. Anything else is a
    :class:`~dbench.errors.ConfigError` naming ``where`` (dotted down to the offending key).
    """
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        if finite and not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v, where, finite=finite) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{where}.{k}", finite=finite) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    shape = getattr(value, "shape", None)
    if shape == () and callable(getattr(value, "item", None)):  # a NumPy scalar or 0-d array
        return jsonable(value.item(), where, finite=finite)
    if shape is not None and callable(getattr(value, "tolist", None)):  # a NumPy array
        return jsonable(value.tolist(), where, finite=finite)
    raise ConfigError(f"{where}: value of type {type(value).__name__} cannot be written as JSON")


def canonical_json(data: Any) -> str:
    """Compact JSON with sorted keys: the same data always gives the same text (NaN refused)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty file next to ``name`` in ``folder``, opened for writing; mode ``0o666`` less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        # The target's suffix is kept: writers such as numpy.savez append ".npz" to any other name.
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp{Path(name).suffix}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file for {name} in {folder}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` when the block succeeds.

    The temporary file exists (empty, with the permissions ``open()`` would give it) when the block
    starts, so a writer that takes a file name (``torch.save``, ``numpy.savez``) keeps those
    permissions. If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path.parent, path.name)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one; the file gets the
    permissions ``open()`` would give it (see the module docstring).
    """
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` via a temporary file in the same folder and a rename."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())

    return write_atomic(path, write)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()



#: Default caps for JSON that may be hostile (a result file is a few kB; a protocol's resolved form is ~10 deep).
MAX_JSON_BYTES = 8 << 20
MAX_JSON_DEPTH = 64

# A string literal; an unterminated one runs to the end of the text (one linear pass, no retries).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """Deepest nesting of arrays and objects in JSON text, counted without recursion (strings skipped)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b'""', data))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def loads_bounded(data: bytes, *, source: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON bytes that may be hostile; one-line :class:`ConfigError` naming ``source`` otherwise.

    The size is checked first, then the nesting depth (linear time, no recursion), then the text is
    decoded as UTF-8 and parsed; NaN and infinities are accepted as ``json`` writes them.
    """
    if len(data) > max_bytes:
        raise ConfigError(f"{source}: {len(data):,} bytes is larger than the {max_bytes:,}-byte limit for this file; "
                          "it is not a file dbench wrote")
    depth = json_depth(data)
    if depth > max_depth:
        raise ConfigError(f"{source}: nested {depth} levels deep (at most {max_depth} allowed); it is not a file dbench wrote")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON (not UTF-8 text at byte {exc.start})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{source}: not valid JSON ({str(exc).splitlines()[0] if str(exc) else 'too deep'})") from None


def read_json_bounded(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES,
                      max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read and parse a JSON file with :func:`loads_bounded`; the size is checked before reading."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise ConfigError(f"{path}: {size:,} bytes is larger than the {max_bytes:,}-byte limit for this file; "
                                  "it is not a file dbench wrote")
            data = handle.read(max_bytes + 1)  # a file growing while read is still capped
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return loads_bounded(data, source=str(path), max_bytes=max_bytes, max_depth=max_depth)


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "atomic_path", "canonical_json", "file_sha256", "json_depth",
           "jsonable", "loads_bounded", "read_json_bounded", "write_atomic", "write_json_atomic"]
