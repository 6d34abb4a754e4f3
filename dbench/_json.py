"""The one JSON helper: plain-data conversion, canonical text for hashes, atomic writes.

- :func:`jsonable` turns tuples, NumPy scalars and arrays and paths into plain JSON data, or raises a
  one-line :class:`~dbench.errors.ConfigError` naming where the offending value sits.
- :func:`canonical_json` is the text every hash is taken over: sorted keys, no spaces, ASCII, no NaN.
- :func:`write_json_atomic` writes through a temporary file in the same folder and a rename, so a
  killed run never leaves a half-written file.
- :func:`loads_bounded` / :func:`read_json_bounded` parse JSON that may be hostile: the size is
  checked before a byte is parsed and the nesting depth without recursion, so a huge or deeply nested
  file is one :class:`~dbench.errors.ConfigError` line instead of a MemoryError or RecursionError.

NumPy is never imported here: its scalars and arrays are recognised by their ``item``/``tolist``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from itertools import accumulate
from collections.abc import Mapping
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


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "canonical_json", "json_depth", "jsonable", "loads_bounded",
           "read_json_bounded", "write_json_atomic"]
