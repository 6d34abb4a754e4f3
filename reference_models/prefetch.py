"""Produce the next training batches in a background thread, in order, with the RNG state of each.

The thread draws from its own copy of the data generator, so the batches are exactly those that
drawing in the training loop would give. Each batch comes with the generator's state *after* it was
drawn: the training loop adopts that state once the batch's step is done, so a checkpoint records the
state of the last completed step, never that of batches the thread has drawn ahead.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

#: Seconds between the producer's checks whether the consumer has gone.
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Prefetched(Generic[T]):
    """One produced item and the generator state right after producing it."""

    item: T
    rng_state: dict[str, Any]


@dataclass(frozen=True)
class _Failure:
    error: BaseException



class Prefetcher(Generic[T]):
    """Iterate over ``count`` items ``produce(rng)``, produced up to ``depth`` ahead in a thread.

    Parameters
    ----------
    produce : callable
        ``produce(rng) -> item``; called ``count`` times in order on one copy of ``rng``.
    rng : numpy.random.Generator
        Not advanced: the thread works on a deep copy that starts from its current state.
    count : int
        How many items to produce.
    depth : int
        At most this many finished items wait in memory (bounded look-ahead).

    Use it as a context manager: leaving the block (normally, by an exception or an interrupt) stops
    the thread. An exception raised by ``produce`` is re-raised by the iteration, in order.
    """

    def __init__(
        self, produce: Callable[[np.random.Generator], T], rng: np.random.Generator, *, count: int, depth: int = 2
    ) -> None:
        if count < 0 or depth < 1:
            raise ValueError(f"count must be >= 0 and depth >= 1; got {count}, {depth}")
        self._produce = produce
        self._rng = copy.deepcopy(rng)
        self._count = count
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reference_models-prefetch", daemon=True)
        self._started = False

    def __enter__(self) -> Prefetcher[T]:
        self._thread.start()
        self._started = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the producer thread and wait for it (it finishes at most the item it is producing)."""
        self._stop.set()
        if self._started:
            self._thread.join()

    def __iter__(self) -> Iterator[Prefetched[T]]:
        if not self._started:
            raise RuntimeError("use the Prefetcher as a context manager: `with Prefetcher(...) as batches:`")
        for _ in range(self._count):
            entry = self._queue.get()
            if isinstance(entry, _Failure):
                raise entry.error
            yield entry

    def _put(self, entry: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        for _ in range(self._count):
            if self._stop.is_set():
                return
            try:
                entry: Any = Prefetched(self._produce(self._rng), self._rng.bit_generator.state)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
                self._put(_Failure(error))
                return
            if not self._put(entry):
                return
