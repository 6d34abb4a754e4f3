"""The protocols shipped with dbench, and finding a protocol file by path or bundled name."""

from __future__ import annotations

import os
from pathlib import Path

from dbench.errors import ConfigError, excerpt


def bundled_protocols_dir() -> Path:
    """Folder of the protocols shipped with dbench.

    ``dbench/bundled_protocols`` is a symlink to the repository's top-level ``protocols/`` folder, and
    a real folder of package data in an installed wheel. Where a checkout has no symlinks (Windows
    without ``core.symlinks``), the ``protocols/`` folder beside the package is used.
    """
    package = Path(__file__).resolve().parent.parent
    packaged = package / "bundled_protocols"
    if packaged.is_dir():
        return packaged
    return package.parent / "protocols"


def list_protocols() -> list[str]:
    """Names of the bundled protocols, sorted."""
    return sorted(p.stem for p in bundled_protocols_dir().glob("*.yaml"))


def bundled_file(name: str) -> Path | None:
    """The bundled protocol called ``name`` (``quick`` or ``quick.yaml``), if there is one."""
    if "/" in name or "\\" in name:
        return None
    path = bundled_protocols_dir() / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def locate(name_or_path: str | os.PathLike[str]) -> Path:
    """A file path as given, or the bundled protocol of that name (``quick`` or ``quick.yaml``)."""
    path = Path(name_or_path)
    found = path if path.is_file() else bundled_file(str(name_or_path))
    if found is None:
        raise ConfigError(
            f"protocol {excerpt(str(name_or_path))} not found: give a protocol file path or a bundled name "
            f"({', '.join(list_protocols()) or 'none'})"
        )
    return found


__all__ = ["bundled_file", "bundled_protocols_dir", "list_protocols", "locate"]
