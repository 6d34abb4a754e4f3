"""Subcommands from other packages, through the entry-point group ``dbench.commands``.

A package declares, in its ``pyproject.toml``::

    [project.entry-points."dbench.commands"]
    my-plugin = "my_package.cli:register"

and ``register(subparsers)`` adds its subcommands like dbench's own (each sets ``func(args) -> int``
and raises :class:`dbench.errors.DbenchError` for a one-line error). The reference models plug in
``train``, ``traverse`` and ``plot-losses`` this way; dbench never imports them by name. A plugin that
cannot be loaded costs one warning line on stderr, never the rest of the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "dbench.commands"


def plugin_entry_points() -> list[EntryPoint]:
    """The entry points of :data:`GROUP`, by name; one of each (name, target) even if found twice."""
    unique: dict[tuple[str, str], EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        unique.setdefault((ep.name, ep.value), ep)
    return [unique[key] for key in sorted(unique)]


def add_plugin_commands(subparsers: Any, warn: Callable[[str], None]) -> list[str]:
    """Let every plugin register its subcommands; return the names of the plugins that did.

    A plugin whose import or ``register`` fails (a missing dependency, a clash with an existing
    command) is reported with one line through ``warn`` and skipped.
    """
    loaded = []
    for ep in plugin_entry_points():
        try:
            register = ep.load()
            register(subparsers)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the dbench CLI
            reason = (str(exc).strip().splitlines() or [""])[0]
            warn(f"dbench: warning: plugin {ep.name!r} ({ep.value}) was not loaded: "
                 f"{exc.__class__.__name__}: {reason}; its commands are unavailable (reinstall it or its "
                 "dependencies)")
            continue
        loaded.append(ep.name)
    return loaded


__all__ = ["GROUP", "add_plugin_commands", "plugin_entry_points"]
