"""Reading protocol YAML safely: data only, bounded in size and depth, one-line errors.

A protocol is a few KB of names and numbers, so a file is refused before it is parsed when it

* is larger than :data:`MAX_PROTOCOL_BYTES` (at most that many bytes are ever read, whatever the file);
* is not UTF-8 text;
* uses a tag (``!!python/object``, ``!custom``, even a harmless ``!!str``): no constructor or type
  coercion can be smuggled in;
* uses an anchor or an alias (``&a`` / ``*a``): the "billion laughs" file expands a few lines into
  billions of nodes, and a protocol never needs to repeat a value by reference;
* nests deeper than :data:`MAX_DEPTH` (a protocol nests three levels; the parser recurses per level).

Those checks run on the token stream, which PyYAML produces without recursion, so a 100,000-deep
file is refused in milliseconds instead of ending in ``RecursionError``. Duplicate keys are refused
too (YAML silently keeps the last). Every message names the file and the line, quotes at most a short
excerpt of the input, and is one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dbench.errors import ConfigError, excerpt

#: Largest protocol file read, in bytes (the bundled ones are under 2 KB).
MAX_PROTOCOL_BYTES = 256 * 1024
#: Deepest nesting of mappings and lists (a protocol needs 3: metrics -> metric -> parameter list).
MAX_DEPTH = 16

_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
            yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also rejects duplicate mapping keys (YAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping (keys must be names)", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {excerpt(key, 60)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _check_tokens(text: str, source: str) -> None:
    """Refuse tags, anchors, aliases and deep nesting, reading tokens only (no recursion, no expansion)."""
    depth = 0
    for token in yaml.scan(text, Loader=_StrictSafeLoader):
        line = token.start_mark.line + 1
        if isinstance(token, yaml.TagToken):
            raise ConfigError(f"{source}: line {line}: YAML tags are not allowed in protocols; write plain names and numbers")
        if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
            raise ConfigError(
                f"{source}: line {line}: YAML anchors and aliases (&name, *name) are not allowed in protocols; "
                "write each value out"
            )
        if isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(
                    f"{source}: line {line}: nested more than {MAX_DEPTH} levels deep; a protocol is a mapping of "
                    "names to numbers, names and short lists"
                )
        elif isinstance(token, _CLOSING):
            depth -= 1


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML ``text`` (a protocol or one ``--set`` value) with every bound above; any YAML value."""
    if len(text) > MAX_PROTOCOL_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters, more than the {MAX_PROTOCOL_BYTES:,} a protocol may have")
    try:
        _check_tokens(text, source)
        return yaml.load(text, Loader=_StrictSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{source}: {where}invalid YAML: {problem[:120]}") from None
    except RecursionError:  # defence in depth: the depth check above should make this unreachable
        raise ConfigError(f"{source}: nested too deeply to read; a protocol nests three levels") from None


def _read_bounded(path: Path) -> str:
    """The file's text, reading at most one byte more than the cap (so /dev/zero-like files cost nothing)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROTOCOL_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read protocol file ({exc.strerror or exc})") from None
    if len(data) > MAX_PROTOCOL_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_PROTOCOL_BYTES // 1024} KB; a protocol is a short file of names and numbers "
            "(move long descriptions into the documentation)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the protocol as UTF-8") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; oversized, non-UTF-8, tagged, aliased, deep, duplicate-key or non-mapping files are errors."""
    data = load_yaml_text(_read_bounded(path), str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a protocol must be a YAML mapping of keys to values")
    return data


__all__ = ["MAX_DEPTH", "MAX_PROTOCOL_BYTES", "load_yaml_text", "read_yaml"]
