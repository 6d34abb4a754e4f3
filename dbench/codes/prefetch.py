"""Rendering ahead of the encoder: the next batches' images are made on a thread while the encoder runs.

Rendering (NumPy; a dataset reading from disk or drawing sprites) and the encoder's forward pass
(torch, ONNX, NumPy) both spend most of their time outside the GIL, so one bounded background thread
makes the encode stage cost about ``max(render, encode)`` per batch instead of their sum.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from typing import Any

import numpy as np

from dbench.datasets.base import GroundTruthDataset

_DONE = object()


def rendered_batches(
    dataset: GroundTruthDataset, indices: np.ndarray, *, batch_size: int, depth: int = 2
) -> Generator[tuple[np.ndarray, np.ndarray, float], None, None]:
    """Yield ``(batch indices, images, seconds spent rendering them)`` for ``indices`` in batches, in order.

    A daemon thread renders up to ``depth`` batches ahead. An exception raised while rendering is
    raised here, at the batch it belongs to; closing the generator early (the consumer failed or
    stopped) stops the thread after the batch it is rendering.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1; got {depth}")
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def render() -> None:
        try:
            for start in range(0, indices.size, batch_size):
                batch = indices[start : start + batch_size]
                t0 = time.perf_counter()
                images = dataset.images(batch)
                if not put((batch, images, time.perf_counter() - t0)):
                    return
        except Exception as exc:  # noqa: BLE001 - any render failure is handed to the consumer, raised there
            put(exc)
            return
        put(_DONE)

    worker = threading.Thread(target=render, name="dbench-render-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5.0)
