"""Encoding a plan's observation indices into codes: the uncached path of standalone metric calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from dbench.codes.table import CodeTable
from dbench.datasets.base import GroundTruthDataset
from dbench.encoders.validation import validate_output


def encode_plan_requests(
    dataset: GroundTruthDataset,
    encode_fn: Any,
    requests: dict[str, np.ndarray],
    *,
    batch_size: int = 256,
) -> dict[str, np.ndarray]:
    """Encode every unique flat index in ``requests`` once; return codes shaped ``index.shape + (D,)``.

    ``encode_fn(images) -> np.ndarray (n, D)`` takes float32 ``(n, C, H, W)`` images. The same
    :class:`~dbench.codes.table.CodeTable` as the pipeline, without a cache.
    """
    who = repr(getattr(encode_fn, "__name__", type(encode_fn).__name__))

    def encode_batch(images: np.ndarray) -> tuple[np.ndarray, None]:
        # The one validator of codes, as for every other source (an already validated LoadedEncoder's
        # codes pass it again unchanged).
        return validate_output(encode_fn(images), images.shape[0], who).mean, None

    table = CodeTable(dataset, encode_batch, batch_size=batch_size)
    for idx in requests.values():
        table.ensure(idx)
    return {key: table.lookup(idx) for key, idx in requests.items()}
