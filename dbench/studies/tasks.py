"""What a worker runs: encode one group of jobs, score one job. Plain data in, plain data out.

A sweep runs in two kinds of task:

* :func:`encode_group` loads one encoder, plans every pending job of it on one dataset (all seeds,
  representations and protocols), and encodes the union of their observations once (through the
  code cache when ``cache_dir`` is given). It returns the codes and, per job, which observations the
  job needs. Only this task runs the encoder, so only it asks for a GPU.
* :func:`score_job` scores one job from the codes it is sent: ``run_config`` of the evaluation
  pipeline with the codes as ``precomputed``, exactly what ``dbench evaluate`` of that encoder, seed and
  representation computes. It returns the result as JSON data; the client writes it.

Every task is wrapped by :func:`guarded`, which turns any failure of user code (an exception, also
one that cannot be pickled, or ``SystemExit``) into a one-line reason, restores the working directory
an encoder may have changed, and reports a ``KeyboardInterrupt`` as an interruption, not a failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dbench.errors import ConfigError, DbenchError, EncoderError
from dbench.studies.jobs import EncoderRef, JobConfig


@dataclass(frozen=True)
class TaskOutcome:
    """What came back from a task: its value, or the one-line reason it failed, or an interruption."""

    value: Any = None
    error: str | None = None
    interrupted: bool = False


def guarded(fn: Callable[..., Any], *args: Any) -> TaskOutcome:
    """Run ``fn(*args)``; never raise (see the module docstring)."""
    from dbench.encoders.validation import describe_exception

    cwd = os.getcwd()
    try:
        return TaskOutcome(value=fn(*args))
    except KeyboardInterrupt:
        return TaskOutcome(interrupted=True)
    except DbenchError as exc:
        return TaskOutcome(error=_first_line(exc))
    except BaseException as exc:  # noqa: BLE001 - user code may raise anything, SystemExit included
        return TaskOutcome(error=f"{describe_exception(exc)} (unexpected; run the encoder with dbench evaluate --debug)")
    finally:
        with contextlib.suppress(OSError):
            os.chdir(cwd)  # user code may chdir; the next task on this worker must not notice


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


# ------------------------------------------------------------------------------------------------
# Encoding


@dataclass(frozen=True)
class EncodeRequest:
    """Encode the observations of ``jobs`` (key, config) for one encoder on one dataset."""

    encoder: EncoderRef
    dataset: str
    batch_size: int
    jobs: tuple[tuple[str, JobConfig], ...]
    data_dir: str | None = None
    cache_dir: str | None = None


@dataclass(frozen=True)
class GroupCodes:
    """The codes of one group: every observation encoded (sorted), and per job which ones it needs.

    ``error`` is the encoder's one-line failure when it stopped part-way (the observations encoded
    before it are kept); ``job_errors`` holds jobs that could not even be planned.
    """

    name: str
    indices: np.ndarray
    mean: np.ndarray | None
    logvar: np.ndarray | None
    job_indices: dict[str, np.ndarray]
    job_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    n_encoded: int = 0

    def codes_for(self, key: str) -> dict[str, Any] | None:
        """``{"indices", "mean", "logvar"}`` of the observations job ``key`` needs that were encoded."""
        if self.mean is None:
            return None
        rows = _present(self.indices, self.job_indices[key])
        if rows.size == 0:
            return None
        return {
            "indices": self.indices[rows],
            "mean": self.mean[rows],
            "logvar": None if self.logvar is None else self.logvar[rows],
        }


def _present(sorted_indices: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rows of ``sorted_indices`` holding the values of ``wanted`` that are present."""
    rows = np.searchsorted(sorted_indices, wanted)
    inside = rows < sorted_indices.size
    rows, wanted = rows[inside], wanted[inside]
    return rows[sorted_indices[rows] == wanted]


def check_resolved(cfg: Any, config: JobConfig) -> None:
    """The worker must resolve a job exactly as the client did (same dbench, same metric defaults)."""
    if cfg.protocol["hash"] != config.record_hash:
        raise ConfigError(
            f"this worker resolves protocol {config.record['name']} to hash {cfg.protocol['hash'][:12]}..., the "
            f"client to {config.record_hash[:12]}...; install the same dbench version on the workers as on the client"
        )


