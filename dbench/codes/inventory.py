"""What a code-cache folder holds, and removing it (``dbench cache ls`` / ``dbench cache clear``).

A cache folder (``--cache-dir``) holds one entry per (encoder fingerprint, dataset): a folder named by
:func:`~dbench.codes.cache.cache_key` with a ``cache.json`` saying which encoder and dataset, the
shards, and the quarantined shards (see :mod:`dbench.codes.cache`). Anything else in the cache folder
(numba's kernels in ``numba/``, the user's own files) is neither listed nor touched: an entry is a
folder with a 24-hex-digit name holding a manifest or shards, and clearing removes only the files
dbench writes there (shards, manifest, quarantine, temporary files), so a mistaken ``--cache-dir ~``
deletes nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dbench.codes.cache import (
    MANIFEST,
    QUARANTINE,
    SHARD_NAME,
    TMP_NAME,
    read_manifest,
)
from dbench.errors import ConfigError

CACHE_DIR_ENV = "DBENCH_CACHE_DIR"
_ENTRY_NAME = re.compile(r"^[0-9a-f]{24}$")


def default_cache_dir() -> Path:
    """``$DBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/dbench`` (absolute only), else ``~/.cache/dbench``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "dbench"
    return Path.home() / ".cache" / "dbench"


@dataclass(frozen=True)
class CacheEntry:
    """One (encoder, dataset) entry of a cache folder; ``fingerprint``/``dataset`` are None when unknown."""

    path: Path
    fingerprint: str | None
    dataset: str | None
    n_latents: int | None
    n_shards: int
    n_observations: int
    n_bytes: int
    n_quarantined: int
    last_written: float | None

    @property
    def key(self) -> str:
        return self.path.name


def _shard_rows(path: Path) -> int:
    """Rows of a shard, from the header of its ``indices`` member (0 when unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("indices.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(member)
        return int(shape[0]) if len(shape) == 1 else 0
    except Exception:  # noqa: BLE001 - a listing never fails on one bad shard
        return 0


def _is_entry(folder: Path) -> bool:
    if not (_ENTRY_NAME.match(folder.name) and folder.is_dir()):
        return False
    with contextlib.suppress(OSError):
        return any(p.name == MANIFEST or p.name == QUARANTINE or SHARD_NAME.match(p.name) for p in folder.iterdir())
    return False


def _folder(root: str | os.PathLike[str]) -> Path:
    root = Path(root).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--cache-dir {root} is a file, not a folder; give the folder passed to `dbench evaluate --cache-dir`")
    return root


def list_caches(root: str | os.PathLike[str]) -> list[CacheEntry]:
    """Every entry of the cache folder ``root``, largest first (an absent folder holds none)."""
    root = _folder(root)
    if not root.is_dir():
        return []
    try:
        candidates = [p for p in root.iterdir() if _is_entry(p)]
    except OSError as exc:
        raise ConfigError(f"cannot list cache folder {root} ({exc.strerror or exc})") from None
    entries = [_entry(folder) for folder in candidates]
    return sorted(entries, key=lambda e: (-e.n_bytes, e.key))


def _entry(folder: Path) -> CacheEntry:
    manifest = read_manifest(folder) or {}
    shards, n_bytes, rows, newest = 0, 0, 0, None
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            stat = path.stat()
            if path.is_file():
                n_bytes += stat.st_size
            if SHARD_NAME.match(path.name):
                shards += 1
                rows += _shard_rows(path)
                newest = stat.st_mtime if newest is None else max(newest, stat.st_mtime)
    quarantined = 0
    with contextlib.suppress(OSError):
        for path in (folder / QUARANTINE).iterdir():
            quarantined += 1
            n_bytes += path.stat().st_size
    width = manifest.get("n_latents")
    return CacheEntry(
        path=folder,
        fingerprint=manifest.get("fingerprint") if isinstance(manifest.get("fingerprint"), str) else None,
        dataset=manifest.get("dataset") if isinstance(manifest.get("dataset"), str) else None,
        n_latents=width if isinstance(width, int) and not isinstance(width, bool) else None,
        n_shards=shards,
        n_observations=rows,
        n_bytes=n_bytes,
        n_quarantined=quarantined,
        last_written=newest,
    )


def _matches(entry: CacheEntry, fingerprint: str | None, dataset: str | None) -> bool:
    if fingerprint is not None and not (entry.fingerprint or "").startswith(fingerprint):
        return False
    return dataset is None or entry.dataset == dataset


def _ours(name: str) -> bool:
    return name == MANIFEST or bool(SHARD_NAME.match(name)) or bool(TMP_NAME.match(name))


def remove_entry(entry: CacheEntry) -> list[str]:
    """Delete what dbench wrote in one entry; the names of other files, which are left (with the folder)."""
    kept: list[str] = []
    quarantine = entry.path / QUARANTINE
    if quarantine.is_dir():
        for path in quarantine.iterdir():
            if path.is_file():
                path.unlink()
            else:
                kept.append(f"{QUARANTINE}/{path.name}")
        if not kept:
            quarantine.rmdir()
    for path in entry.path.iterdir():
        if path.is_file() and _ours(path.name):
            path.unlink()
        elif path.name != QUARANTINE:
            kept.append(path.name)
    if not kept:
        entry.path.rmdir()
    return kept


def clear_caches(
    root: str | os.PathLike[str], *, fingerprint: str | None = None, dataset: str | None = None
) -> tuple[list[CacheEntry], list[str]]:
    """Remove the entries matching ``fingerprint`` (a prefix) and ``dataset``; None matches any.

    Returns the removed entries and a note per file that was not dbench's and so was left. An
    ``OSError`` (a read-only folder) stops at the entry it happened in.
    """
    removed, notes = [], []
    for entry in list_caches(root):
        if not _matches(entry, fingerprint, dataset):
            continue
        kept = remove_entry(entry)
        removed.append(entry)
        notes += [f"{entry.path / name} (not written by dbench)" for name in kept]
    return removed, notes


__all__ = ["CACHE_DIR_ENV", "CacheEntry", "clear_caches", "default_cache_dir", "list_caches", "remove_entry"]
