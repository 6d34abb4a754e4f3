"""``dbench evaluate --save-codes``: the codes, factors and indices every metric scored, for later analysis.

lm-eval's ``--log_samples`` for disentanglement: beside each result file ``r.json`` a folder
``r.codes/`` holds one ``<metric>.seed<seed>.npz`` per metric and seed, with, for each of the
metric's requests ``<key>`` (``train``, ``test``, ``pairs``...):

* ``<key>__indices``: the flat dataset indices the metric drew (int64, the request's shape),
* ``<key>__codes``: their codes as the metric saw them (float64, ``indices.shape + (D,)``, in the
  result's representation: the mean, or the sampled codes),
* ``<key>__factors``: their ground-truth factor indices (int64, ``indices.shape + (n_factors,)``),

plus the plan's own labels as ``extra__<name>`` (the fixed factor of each FactorVAE vote...), and
``factor_names``, ``representation`` and ``seed``. Each file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbench._json import atomic_path


def codes_folder(result_path: Path) -> Path:
    """``r.codes/`` beside the result file ``r.json``."""
    return result_path.with_name(result_path.stem + ".codes")


class CodeSaver:
    """An ``on_codes(seed, metric, plan, codes)`` callback of :func:`~dbench.evaluation.pipeline.run_config`.

    Writes one ``<metric>.seed<seed>.npz`` per call into ``folder`` (see the module docstring) and
    keeps the paths and byte counts it wrote.
    """

    def __init__(self, folder: str | os.PathLike[str], dataset: Any, representation: str) -> None:
        self.folder = Path(folder)
        self.dataset = dataset
        self.representation = representation
        self.written: list[Path] = []
        self.n_bytes = 0

    def __call__(self, seed: int, metric: str, plan: Any, codes: Mapping[str, np.ndarray]) -> None:
        from dbench.datasets import indices_to_factors

        arrays: dict[str, np.ndarray] = {
            "factor_names": np.asarray(list(getattr(self.dataset, "factor_names", ())), dtype=str),
            "representation": np.asarray(self.representation),
            "seed": np.asarray(int(seed)),
        }
        for key, indices in plan.requests.items():
            idx = np.asarray(indices, dtype=np.int64)
            factors = indices_to_factors(self.dataset, idx.ravel())
            arrays[f"{key}__indices"] = idx
            arrays[f"{key}__codes"] = np.asarray(codes[key])
            arrays[f"{key}__factors"] = np.asarray(factors, dtype=np.int64).reshape(idx.shape + (-1,))
        for name, value in plan.extra.items():
            if isinstance(value, np.ndarray) and value.dtype != object:
                arrays[f"extra__{name}"] = value
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{metric}.seed{seed}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        self.written.append(path)
        self.n_bytes += path.stat().st_size


__all__ = ["CodeSaver", "codes_folder"]
