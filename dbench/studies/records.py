"""The records a sweep writes besides the pipeline's results: failed jobs, shared encoding, encoders.

* :func:`failure_result` -- a job that produced no result (its encoder did not load, its worker died,
  its group could not be encoded) is recorded as an :class:`~dbench.evaluation.result.EvaluationResult`
  with ``status: failed`` and the one-line reason in ``error``, so every file under ``results/`` is a
  valid result (``dbench leaderboard build`` lists it unranked, ``dbench aggregate`` counts it).
* :func:`with_shared_encoding` -- a job scored from its group's codes encoded nothing itself; its
  result records the observations it used (``n_encoded``) and its share of the group's encoding time
  (``seconds.encode``, the group's time split in proportion to observations), so the ``encode`` times
  of a group's results add up to the time the group took.
* :func:`encoder_record` -- what ``encoders/<id>.yaml`` says about an encoder.
"""

from __future__ import annotations

from typing import Any

from dbench.evaluation.provenance import environment_info, provenance_info
from dbench.evaluation.result import EncoderRecord, EvaluationResult, ProtocolRecord, Provenance, SeedRun
from dbench.studies.encoders import EncoderSource
from dbench.studies.jobs import Job


def failure_result(job: Job, reason: str, *, invocation: str | None = None) -> EvaluationResult:
    """The result file of a job that failed before it could be scored (with its provenance, as any result)."""
    config = job.config
    return EvaluationResult(
        protocol=ProtocolRecord.model_validate(config.record),
        encoder=EncoderRecord(name=job.encoder.name, fingerprint=job.encoder.fingerprint, spec=job.encoder.path),
        dataset=config.dataset,
        representation=config.representation,  # type: ignore[arg-type]  # a resolved representation
        seeds=list(config.seeds),
        backend=config.resolved_backend,
        environment=environment_info(),
        metric_params=config.metric_params,
        scores={},
        scores_std={} if len(config.seeds) > 1 else None,
        per_seed=[SeedRun(seed=s, scores={}) for s in config.seeds] if len(config.seeds) > 1 else None,
        n_encoded=0,
        status="failed",
        error=reason,
        provenance=Provenance.model_validate(provenance_info(invocation=invocation, encoder_spec=job.encoder.path)),
    )


def with_shared_encoding(result: EvaluationResult, *, n_used: int, group_used: int, group_seconds: float) -> EvaluationResult:
    """``result`` crediting it with ``n_used`` of the ``group_used`` observations its group encoded."""
    share = group_seconds * n_used / group_used if group_used else 0.0
    seconds = dict(result.seconds)
    seconds["encode"] = round(share, 4)
    if "total" in seconds:
        seconds["total"] = round(seconds["total"] + share, 4)
    return result.model_copy(update={"n_encoded": int(n_used), "seconds": seconds})


def encoder_record(source: EncoderSource, fingerprint: str) -> dict[str, Any]:
    """The contents of an encoder's ``encoders/<id>.yaml``."""
    return {"name": source.name, "path": source.path, "fingerprint": fingerprint, "meta": dict(source.meta)}


__all__ = ["encoder_record", "failure_result", "with_shared_encoding"]
