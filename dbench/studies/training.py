"""The ``train`` grid of a sweep: reference models to train with ``dbench train`` before they are evaluated.

Each grid point is one :class:`RunSpec` and one run folder ``<out>/<model>[-<hp><value>...]-seed<seed>``.
A folder whose ``config.json`` says it finished the requested steps (and holds ``encoder.pt``) is
taken as it is; any other is trained by a task that runs ``dbench train`` (the reference-models
plugin's command; dbench never imports that package) in a child process, resuming from the folder's
checkpoint when there is one, with its output appended to ``<run>/train.log``. Run folders are files:
on a cluster, ``out`` must be on storage that the workers and the client share.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.encoders.loading import RUN_DIR_ENCODER_FILE
from dbench.errors import DbenchError
from dbench.studies.encoders import RUN_CONFIG_FILE
from dbench.studies.spec import TrainGrid

TRAIN_LOG = "train.log"


@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid (plain data; ``out`` is absolute)."""

    name: str
    out: str
    model: str
    steps: int
    seed: int
    dataset: str
    hparams: dict[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    @property
    def uses_gpu(self) -> bool:
        """Whether the run trains on CUDA (``--device cuda`` among the extra arguments)."""
        args = list(self.args)
        return any(a == "--device" and i + 1 < len(args) and args[i + 1].startswith("cuda") for i, a in enumerate(args)) \
            or any(a.startswith("--device=cuda") for a in args)

    def command(self) -> list[str]:
        """The ``dbench train`` arguments of this run."""
        argv = ["train", self.model, "--dataset", self.dataset, "--steps", str(self.steps), "--seed", str(self.seed),
                "--out", self.out, "--no-progress"]
        for key, value in self.hparams.items():
            argv += ["--set", f"{key}={_number(value)}"]
        return argv + list(self.args)


def _number(value: Any) -> str:
    """A grid value as written in names and ``--set``: ``4`` for 4.0, ``0.5`` for 0.5."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def runs_of(grid: TrainGrid) -> list[RunSpec]:
    """Every run of the grid: per model, the product of its hyperparameter lists, times the seeds."""
    runs = []
    for model, hparams in grid.models.items():
        names = sorted(hparams or {})
        values = [v if isinstance(v, list) else [v] for v in (hparams[n] for n in names)] if hparams else []
        for combination in itertools.product(*values):
            chosen = dict(zip(names, combination, strict=True))
            for seed in grid.seeds:
                parts = [model, *(f"{k}{_number(v)}" for k, v in chosen.items()), f"seed{seed}"]
                name = "-".join(parts)
                runs.append(RunSpec(name=name, out=os.path.join(grid.out, name), model=model, steps=grid.steps,
                                    seed=seed, dataset=grid.dataset, hparams=chosen, args=tuple(str(a) for a in grid.args)))
    return runs


def is_trained(run: RunSpec) -> bool:
    """Whether ``run.out`` holds a finished run of ``run.steps`` steps of ``run.model`` with an encoder."""
    folder = Path(run.out)
    try:
        config = json.loads((folder / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (
        isinstance(config, dict)
        and config.get("finished") is True
        and config.get("steps") == run.steps
        and config.get("model") == run.model
        and (folder / RUN_DIR_ENCODER_FILE).is_file()
    )


def train_run(run: RunSpec) -> str:
    """Task: train ``run`` with ``dbench train`` in a child process; return its folder.

    Raises :class:`DbenchError` with the last line the training wrote when it fails.
    """
    folder = Path(run.out)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / TRAIN_LOG
    with open(log_path, "a", encoding="utf-8") as log:
        start = log.tell()
        log.write(f"$ dbench {' '.join(run.command())}\n")
        log.flush()
        argv = [sys.executable, "-m", "dbench.studies._train_child", str(os.getpid()), *run.command()]
        returncode = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    check=False).returncode
    if returncode != 0:
        raise DbenchError(f"training {run.name} failed (exit status {returncode}): {_last_line(log_path, start)} "
                          f"(see {log_path})")
    if not is_trained(run):
        raise DbenchError(f"training {run.name} ended but {run.out} holds no finished run of {run.steps} steps; "
                          f"see {log_path}")
    return run.out


def _last_line(path: Path, start: int) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            lines = [line.strip() for line in handle.read()[-20_000:].splitlines() if line.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


__all__ = ["TRAIN_LOG", "RunSpec", "is_trained", "runs_of", "train_run"]
