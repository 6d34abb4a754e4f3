"""Reading protocol YAML safely: data only, no tags, no duplicate keys, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dbench.errors import ConfigError


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also rejects duplicate mapping keys (YAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; tags, duplicate keys and non-mapping documents are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read protocol file ({exc.strerror or exc})") from None
    try:
        # Protocols hold names and numbers only: any explicit tag (even a safe one such as !!str)
        # is refused so that no file can smuggle in constructors or type coercions.
        for token in yaml.scan(text, Loader=_StrictSafeLoader):
            if isinstance(token, yaml.TagToken):
                line = token.start_mark.line + 1
                raise ConfigError(
                    f"{path}: line {line}: YAML tags are not allowed in protocols; "
                    "write plain names and numbers"
                )
        data = yaml.load(text, Loader=_StrictSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a protocol must be a YAML mapping of keys to values")
    return data


__all__ = ["read_yaml"]
