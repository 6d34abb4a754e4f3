"""A protocol's published query set: the observations a submission must encode.

``dbench protocols export-queries PROTOCOL --out queries.npz [--images]`` writes, per dataset:

- ``<dataset>__indices``: int64 ``(N,)``, sorted, unique: the flat observation indices to encode;
- with ``--images``, compactly (never float32 for 8-bit data):

  - ``<dataset>__images``: the images, encoded as ``<dataset>__images_encoding`` says:
    ``"bits"``: uint8 ``(N, ceil(C*H*W/8))``, one bit per pixel (binary images such as dSprites),
    ``"uint8"``: uint8 ``(N, C, H, W)`` levels 0..255, or ``"float32"``: float32 ``(N, C, H, W)``;
  - ``<dataset>__images_shape``: int64 ``[C, H, W]``.

:func:`load_query_images` turns them back into the float32 ``(N, C, H, W)`` images in [0, 1] that
an encoder is given; the result equals the dataset's own images exactly (tested).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dbench.errors import ConfigError

_CHUNK = 4096


def protocol_queries(protocol: Any, *, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Unique sorted observation indices per dataset that every metric and seed of ``protocol`` needs."""
    from dbench.datasets import get_dataset
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import plan_config, query_indices, resolve_config

    queries: dict[str, list[np.ndarray]] = {}
    for cfg in resolve_config(EvaluationOptions(protocol=protocol)):
        ds = get_dataset(cfg.dataset, data_dir=data_dir)
        queries.setdefault(cfg.dataset, []).append(query_indices(plan_config(cfg, ds)))
    return {name: np.unique(np.concatenate(parts)).astype(np.int64) for name, parts in queries.items()}


def compact_images(dataset: Any, indices: np.ndarray) -> tuple[str, np.ndarray]:
    """The images of ``indices`` in the most compact exact encoding: ``("bits"|"uint8"|"float32", array)``."""
    mode = "bits"
    chunks: list[np.ndarray] = []
    for start in range(0, indices.size, _CHUNK):
        images = np.asarray(dataset.images(indices[start: start + _CHUNK]), dtype=np.float32)
        levels = np.rint(images * 255).astype(np.uint8)
        if not np.array_equal(levels.astype(np.float32) / np.float32(255), images):
            return "float32", np.concatenate([np.asarray(dataset.images(indices[s: s + _CHUNK]), dtype=np.float32)
                                              for s in range(0, indices.size, _CHUNK)])
        if mode == "bits" and not np.isin(levels, (0, 255)).all():
            mode = "uint8"
            chunks = [_unpack(c, images.shape[1:]) * np.uint8(255) for c in chunks]
        chunks.append(np.packbits(levels.reshape(len(levels), -1) == 255, axis=1) if mode == "bits" else levels)
    if not chunks:
        return mode, np.zeros((0, 0), dtype=np.uint8)
    return mode, np.concatenate(chunks)


def _unpack(packed: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    return np.unpackbits(packed, axis=1, count=count).reshape(len(packed), *shape)


def load_query_images(queries: Any, dataset: str) -> np.ndarray:
    """float32 ``(N, C, H, W)`` images in [0, 1] from an exported query file (an ``np.load`` result)."""
    encoding = str(queries[f"{dataset}__images_encoding"])
    shape = tuple(int(d) for d in queries[f"{dataset}__images_shape"])
    data = queries[f"{dataset}__images"]
    if encoding == "bits":
        return _unpack(data, shape).astype(np.float32)
    if encoding == "uint8":
        return data.astype(np.float32) / np.float32(255)
    if encoding == "float32":
        return np.asarray(data, dtype=np.float32)
    raise ConfigError(f"{dataset}__images_encoding {encoding!r} is unknown; re-export with this dbench")


def export_queries(protocol: Any, out: str | os.PathLike, *, images: bool = False,
                   data_dir: str | os.PathLike | None = None, report: Callable[[str], None] | None = None) -> Path:
    """Write the query set as ``.npz`` (see the module docstring); ``report`` gets one line per dataset first."""
    from dbench.datasets import get_dataset

    arrays: dict[str, np.ndarray] = {}
    for name, idx in protocol_queries(protocol, data_dir=data_dir).items():
        arrays[f"{name}__indices"] = idx
        if images:
            ds = get_dataset(name, data_dir=data_dir)
            encoding, data = compact_images(ds, idx)
            shape = np.asarray(ds.observation_shape, dtype=np.int64)
            arrays[f"{name}__images"] = data
            arrays[f"{name}__images_encoding"] = np.asarray(encoding)
            arrays[f"{name}__images_shape"] = shape
            as_float = idx.size * int(np.prod(shape)) * 4
            how = {"bits": "bit-packed, 1 bit per pixel", "uint8": "uint8 levels", "float32": "float32"}[encoding]
            if report is not None:
                report(f"{name}: {idx.size:,} images ({how}): {data.nbytes / 1e6:,.1f} MB before compression "
                       f"({as_float / 1e6:,.1f} MB once loaded as float32)")
        elif report is not None:
            report(f"{name}: {idx.size:,} query indices")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against allow_pickle: bool
    os.replace(tmp, out)
    return out


__all__ = ["compact_images", "export_queries", "load_query_images", "protocol_queries"]
