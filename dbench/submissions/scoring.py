"""Scoring submissions reproducibly: untrusted artifacts are encoded in a sandbox, never in-process."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dbench.errors import DbenchError, EncoderError
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.pipeline import (
    EvaluationConfig,
    plan_config,
    query_indices,
    resolve_config,
    run_config,
)
from dbench.evaluation.result import (
    EncoderRecord,
    EvaluationResult,
    ProtocolRecord,
    SubmissionRecord,
    environment_info,
)
from dbench.submissions.metadata import Submission, cleanup, open_submission
from dbench.submissions.queries import read_codes_file, validate_codes
from dbench.submissions.sandbox import Limits, run_worker


@dataclass(frozen=True)
class _CodesOnly:
    """Stands in for an encoder when all codes come from the submission: anything missing is an error."""

    name: str
    fingerprint: str

    def encode_arrays(self, images: np.ndarray):
        raise EncoderError(
            "the submission has no codes for some observations the protocol needs; "
            "encode the full query set from `dbench protocols export-queries`"
        )


def score_submission(
    path: str | Path,
    *,
    protocol: Any = "challenge",
    trust: bool = False,
    limits: Limits | None = None,
    data_dir: str | Path | None = None,
    batch_size: int | None = None,
) -> list[EvaluationResult]:
    """Score one submission under ``protocol``; failures become results with status ``failed`` and a reason.

    ``limits`` bound the sandboxed encoding (default :class:`~dbench.submissions.sandbox.Limits`).
    """
    limits = limits or Limits()
    configs = resolve_config(EvaluationOptions(protocol=protocol, batch_size=batch_size))
    try:
        sub = open_submission(path)
    except DbenchError as exc:
        return [_failed(cfg, name=Path(path).name, meta=None, fingerprint="", reason=str(exc)) for cfg in configs]
    try:
        return [_score_one(sub, cfg, trust=trust, limits=limits, data_dir=data_dir) for cfg in configs]
    finally:
        cleanup(sub)


def _score_one(sub: Submission, cfg: EvaluationConfig, *, trust: bool, limits: Limits,
               data_dir: str | Path | None) -> EvaluationResult:
    from dbench.datasets import get_dataset

    meta = sub.meta.model_dump()
    fingerprint = sub.fingerprint

    def fail(reason: str) -> EvaluationResult:
        return _failed(cfg, name=sub.meta.name, meta=meta, fingerprint=fingerprint, reason=reason)

    if sub.kind == "python" and not trust:
        return fail("Python-file submissions are refused; submit TorchScript, ONNX or codes, or score with --trust")
    try:
        ds = get_dataset(cfg.dataset, data_dir=data_dir)
        wanted = np.unique(query_indices(plan_config(cfg, ds)))
        if sub.kind == "codes":
            codes: dict[str, np.ndarray] | str = read_codes_file(sub.artifact, cfg.dataset)
        else:
            codes = _encode_in_sandbox(sub, cfg, wanted, limits=limits, data_dir=data_dir)
    except DbenchError as exc:
        return fail(str(exc))
    if codes is None or isinstance(codes, str):
        return fail(codes or "sandbox produced no codes")
    result = run_config(_CodesOnly(sub.meta.name, fingerprint), cfg, options=EvaluationOptions(data_dir=data_dir),
                        encoder_spec=f"{sub.kind}:{sub.artifact.name}", precomputed=codes)
    return result.model_copy(update={"submission": SubmissionRecord.model_validate(meta)})


def _encode_in_sandbox(sub: Submission, cfg: EvaluationConfig, wanted: np.ndarray, *, limits: Limits,
                       data_dir: str | Path | None) -> dict[str, np.ndarray] | str:
    with tempfile.TemporaryDirectory(prefix="dbench-sandbox-") as tmp:
        work = Path(tmp)
        np.save(work / "indices.npy", wanted)
        args = [str(sub.artifact.resolve()), sub.kind, cfg.dataset, str(work / "indices.npy"), str(work / "codes.npz"),
                "--batch-size", str(cfg.batch_size)]
        if data_dir is not None:
            args += ["--data-dir", str(Path(data_dir).resolve())]
        outcome = run_worker(args, limits=limits, workdir=work)
        if not outcome.ok:
            return outcome.reason
        with np.load(work / "codes.npz", allow_pickle=False) as data:
            logvar = data["logvar"] if "logvar" in data.files else None
            try:
                return validate_codes(data["indices"], data["codes"], logvar, source="submission codes")
            except DbenchError as exc:
                return str(exc).replace("submission codes: ", "")


def _failed(cfg: EvaluationConfig, *, name: str, meta: dict | None, fingerprint: str, reason: str) -> EvaluationResult:
    return EvaluationResult(
        dataset=cfg.dataset,
        representation=cfg.representation,
        seeds=list(cfg.seeds),
        backend="none",
        protocol=ProtocolRecord.model_validate(cfg.protocol),
        encoder=EncoderRecord(name=name or "submission", fingerprint=fingerprint, spec=""),
        metric_params=cfg.metrics,
        scores={},
        seconds={},
        n_encoded=0,
        status="failed",
        error=reason.splitlines()[0] if reason else "failed",
        submission=None if meta is None else SubmissionRecord.model_validate(meta),
        environment=environment_info(),
    )


def result_filename(result: EvaluationResult, index: int) -> str:
    """A safe, ordered file name for a submission's result."""
    base = (result.submission.name if result.submission else None) or result.encoder.name or "submission"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "submission"
    return f"{index:03d}-{safe}-{result.dataset}-{result.representation}.json"
