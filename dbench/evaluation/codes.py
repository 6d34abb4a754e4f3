"""Encoding observation indices into codes (the simple, uncached path used by standalone metric calls)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dbench.datasets.base import GroundTruthDataset


def encode_plan_requests(
    dataset: GroundTruthDataset,
    encode_fn: Any,
    requests: dict[str, np.ndarray],
    *,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Encode every unique flat index in ``requests`` once; return codes shaped ``index.shape + (D,)``.

    ``encode_fn(images) -> np.ndarray (n, D)`` takes float32 ``(n, C, H, W)`` images.
    """
    flat = np.concatenate([np.asarray(v, dtype=np.int64).ravel() for v in requests.values()])
    unique, inverse = np.unique(flat, return_inverse=True)
    chunks = [np.asarray(encode_fn(dataset.images(unique[i : i + batch_size]))) for i in range(0, unique.size, batch_size)]
    table = np.concatenate(chunks, axis=0)
    out, start = {}, 0
    for key, idx in requests.items():
        idx = np.asarray(idx)
        out[key] = table[inverse[start : start + idx.size]].reshape(idx.shape + (table.shape[1],))
        start += idx.size
    return out
