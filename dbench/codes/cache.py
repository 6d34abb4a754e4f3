"""The on-disk code cache: encoded batches written as shards, checked when read, healed when bad.

One folder per (encoder fingerprint, dataset) in the cache folder, named :func:`cache_key`::

    <cache_dir>/<key>/cache.json                     what the folder holds (fingerprint, dataset, code width)
    <cache_dir>/<key>/shard-<time_ns>-<sha256>.npz   one encoded batch: indices, mean and maybe logvar
    <cache_dir>/<key>/quarantine/                    shards that failed their check (kept, never read)

**Writing.** A shard is written to a temporary file in the folder, flushed and fsynced, renamed to its
final name (which carries the SHA-256 of its bytes) and the folder is fsynced: a shard appears whole
or not at all, also after a crash. A write that fails (read-only folder, full disk, quota) removes
its temporary file, warns once (:class:`CacheWarning`) and switches writing off for the rest of the
run; the evaluation goes on without caching. A folder that cannot be created or listed does the same.

**Reading.** Every shard is checked before use: its bytes against the checksum in its name, then as
an ``.npz`` without pickles: its keys, its indices (a 1-D integer array inside the dataset) and its
codes through the one validator of codes (:func:`dbench.encoders.validation.validate_codes`: real,
finite, not huge, the folder's code width, a log-variance to match the mean). A shard that fails is
moved to ``quarantine/`` with a one-line warning naming it and what is wrong, and its observations are
simply encoded again. Shards written before checksums (``shard-<time>-<16 hex>.npz``) get the same
checks without the checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dbench._json import atomic_path, read_json_bounded
from dbench._version import __version__
from dbench.datasets.base import GroundTruthDataset, num_observations
from dbench.encoders.validation import validate_codes, validate_indices
from dbench.errors import ConfigError, DbenchError, excerpt

MANIFEST = "cache.json"
QUARANTINE = "quarantine"
MANIFEST_FORMAT = 1
#: A shard: ``shard-<time_ns>-<sha256 of its bytes>.npz`` (legacy: 16 hex digits, no checksum).
SHARD_NAME = re.compile(r"^shard-(?P<time>\d+)-(?P<digest>[0-9a-f]{64}|[0-9a-f]{16})\.npz$")
#: A file being written (``dbench._json.atomic_path``'s ``.<name>.<hex>.tmp<suffix>``; legacy ``.shard-*.tmp``).
TMP_NAME = re.compile(r"^\.(shard-|cache\.json).*\.tmp(\.npz|\.json)?$")
#: No shard dbench writes comes near this; a bigger file is not read into memory.
MAX_SHARD_BYTES = 4 << 30
#: A manifest is a few hundred bytes; a bigger ``cache.json`` is not read.
MAX_MANIFEST_BYTES = 1 << 20
# A temporary file older than this belongs to a run that died mid-write (a live write takes seconds).
_STALE_TMP_SECONDS = 3600.0


class CacheWarning(UserWarning):
    """The code cache could not be used as asked (a bad shard, a read-only or full folder); the run goes on."""


class _BadShard(DbenchError):
    """A shard file that is not a sound shard of this cache (the message says why)."""


def cache_key(encoder_fingerprint: str, dataset: GroundTruthDataset) -> str:
    """Folder name of the on-disk cache for one encoder on one dataset."""
    ident = {
        "encoder": encoder_fingerprint,
        "dataset": dataset.name,
        "factor_sizes": list(dataset.factor_sizes),
        "observation_shape": list(dataset.observation_shape),
        "dataset_id": getattr(dataset, "cache_id", ""),
    }
    # Not canonical_json: the key's text is kept exactly as earlier versions wrote it, so existing
    # caches stay valid.
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Shard:
    """The checked contents of one shard."""

    indices: np.ndarray
    mean: np.ndarray
    logvar: np.ndarray | None


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=3)


def _reason(exc: BaseException) -> str:
    """The problem part of an error (before its '; how to fix it'), on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, DbenchError):
        text = text.split("; ")[0]
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 160 else text[:157] + "..."


def _written_at(name: str) -> tuple[int, str]:
    """Sort key of a shard name: the time it was written, then the name."""
    match = SHARD_NAME.match(name)
    return (int(match["time"]) if match else 0, name)