def encode_group(request: EncodeRequest) -> GroupCodes:
    """Load the encoder, plan every job of the group, encode the union of their observations once."""
    from dbench.codes import CodeTable
    from dbench.datasets import get_dataset
    from dbench.encoders import load_encoder
    from dbench.evaluation.pipeline import plan_config, query_indices, resolve_config

    ds = get_dataset(request.dataset, data_dir=request.data_dir)
    loaded = load_encoder(request.encoder.path, probe_shape=ds.observation_shape)
    if loaded.fingerprint != request.encoder.fingerprint:
        raise EncoderError(
            f"encoder {request.encoder.path} changed since the sweep started (fingerprint {loaded.fingerprint[:20]}..., "
            f"expected {request.encoder.fingerprint[:20]}...); rerun the sweep"
        )
    wanted: list[np.ndarray] = []
    job_indices: dict[str, np.ndarray] = {}
    job_errors: dict[str, str] = {}
    for key, config in request.jobs:
        try:
            (cfg,) = resolve_config(config.options(data_dir=request.data_dir))
            check_resolved(cfg, config)
            indices = query_indices(plan_config(cfg, ds))
        except DbenchError as exc:
            job_errors[key] = _first_line(exc)
            continue
        wanted.append(indices)
        job_indices[key] = np.unique(indices)
    table = CodeTable(ds, loaded.encode_arrays, batch_size=request.batch_size, cache_dir=request.cache_dir,
                      fingerprint=loaded.fingerprint)
    union = np.concatenate(wanted) if wanted else np.zeros(0, dtype=np.int64)
    error = None
    try:
        table.ensure(union)  # in order of first appearance, as dbench evaluate encodes one job's plans
    except DbenchError as exc:
        error = _first_line(exc)
    unique = np.unique(union)
    encoded = np.setdiff1d(unique, table.missing(unique), assume_unique=True)
    mean = table.lookup(encoded) if encoded.size else None
    logvar = table.lookup(encoded, part="logvar") if encoded.size and table.has_logvar else None
    return GroupCodes(
        name=loaded.name,
        indices=encoded,
        mean=mean,
        logvar=logvar,
        job_indices=job_indices,
        job_errors=job_errors,
        error=error,
        seconds=float(table.seconds_encoding),
        n_encoded=int(table.n_encoded),
    )


# ------------------------------------------------------------------------------------------------
# Scoring


class ReplayEncoder:
    """Stands in for the encoder when a job is scored from its group's codes.

    The code table asks it only for observations the group did not encode, which happens only when the
    encoder failed part-way: it then raises the encoder's own error, so the result records it as
    ``dbench evaluate`` would.
    """

    def __init__(self, name: str, fingerprint: str, error: str | None) -> None:
        self.name = name
        self.fingerprint = fingerprint
        self._error = error

    def encode_arrays(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raise EncoderError(self._error or "observations missing from the group's codes (a bug in the sweep)")


@dataclass(frozen=True)
class ScoreRequest:
    """Score one job from its codes (``codes`` None when none of its observations were encoded)."""

    key: str
    encoder: EncoderRef
    encoder_name: str
    config: JobConfig
    codes: dict[str, Any] | None
    encode_error: str | None = None
    data_dir: str | None = None
    invocation: str | None = None


def score_job(request: ScoreRequest) -> dict[str, Any]:
    """The job's :class:`~dbench.evaluation.result.EvaluationResult` as JSON data."""
    from dbench.evaluation.pipeline import resolve_config, run_config

    options = request.config.options(data_dir=request.data_dir, invocation=request.invocation)
    (cfg,) = resolve_config(options)
    check_resolved(cfg, request.config)
    replay = ReplayEncoder(request.encoder_name, request.encoder.fingerprint, request.encode_error)
    result = run_config(replay, cfg, options=options, encoder_spec=request.encoder.path, precomputed=request.codes)
    return result.to_dict()


__all__ = ["EncodeRequest", "GroupCodes", "ReplayEncoder", "ScoreRequest", "TaskOutcome", "encode_group", "guarded",
           "score_job"]
