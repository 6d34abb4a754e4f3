"""The encode-once code table: every observation index is encoded at most once per evaluation.

Codes are kept on the host as NumPy (mean and, when the encoder gives one, log-variance), keyed by
flat observation index. With a cache folder, every encoded batch is also written to disk as a shard
(:mod:`dbench.codes.cache`), keyed by the encoder fingerprint and the dataset, so an interrupted run
resumes without re-encoding; shards that fail their checks are quarantined and encoded again.

Codes from every source pass the one validator of codes
(:func:`dbench.encoders.validation.validate_codes`): the encoder's own output in
:meth:`~dbench.encoders.LoadedEncoder.encode`, cache shards when they are read, precomputed codes in
:meth:`CodeTable.add`. The table itself holds them to one width and one kind (with or without a
log-variance) whatever their source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from dbench._progress import Progress
from dbench.codes.cache import ShardCache
from dbench.datasets.base import GroundTruthDataset, num_observations
from dbench.encoders.validation import validate_codes, validate_indices
from dbench.errors import EncoderError


class CodeTable:
    """Codes for observation indices, computed on demand in batches and never twice.

    ``encode_batch(images) -> (mean, logvar | None)`` is the validated encoder call.
    """

    def __init__(
        self,
        dataset: GroundTruthDataset,
        encode_batch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
        *,
        batch_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
        fingerprint: str = "",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.dataset = dataset
        self.encode_batch = encode_batch
        self.batch_size = batch_size
        # row_of[flat index] = row in the table, -1 when not encoded yet (vectorised membership).
        self._row_of = np.full(num_observations(dataset), -1, dtype=np.int64)
        self._mean: list[np.ndarray] = []
        self._logvar: list[np.ndarray] | None = None
        self._rows = 0
        self._stacked: tuple[np.ndarray, np.ndarray | None] | None = None
        self._width = 0
        self._first_source = ""
        self.n_encoded = 0  # images passed to the encoder by this table (cache hits excluded)
        self.n_cached = 0  # observations read from the cache
        self.first_batch: np.ndarray | None = None  # indices of the first batch this table encoded
        self.seconds_encoding = 0.0
        self.cache: ShardCache | None = None
        if cache_dir is not None:
            self.cache = ShardCache(cache_dir, fingerprint, dataset)
            for batch, mean, logvar in self.cache.read():
                _, first = np.unique(batch, return_index=True)
                keep = np.sort(first)
                keep = keep[self._row_of[batch[keep]] < 0]
                if keep.size:
                    self._append(batch[keep], mean[keep], None if logvar is None else logvar[keep])
                    self.n_cached += int(keep.size)

    def __len__(self) -> int:
        return self._rows

    # -- filling -----------------------------------------------------------------------------
    def missing(self, indices: np.ndarray) -> np.ndarray:
        """Unique indices not yet in the table, in order of first appearance."""
        flat = np.asarray(indices, dtype=np.int64).ravel()
        _, first = np.unique(flat, return_index=True)
        ordered = flat[np.sort(first)]
        return ordered[self._row_of[ordered] < 0]

    def ensure(self, indices: np.ndarray, *, progress: bool = False, desc: str = "encoding") -> int:
        """Encode every index of ``indices`` that is not in the table yet; return how many were encoded.

        If the encoder fails part-way, the batches encoded before the failure stay in the table (and
        in the cache), so the metrics they cover can still be scored and a rerun resumes.
        """
        todo = self.missing(indices)
        if todo.size == 0:
            return 0
        with Progress(desc, total=int(todo.size), unit="images", enabled=progress) as bar:
            for start in range(0, todo.size, self.batch_size):
                batch = todo[start : start + self.batch_size]
                t0 = time.perf_counter()
                images = self.dataset.images(batch)
                mean, logvar = self.encode_batch(images)
                self.seconds_encoding += time.perf_counter() - t0
                self._append(batch, mean, logvar, source="encoder")
                self.n_encoded += batch.size
                if self.first_batch is None:
                    self.first_batch = batch.copy()
                if self.cache is not None:
                    self.cache.write(batch, mean, logvar)
                bar.update(batch.size)
        return int(todo.size)

    def add(self, indices: np.ndarray, mean: np.ndarray, logvar: np.ndarray | None = None) -> None:
        """Put codes computed elsewhere (a submission's precomputed codes) into the table.

        They pass the same checks as an encoder's output (:func:`~dbench.encoders.validation.validate_codes`)
        and the indices must be flat indices of the dataset; an index given twice keeps its first row.
        """
        origin = "the precomputed codes hold"
        indices = validate_indices(np.asarray(indices).ravel(), self._row_of.size, origin)
        batch = validate_codes(mean, logvar, indices.size, origin=origin)
        _, first = np.unique(indices, return_index=True)
        keep = np.sort(first)
        keep = keep[self._row_of[indices[keep]] < 0]
        if keep.size:
            self._append(indices[keep], batch.mean[keep], None if batch.logvar is None else batch.logvar[keep],
                         source="precomputed codes")

    def _append(self, batch: np.ndarray, mean: np.ndarray, logvar: np.ndarray | None, *, source: str = "cache") -> None:
        mean = np.asarray(mean)
        if self._rows == 0:
            self._logvar = [] if logvar is not None else None
            self._width = int(mean.shape[1])
            self._first_source = source
        if mean.shape[1] != self._width or (logvar is None) != (self._logvar is None):
            raise EncoderError(self._mismatch_message(source, mean.shape[1], logvar is not None))
        self._row_of[batch] = np.arange(self._rows, self._rows + batch.size)
        self._rows += batch.size
        self._mean.append(mean)
        if self._logvar is not None:
            self._logvar.append(np.asarray(logvar))
        self._stacked = None

    def _mismatch_message(self, source: str, width: int, has_logvar: bool) -> str:
        got = f"{width} latents {'with' if has_logvar else 'without'} logvar"
        held = f"{self._width} latents {'with' if self._logvar is not None else 'without'} logvar"
        if self._first_source == "cache" and source == "encoder" and self.cache is not None:
            return (
                f"the encoder now returns {got} but its codes cached in {self.cache.path} have {held}: the encoder "
                "changed while its fingerprint did not (weights loaded from elsewhere?); run `dbench cache clear "
                f"--cache-dir {self.cache.path.parent} --fingerprint {self.cache.fingerprint}` or give the encoder "
                "a fingerprint attribute that changes with its weights"
            )
        return (
            f"{source} gave {got} where earlier codes ({self._first_source}) have {held}; "
            "the code size must not depend on the batch"
        )

    # -- reading -----------------------------------------------------------------------------
    @property
    def has_logvar(self) -> bool:
        return self._logvar is not None

    def lookup(self, indices: np.ndarray, *, part: str = "mean") -> np.ndarray:
        """Codes for ``indices`` (any shape) as ``indices.shape + (D,)``; every index must be present."""
        indices = np.asarray(indices, dtype=np.int64)
        mean, logvar = self._stack()
        source = mean if part == "mean" else logvar
        if source is None:
            raise EncoderError("the sampled representation needs an encoder that returns (mean, log-variance)")
        rows = self._row_of[indices.ravel()]
        if rows.size and rows.min() < 0:
            raise KeyError(f"observation {int(indices.ravel()[np.argmin(rows)])} has not been encoded")
        return source[rows].reshape(indices.shape + (source.shape[1],))

    def covers(self, indices: np.ndarray) -> bool:
        """Whether every index of ``indices`` is in the table."""
        return bool(np.all(self.has(indices)))

    def has(self, indices: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``indices`` (flattened) are in the table."""
        return self._row_of[np.asarray(indices, dtype=np.int64).ravel()] >= 0

    @property
    def width(self) -> int | None:
        """Code width (latents per observation), None while the table is empty."""
        return self._width if self._rows else None

    def _stack(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self._stacked is None:
            if not self._mean:
                raise KeyError("no observation has been encoded")
            mean = np.concatenate(self._mean)
            logvar = np.concatenate(self._logvar) if self._logvar is not None else None
            self._mean = [mean]
            self._logvar = [logvar] if logvar is not None else None
            self._stacked = (mean, logvar)
        return self._stacked
