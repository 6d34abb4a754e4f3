"""A protocol's published query set: the observations a submission must encode, and codes files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbench.errors import ConfigError


def protocol_queries(protocol: Any, *, data_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Unique sorted observation indices per dataset that every metric and seed of ``protocol`` needs."""
    from dbench.datasets import get_dataset
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import plan_config, query_indices, resolve_config

    queries: dict[str, list[np.ndarray]] = {}
    for cfg in resolve_config(EvaluationOptions(protocol=protocol)):
        ds = get_dataset(cfg.dataset, data_dir=data_dir)
        queries.setdefault(cfg.dataset, []).append(query_indices(plan_config(cfg, ds)))
    return {name: np.unique(np.concatenate(parts)) for name, parts in queries.items()}


def export_queries(protocol: Any, out: str | os.PathLike, *, images: bool = False,
                   data_dir: str | os.PathLike | None = None) -> Path:
    """Write the query set as ``.npz``: ``<dataset>__indices`` (and ``<dataset>__images`` if asked)."""
    from dbench.datasets import get_dataset

    arrays: dict[str, np.ndarray] = {}
    for name, idx in protocol_queries(protocol, data_dir=data_dir).items():
        arrays[f"{name}__indices"] = idx
        if images:
            arrays[f"{name}__images"] = get_dataset(name, data_dir=data_dir).images(idx)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # mypy matches **arrays against allow_pickle: bool
    os.replace(tmp, out)
    return out


def read_codes_file(path: str | os.PathLike, dataset: str) -> dict[str, np.ndarray]:
    """Codes for ``dataset`` from a submission's ``codes.npz``.

    Keys: ``<dataset>__indices`` and ``<dataset>__codes`` (optional ``<dataset>__logvar``); a file for
    a single dataset may use plain ``indices``/``codes``/``logvar``. Checked: presence, shapes, finiteness.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    with data:
        files = set(data.files)
        prefix = f"{dataset}__" if f"{dataset}__indices" in files else ""
        need = [f"{prefix}indices", f"{prefix}codes"]
        missing = [k for k in need if k not in files]
        if missing:
            raise ConfigError(f"{path}: missing array(s) {', '.join(missing)} for dataset {dataset!r}; "
                              "write indices from `dbench protocols export-queries` and their codes")
        indices, codes = data[need[0]], data[need[1]]
        logvar = data[f"{prefix}logvar"] if f"{prefix}logvar" in files else None
    return validate_codes(indices, codes, logvar, source=str(path))


def validate_codes(indices: np.ndarray, codes: np.ndarray, logvar: np.ndarray | None, *, source: str) -> dict[str, np.ndarray]:
    """Check a block of precomputed codes; one-line ConfigError naming what is wrong."""
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise ConfigError(f"{source}: indices must be a 1-D integer array; got {indices.dtype} {indices.shape}")
    if codes.ndim != 2 or codes.shape[0] != indices.shape[0]:
        raise ConfigError(f"{source}: codes must have shape ({indices.shape[0]}, D); got {codes.shape}")
    if not np.issubdtype(codes.dtype, np.number):
        raise ConfigError(f"{source}: codes must be numeric; got {codes.dtype}")
    bad = ~np.isfinite(codes).all(axis=1)
    if bad.any():
        raise ConfigError(f"{source}: codes contain NaN or inf in {int(bad.sum())} rows")
    out: dict[str, np.ndarray] = {"indices": indices.astype(np.int64), "mean": codes.astype(np.float64)}
    if logvar is not None:
        if logvar.shape != codes.shape:
            raise ConfigError(f"{source}: logvar must have the shape of codes {codes.shape}; got {logvar.shape}")
        if not np.isfinite(logvar).all():
            raise ConfigError(f"{source}: logvar contains NaN or inf")
        out["logvar"] = logvar.astype(np.float64)
    return out


def missing_queries(codes: Mapping[str, np.ndarray], wanted: np.ndarray) -> np.ndarray:
    """Indices of ``wanted`` that ``codes`` does not cover."""
    return np.setdiff1d(wanted, codes["indices"])
