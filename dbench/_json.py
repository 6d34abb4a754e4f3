"""The one JSON helper: plain-data conversion, canonical text for hashes, atomic writes.

- :func:`jsonable` turns tuples, NumPy scalars and arrays and paths into plain JSON data, or raises a
  one-line :class:`~dbench.errors.ConfigError` naming where the offending value sits.
- :func:`canonical_json` is the text every hash is taken over: sorted keys, no spaces, ASCII, no NaN.
- :func:`write_json_atomic` writes through a temporary file in the same folder and a rename, so a
  killed run never leaves a half-written file.

NumPy is never imported here: its scalars and arrays are recognised by their ``item``/``tolist``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
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


__all__ = ["canonical_json", "jsonable", "write_json_atomic"]