def _with(flag: bool) -> str:
    return "with" if flag else "without"


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def shard_bytes(indices: np.ndarray, mean: np.ndarray, logvar: np.ndarray | None) -> bytes:
    """The ``.npz`` bytes of one shard (uncompressed, no pickles)."""
    arrays = {"indices": np.asarray(indices, dtype=np.int64), "mean": np.asarray(mean)}
    if logvar is not None:
        arrays["logvar"] = np.asarray(logvar)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's ``cache.json`` as a mapping, or None when it is missing or not a JSON object."""
    try:
        data = read_json_bounded(folder / MANIFEST, max_bytes=MAX_MANIFEST_BYTES)  # a few hundred bytes when sound
    except ConfigError:  # missing, unreadable, too big, too deep or not JSON
        return None
    return data if isinstance(data, dict) else None


class ShardCache:
    """The shards of one encoder on one dataset, in ``cache_dir / cache_key(...)``.

    ``width`` and ``has_logvar`` are what the cached codes look like (None until known); ``writable``
    turns False after a write fails (one warning), ``usable`` when the folder cannot be used at all.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], fingerprint: str, dataset: GroundTruthDataset) -> None:
        self.path = Path(cache_dir).absolute() / cache_key(fingerprint, dataset)
        self.fingerprint = fingerprint
        self.dataset = dataset
        self.n_observations = num_observations(dataset)
        self.width: int | None = None
        self.has_logvar: bool | None = None
        self.usable = True
        self.writable = True
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if not self.path.is_dir():
                raise NotADirectoryError(20, "Not a directory", str(self.path))
        except OSError as exc:
            self._give_up(f"cannot use cache folder {self.path} ({_reason(exc)}); going on without a cache")
            return
        self._open_manifest()
        self._remove_stale_tmp()

    # -- the folder's manifest -----------------------------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "fingerprint": self.fingerprint,
            "dataset": self.dataset.name,
            "dataset_id": getattr(self.dataset, "cache_id", ""),
            "factor_sizes": [int(n) for n in self.dataset.factor_sizes],
            "observation_shape": [int(n) for n in self.dataset.observation_shape],
            "n_latents": self.width,
            "logvar": self.has_logvar,
            "dbench_version": __version__,
        }

    def _open_manifest(self) -> None:
        manifest_path = self.path / MANIFEST
        data = read_manifest(self.path)
        if data is not None and data.get("fingerprint") == self.fingerprint and data.get("dataset") == self.dataset.name:
            width, logvar = data.get("n_latents"), data.get("logvar")
            self.width = width if isinstance(width, int) and not isinstance(width, bool) and width > 0 else None
            self.has_logvar = logvar if isinstance(logvar, bool) else None
            return
        if manifest_path.exists():
            self._quarantine(manifest_path, "is unreadable or describes another encoder or dataset")
        self._write_manifest()

    def _write_manifest(self) -> None:
        if not self.writable:
            return
        text = json.dumps(self._manifest(), indent=2, sort_keys=True) + "\n"
        self._write_file(self.path / MANIFEST, text.encode())

    # -- writing -------------------------------------------------------------------------------

    def write(self, batch: np.ndarray, mean: np.ndarray, logvar: np.ndarray | None) -> None:
        """Write one encoded batch as a shard (never raises for a folder that cannot be written)."""
        if not (self.usable and self.writable):
            return
        data = shard_bytes(batch, mean, logvar)
        name = f"shard-{time.time_ns()}-{hashlib.sha256(data).hexdigest()}.npz"
        if not self._write_file(self.path / name, data):
            return
        if self.width is None or self.has_logvar is None:
            self.width, self.has_logvar = int(np.asarray(mean).shape[1]), logvar is not None
            self._write_manifest()

    def _write_file(self, target: Path, data: bytes) -> bool:
        """Write ``data`` to ``target`` atomically and durably; on failure warn once and stop writing.

        The temporary file gets the permissions ``open()`` would give it (a shared cache folder stays
        shared) and is removed if the write fails or is interrupted, so no ``.tmp`` is left behind.
        """
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_folder(self.path)
            return True
        except OSError as exc:
            self.writable = False
            _warn(f"cannot write to cache folder {self.path} ({_reason(exc)}); going on without caching new codes")
            return False

    # -- reading -------------------------------------------------------------------------------

    def shard_paths(self) -> list[Path]:
        """Shard files in the folder, oldest first."""
        if not self.usable:
            return []
        try:
            names = [entry.name for entry in os.scandir(self.path) if entry.is_file() and SHARD_NAME.match(entry.name)]
        except OSError as exc:
            self._give_up(f"cannot list cache folder {self.path} ({_reason(exc)}); going on without a cache")
            return []
        return [self.path / name for name in sorted(names, key=_written_at)]

    def read(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(indices, mean, logvar or None)`` of every shard that passes its checks, oldest first.

        Shards that fail are quarantined (one warning each). When the folder does not say the code
        width, the width (and whether a log-variance is stored) of most cached rows is taken and the
        shards that disagree are quarantined too.
        """
        shards: list[tuple[Path, Shard]] = []
        for path in self.shard_paths():
            try:
                shards.append((path, self._load(path)))
            except Exception as exc:  # noqa: BLE001 - any unreadable shard is re-encoded
                self._quarantine(path, _reason(exc))
        if shards and (self.width is None or self.has_logvar is None):
            rows = Counter[tuple[int, bool]]()
            for _, shard in shards:
                rows[(shard.mean.shape[1], shard.logvar is not None)] += shard.indices.size
            (self.width, self.has_logvar), _ = rows.most_common(1)[0]
            self._write_manifest()
        for path, shard in shards:
            if shard.mean.shape[1] != self.width or (shard.logvar is not None) != self.has_logvar:
                self._quarantine(path, f"holds codes of width {shard.mean.shape[1]} {_with(shard.logvar is not None)} "
                                       f"logvar where the cache holds width {self.width} {_with(bool(self.has_logvar))}")
                continue
            yield shard.indices, shard.mean, shard.logvar

    def _load(self, path: Path) -> Shard:
        """One shard, checked; raises (any exception) when it is not a sound shard of this cache."""
        size = path.stat().st_size
        if size > MAX_SHARD_BYTES:
            raise _BadShard(f"{size:,} bytes, more than any shard dbench writes")
        data = path.read_bytes()
        digest = SHARD_NAME.match(path.name)["digest"]  # type: ignore[index]
        if len(digest) == 64 and hashlib.sha256(data).hexdigest() != digest:
            raise _BadShard("its bytes do not match the checksum in its name: changed or damaged since it was written")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            files = set(npz.files)
            if not {"indices", "mean"} <= files or not files <= {"indices", "mean", "logvar"}:
                raise _BadShard(f"keys {excerpt(sorted(files))}; a shard holds indices, mean and optionally logvar")
            indices = validate_indices(npz["indices"], self.n_observations, "holds")
            batch = validate_codes(npz["mean"], npz["logvar"] if "logvar" in files else None, indices.size,
                                   origin="holds", width=self.width)
        return Shard(indices, batch.mean, batch.logvar)

    # -- healing -------------------------------------------------------------------------------

    def _quarantine(self, path: Path, problem: str) -> None:
        """Move a bad file into ``quarantine/`` (never read again) with a one-line warning."""
        target = self.path / QUARANTINE / path.name
        try:
            target.parent.mkdir(exist_ok=True)
            if target.exists():
                target = target.with_name(f"{path.name}.{time.time_ns()}")
            os.replace(path, target)
            where = f"moved to {QUARANTINE}/"
        except OSError as exc:
            where = f"left in place (cannot move it: {_reason(exc)})"
        if path.name == MANIFEST:
            _warn(f"cache manifest {path} {problem}; {where}, a new one is written")
        else:
            _warn(f"cache shard {path} is unusable ({problem}); {where}, its observations are encoded again")

    def _remove_stale_tmp(self) -> None:
        """Remove temporary files left by runs that died mid-write (older than an hour)."""
        with contextlib.suppress(OSError):
            now = time.time()
            for entry in os.scandir(self.path):
                if TMP_NAME.match(entry.name):
                    with contextlib.suppress(OSError):
                        if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                            os.unlink(entry.path)

    def _give_up(self, message: str) -> None:
        self.usable = self.writable = False
        _warn(message)


__all__ = [
    "MANIFEST",
    "QUARANTINE",
    "SHARD_NAME",
    "TMP_NAME",
    "CacheWarning",
    "Shard",
    "ShardCache",
    "cache_key",
    "read_manifest",
]
