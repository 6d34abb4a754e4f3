"""Where a sweep keeps its files under ``DIR``, and what a file there says about its job.

::

    DIR/sweep.yaml                          the sweep as it ran last (resolved paths)
    DIR/results/<k[:2]>/<key>.json          the result of a finished job (``status`` ok or partial)
    DIR/results/<k[:2]>/<key>.failed.json   a failed job: a result with ``status: failed`` and its one-line reason
    DIR/encoders/<id>.yaml                  each encoder's name, path, fingerprint and metadata
    DIR/training/<run>.failed.yaml          a training of the sweep's ``train`` grid that failed, and why

Both kinds of result file are ordinary :class:`~dbench.evaluation.result.EvaluationResult` JSON files,
so ``dbench leaderboard build --results DIR`` reads the folder as it is (failed jobs are listed
unranked) and nothing else under ``DIR`` ends in ``.json``. Results are sharded by the first two hex
digits of the key so that no folder holds more than a few thousand files even for a 226,800-job study.
Every file is written atomically (a temporary file, then a rename): a killed sweep leaves whole files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from dbench.errors import ConfigError
from dbench.evaluation.result import EvaluationResult, read_result
from dbench.studies.jobs import Job

RESULTS = "results"
ENCODERS = "encoders"
TRAINING = "training"
SWEEP_FILE = "sweep.yaml"
FAILED_SUFFIX = ".failed.json"

#: What the files of a job say: finished (ok), finished with some metrics failed, failed, or nothing yet.
JobState = Literal["ok", "partial", "failed", "pending"]


@dataclass(frozen=True)
class SweepFolder:
    """The files of a sweep under ``root``."""

    root: Path

    def result_path(self, key: str) -> Path:
        return self.root / RESULTS / key[:2] / f"{key}.json"

    def failed_path(self, key: str) -> Path:
        return self.root / RESULTS / key[:2] / f"{key}{FAILED_SUFFIX}"

    def encoder_record_path(self, fingerprint: str) -> Path:
        return self.root / ENCODERS / f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:24]}.yaml"

    def training_failure_path(self, run_name: str) -> Path:
        return self.root / TRAINING / f"{run_name}.failed.yaml"

    # -- reading ----------------------------------------------------------------------------------

    def state(self, job: Job, warn: Any = None) -> JobState:
        """What the files under the folder say about ``job``.

        A file that cannot be read, or that holds the result of another evaluation than its name says
        (copied or edited), does not count: ``warn(line)`` says so and the job is run again.
        """
        for path, failed in ((self.result_path(job.key), False), (self.failed_path(job.key), True)):
            if not path.exists():
                continue
            try:
                result = read_result(path)
            except ConfigError as exc:
                if warn is not None:
                    warn(f"{exc}; the job is run again")
                continue
            mismatch = result_mismatch(result, job)
            if mismatch:
                if warn is not None:
                    warn(f"{path}: {mismatch}; the job is run again")
                continue
            if failed:
                return "failed"
            return "ok" if result.status == "ok" else ("partial" if result.status == "partial" else "failed")
        return "pending"

    # -- writing ----------------------------------------------------------------------------------

    def write_result(self, job: Job, result: EvaluationResult) -> Path:
        """Write a job's result: ``<key>.json``, or ``<key>.failed.json`` when nothing was scored.

        The other file of the key, left by an earlier attempt, is removed after the new one is in place.
        """
        failed = result.status == "failed"
        path = self.failed_path(job.key) if failed else self.result_path(job.key)
        result.write(path)
        (self.result_path(job.key) if failed else self.failed_path(job.key)).unlink(missing_ok=True)
        return path

    def write_encoder_record(self, fingerprint: str, record: dict[str, Any]) -> Path:
        return write_yaml_atomic(self.encoder_record_path(fingerprint), record)

    def read_encoder_records(self, warn: Any = None) -> dict[str, dict[str, Any]]:
        """fingerprint -> encoder record, for every readable record under ``encoders/``."""
        records: dict[str, dict[str, Any]] = {}
        for path in sorted((self.root / ENCODERS).glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.stat().st_size < (1 << 20) else None
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                data = None
                if warn is not None:
                    warn(f"{path}: cannot read the encoder record ({str(exc).splitlines()[0]}); its metadata are left out")
            if isinstance(data, dict) and isinstance(data.get("fingerprint"), str) and isinstance(data.get("meta", {}), dict):
                records[data["fingerprint"]] = data
            elif data is not None and warn is not None:
                warn(f"{path}: not an encoder record (a mapping with a fingerprint); its metadata are left out")
        return records


def result_mismatch(result: EvaluationResult, job: Job) -> str | None:
    """Why ``result`` is not the result of ``job`` (None when it is)."""
    config = job.config
    checks = (
        (result.encoder.fingerprint, job.encoder.fingerprint, "encoder fingerprint"),
        (result.dataset, config.dataset, "dataset"),
        (result.representation, config.representation, "representation"),
        (result.protocol.hash, config.record_hash, "protocol hash"),
        (list(result.seeds), list(config.seeds), "seeds"),
    )
    for found, expected, what in checks:
        if found != expected:
            return f"holds another evaluation ({what} {found!r}, expected {expected!r})"
    return None


def write_yaml_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML through a temporary file and a rename."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["FAILED_SUFFIX", "JobState", "SweepFolder", "result_mismatch", "write_yaml_atomic"]
