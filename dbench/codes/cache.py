"""The on-disk code cache: encoded batches written as shards, read back on the next run.

One folder per (encoder fingerprint, dataset) under the user's cache folder; each encoded batch is one
``shard-<time>-<hash>.npz`` holding ``indices``, ``mean`` and, for encoders that give one, ``logvar``.
A shard appears whole (written to a temporary file, then renamed), so an interrupted run leaves only
complete shards and the next run resumes from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dbench._json import atomic_path
from dbench.datasets.base import GroundTruthDataset


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


class ShardCache:
    """The shards of one encoder on one dataset, in ``cache_dir / cache_key(...)``."""

    def __init__(self, cache_dir: str | os.PathLike[str], fingerprint: str, dataset: GroundTruthDataset) -> None:
        self.path = Path(cache_dir) / cache_key(fingerprint, dataset)
        self.path.mkdir(parents=True, exist_ok=True)

    def write(self, batch: np.ndarray, mean: np.ndarray, logvar: np.ndarray | None) -> None:
        """Write one encoded batch as a shard."""
        arrays = {"indices": batch, "mean": np.asarray(mean)}
        if logvar is not None:
            arrays["logvar"] = np.asarray(logvar)
        # Shards are named by content so rewriting one is harmless; the rename makes it appear whole
        # (with the permissions open() would give it, so a shared cache folder stays shared).
        name = hashlib.sha256(batch.tobytes()).hexdigest()[:16]
        with atomic_path(self.path / f"shard-{time.time_ns()}-{name}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]

    def read(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(indices, mean, logvar or None)`` of every readable shard, oldest first."""
        for shard in sorted(self.path.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    batch = data["indices"].astype(np.int64)
                    mean = data["mean"]
                    logvar = data["logvar"] if "logvar" in data.files else None
            except (OSError, ValueError, KeyError):
                continue  # a shard that cannot be read is simply re-encoded
            yield batch, mean, logvar


__all__ = ["ShardCache", "cache_key"]
