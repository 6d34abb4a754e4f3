"""Shared helpers of the study tests: tiny encoder files that log their calls, and tiny sweep settings.

The encoders are random projections of the image written as Python files (a sweep only takes paths).
Each row of codes is computed on its own (an elementwise product and a per-row sum, no BLAS call whose
blocking depends on the batch), so codes, and therefore scores, are bit-identical however the images
are batched. Every call appends ``"<name> <number of images> <process id>"`` to a log file, so a test can count
how often, on how many images and in which process each encoder ran, across worker processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Metric settings small enough for a job to take well under a second on tiny_dsprites.
METRICS = ["mig", "sap", "beta_vae"]
PARAMS = {
    "mig": {"n_train": 300},
    "sap": {"n_train": 300, "n_test": 100},
    "beta_vae": {"n_train": 60, "n_eval": 30, "batch_size": 8},
}
DATASET = "tiny_dsprites"

_ENCODER = '''"""Test encoder {name}: a fixed random projection of the pixels, (mean, logvar)."""
import os
import time

import numpy as np

_W = np.random.default_rng({seed}).standard_normal((64 * 64, 4))
LOG = {log!r}


class Projection:
    def encode(self, images):
        with open(LOG, "a") as handle:
            handle.write(f"{name} {{len(images)}} {{os.getpid()}}\\n")
        {extra}
        x = images.reshape(len(images), -1).astype(np.float64)
        mean = np.stack([(x * _W[:, j]).sum(axis=1) for j in range(4)], axis=1) / 64.0
        return mean.astype(np.float32), np.full(mean.shape, -2.0, dtype=np.float32)


def get_encoder():
    return Projection()
'''


def write_encoder(folder: Path, name: str, *, seed: int, log: Path, extra: str = "pass") -> Path:
    """A projection encoder file ``folder/name.py``; ``extra`` is one statement run at every call."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(_ENCODER.format(name=name, seed=seed, log=str(log), extra=extra), encoding="utf-8")
    return path


def write_encoders(folder: Path, n: int, *, log: Path, extra: str = "pass") -> list[Path]:
    return [write_encoder(folder, f"proj{i}", seed=i, log=log, extra=extra) for i in range(n)]


def calls(log: Path) -> dict[str, list[int]]:
    """Encoder name -> the batch size of each of its calls, from the log."""
    out: dict[str, list[int]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            name, n, _ = line.split()
            out.setdefault(name, []).append(int(n))
    return out


def calling_processes(log: Path, *, skip: int = 0) -> set[int]:
    """The process ids that called an encoder, from the log (its first ``skip`` lines left out)."""
    lines = log.read_text().splitlines()[skip:] if log.exists() else []
    return {int(line.split()[2]) for line in lines}


def set_args(params: dict[str, dict[str, Any]] = PARAMS) -> list[str]:
    """``--set METRIC.PARAM=VALUE`` arguments of ``params``."""
    args = []
    for metric, values in params.items():
        for key, value in values.items():
            args += ["--set", f"{metric}.{key}={value}"]
    return args


def sweep_args(*, seeds: tuple[int, ...] = (1, 2), representations: tuple[str, ...] = ("mean",)) -> list[str]:
    """The ``dbench sweep`` options of the tiny set-up (everything but the encoders and --out)."""
    return ["--dataset", DATASET, "--representation", *representations, "--seed", *map(str, seeds),
            "--metrics", *METRICS, *set_args(), "--no-progress"]


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A result's JSON without what differs between two runs of the same job (timings, environment, when and by which command)."""
    out = {k: v for k, v in data.items() if k not in ("seconds", "environment")}
    if isinstance(out.get("provenance"), dict):
        out["provenance"] = {k: v for k, v in out["provenance"].items() if k not in ("created_utc", "invocation")}
    return out
