"""Loading a protocol: find the file, merge its ``include``, validate it, report one line per problem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dbench.errors import ConfigError, excerpt
from dbench.protocols.model import Protocol
from dbench.protocols.registry import bundled_file, list_protocols, locate
from dbench.protocols.validation import short_key, validate_semantics
from dbench.protocols.yaml_io import read_yaml

# Keys of the including file that are never inherited: a protocol's identity is its own.
_OWN_KEYS: tuple[str, ...] = ("name", "version")


def _locate_include(target: Any, including: Path) -> Path:
    """``include:`` target: a path relative to the including file, else a bundled protocol name."""
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{including}: include: must be a file name such as 'quick.yaml'")
    local = including.parent / target
    found = local if local.is_file() else bundled_file(target)
    if found is None:
        raise ConfigError(
            f"{including}: include: {excerpt(target)} not found next to the file nor among bundled protocols "
            f"({', '.join(list_protocols()) or 'none'})"
        )
    return found


def merged_document(path: Path) -> dict[str, Any]:
    """The file's mapping with its ``include`` merged under it (one level; own keys win)."""
    data = read_yaml(path)
    target = data.pop("include", None)
    if target is None:
        return data
    base_path = _locate_include(target, path)
    base = read_yaml(base_path)
    if "include" in base:
        raise ConfigError(
            f"{path}: include: {base_path.name} itself has an include; only one level of include "
            "is allowed (copy the keys you need instead)"
        )
    for key in _OWN_KEYS:
        if key not in data:
            raise ConfigError(f"{path}: {key}: required in a protocol that uses include (not inherited)")
    return {**{k: v for k, v in base.items() if k not in _OWN_KEYS}, **data}


def _allowed_hint(error: Mapping[str, Any]) -> str:
    """What pydantic would accept at the error's location, in words."""
    kind, loc, got = error["type"], error["loc"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key; allowed: " + ", ".join(Protocol.model_fields)
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "").replace(" or ", ", ").replace("'", "")
        return f"got {excerpt(got)}; allowed: {expected}"
    if len(loc) >= 3 and loc[0] == "metrics":
        return f"got {excerpt(got)}; allowed: a number, a string, a boolean, null or a list of those"
    if len(loc) == 2 and loc[0] == "metrics":
        return f"got {excerpt(got)}; allowed: a mapping of parameter names to values (or nothing)"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    return f"{message} (got {excerpt(got)})"


# pydantic appends the union member it tried ("list[...]", "literal[...]", "int"...) to an error's
# location; those are type names, not keys a user wrote.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def _location(loc: tuple[Any, ...]) -> str:
    keys = [short_key(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
    return ".".join(keys) or "<top level>"


def _format_validation_error(source: str, exc: ValidationError) -> str:
    """One line: the first (most specific) problem, its key and what is allowed."""
    errors = exc.errors()
    # For a union field pydantic reports one error per member; the deepest is the informative one.
    first = max(errors, key=lambda e: len(e["loc"]))
    others = sorted({short_key(e["loc"][0]) for e in errors if e["loc"]} - {short_key(first["loc"][0]) if first["loc"] else None})
    listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    more = f" (and problems with {listed})" if others else ""
    return f"{source}: {_location(first['loc'])}: {_allowed_hint(first)}{more}"


def protocol_from_dict(data: Mapping[str, Any], source: str = "<protocol>") -> Protocol:
    """Validate an already merged protocol mapping (no ``include``); ``source`` names it in errors."""
    if "include" in data:
        raise ConfigError(f"{source}: include: only allowed in protocol files")
    try:
        protocol = Protocol.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    except RecursionError:  # a mapping built in Python can nest without the YAML reader's depth cap
        raise ConfigError(f"{source}: nested too deeply; a protocol nests three levels") from None
    protocol._source = source
    validate_semantics(protocol)
    return protocol


def load_protocol(name_or_path: str | os.PathLike[str] | Protocol | Mapping[str, Any]) -> Protocol:
    """Read and validate a protocol: a bundled name (``"quick"``), a YAML file path or a mapping.

    Raises :class:`~dbench.errors.ConfigError` with one line naming the file, the key and what is
    allowed.
    """
    if isinstance(name_or_path, Protocol):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return protocol_from_dict(name_or_path, source="<protocol mapping>")
    path = locate(name_or_path)
    return protocol_from_dict(merged_document(path), source=str(path))


def protocol_description(name_or_path: str | os.PathLike[str]) -> str:
    """The ``description`` of a protocol file on one line, read without validating the protocol."""
    return " ".join(str(merged_document(locate(name_or_path)).get("description", "")).split())


__all__ = ["load_protocol", "merged_document", "protocol_description", "protocol_from_dict"]
