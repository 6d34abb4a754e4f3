"""Jobs: one evaluation each (encoder x protocol x dataset x representation x metric seed), as plain data.

A :class:`JobConfig` is what ``dbench evaluate`` would be given for one (protocol, dataset,
representation, seed), resolved once in the client and shared by every encoder; a :class:`Job` adds
the encoder. Its :attr:`Job.key` is the SHA-256 of the canonical JSON of

    {"encoder": fingerprint, "dataset": ..., "representation": ..., "seed": seed or null,
     "protocol": the hash of the resolved protocol the result will record}

so the same evaluation always lands at the same path, whatever the order, the machine or the run, and
anything that changes a number (another encoder file, a ``--set`` override, another seed) is another job.
``seed`` null means "the protocol's seeds, all in one job" (the result then follows the protocol itself
and ranks on the leaderboard); an explicit seed is one job per seed (a derived ``+custom`` protocol, as
``dbench evaluate --seed``).

Jobs of one encoder on one dataset form an :class:`EncodeGroup`: its observations are encoded once,
for all its seeds, representations and protocols (see :mod:`dbench.studies.tasks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dbench._json import canonical_json
from dbench.choices import Representation
from dbench.errors import ConfigError
from dbench.evaluation.options import EvaluationOptions
from dbench.studies.spec import SweepSpec

#: Most jobs one sweep may hold (Locatello et al.'s whole study is about 227,000).
MAX_JOBS = 5_000_000


@dataclass(frozen=True)
class JobConfig:
    """One evaluation set-up: a protocol (as resolved data), a dataset, a representation, a seed.

    ``protocol`` is the resolved base protocol, shipped to workers as data so that they need neither
    the protocol file nor the client's bundled copy; ``record`` is the protocol record every result of
    this set-up carries (derived ``+custom`` when seeds or parameters are overridden).
    """

    protocol: dict[str, Any]
    dataset: str
    representation: str
    seed: int | None
    metrics: tuple[str, ...] | None
    params: dict[str, dict[str, Any]]
    backend: str | None
    batch_size: int
    record: dict[str, Any]
    seeds: tuple[int, ...]
    metric_params: dict[str, dict[str, Any]]
    resolved_backend: str
    limit: float | None = None

    @property
    def record_hash(self) -> str:
        """The protocol hash the results of this set-up record."""
        return str(self.record["hash"])

    def options(self, *, data_dir: str | None = None, cache_dir: str | None = None,
                invocation: str | None = None) -> EvaluationOptions:
        """The :class:`EvaluationOptions` of ``dbench evaluate`` for this set-up (one dataset and representation)."""
        return EvaluationOptions(
            protocol=self.protocol,
            dataset=self.dataset,
            representation=self.representation,  # type: ignore[arg-type]  # checked when resolved
            seed=self.seed,
            metrics=self.metrics,
            params=self.params,
            backend=self.backend,  # type: ignore[arg-type]
            batch_size=self.batch_size,
            limit=self.limit,
            data_dir=data_dir,
            cache_dir=cache_dir,
            invocation=invocation,
        )

    def describe(self) -> str:
        seed = "protocol seeds" if self.seed is None else f"seed {self.seed}"
        return f"{self.record['name']} {self.dataset}/{self.representation} {seed}"


@dataclass(frozen=True)
class EncoderRef:
    """The encoder of a job: absolute path, name and fingerprint (computed by the client)."""

    path: str
    name: str
    fingerprint: str


@dataclass(frozen=True)
class Job:
    """One evaluation: an encoder and a :class:`JobConfig`, with its deterministic key."""

    encoder: EncoderRef
    config: JobConfig
    key: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", job_key(self.encoder.fingerprint, self.config))

    def describe(self) -> str:
        return f"{self.encoder.name} {self.config.describe()}"


def job_key(fingerprint: str, config: JobConfig) -> str:
    """SHA-256 (hex) of the canonical JSON of what identifies one evaluation (see the module docstring)."""
    ident = {
        "encoder": fingerprint,
        "dataset": config.dataset,
        "representation": config.representation,
        "seed": config.seed,
        "protocol": config.record_hash,
    }
    return hashlib.sha256(canonical_json(ident).encode("ascii")).hexdigest()


def job_configs(spec: SweepSpec) -> list[JobConfig]:
    """Every (protocol, dataset, representation, seed) of the spec, resolved as ``dbench evaluate`` would.

    Raises :class:`ConfigError` (one line) for a bad protocol, dataset, override or seed.
    """
    from dbench.datasets import DATASETS
    from dbench.evaluation.pipeline import resolve_config
    from dbench.protocols import resolve_protocol

    for name in spec.datasets or ():
        if name not in DATASETS:
            raise ConfigError(f"datasets: unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    configs: dict[tuple[str, str, str, int | None], JobConfig] = {}
    for protocol_spec in spec.protocols:
        base = resolve_protocol(protocol_spec)
        # None: the protocol's own (seeds in one job, every dataset, every representation).
        seeds: list[int | None] = [*spec.seeds] if spec.seeds else [None]
        datasets: list[str | None] = [*spec.datasets] if spec.datasets else [None]
        representations: list[Representation | None] = [*spec.representations] if spec.representations else [None]
        for seed in seeds:
            for dataset in datasets:
                for representation in representations:
                    options = EvaluationOptions(
                        protocol=base, dataset=dataset, representation=representation, seed=seed,
                        metrics=spec.metrics, params=spec.set, backend=spec.backend, batch_size=spec.batch_size,
                        limit=spec.limit,
                    )
                    for cfg in resolve_config(options):
                        config = JobConfig(
                            protocol=base,
                            dataset=cfg.dataset,
                            representation=cfg.representation,
                            seed=seed,
                            metrics=tuple(spec.metrics) if spec.metrics else None,
                            params={k: dict(v) for k, v in spec.set.items()},
                            backend=spec.backend,
                            batch_size=cfg.batch_size,
                            record=dict(cfg.protocol),
                            seeds=tuple(cfg.seeds),
                            metric_params={k: dict(v) for k, v in cfg.metrics.items()},
                            resolved_backend=str(cfg.backend),
                            limit=spec.limit,
                        )
                        configs.setdefault((config.record_hash, cfg.dataset, cfg.representation, seed), config)
    return list(configs.values())


def check_job_count(n_encoders: int, n_configs: int) -> None:
    """Refuse a sweep over :data:`MAX_JOBS` jobs before any of them is built."""
    if n_encoders * n_configs > MAX_JOBS:
        raise ConfigError(f"the sweep has {n_encoders} encoders x {n_configs} set-ups = {n_encoders * n_configs} jobs, "
                          f"over the limit of {MAX_JOBS}; split it into several sweeps")


@dataclass
class EncodeGroup:
    """The pending jobs of one encoder on one dataset: encoded once, then scored job by job."""

    encoder: EncoderRef
    dataset: str
    jobs: list[Job]

    @property
    def batch_size(self) -> int:
        return self.jobs[0].config.batch_size


def group_jobs(jobs: Iterable[Job]) -> list[EncodeGroup]:
    """Jobs grouped by (encoder, dataset), in first-seen order."""
    groups: dict[tuple[str, str, str], EncodeGroup] = {}
    for job in jobs:
        ident = (job.encoder.path, job.encoder.fingerprint, job.config.dataset)
        if ident not in groups:
            groups[ident] = EncodeGroup(job.encoder, job.config.dataset, [])
        groups[ident].jobs.append(job)
    return list(groups.values())


__all__ = ["MAX_JOBS", "EncodeGroup", "EncoderRef", "Job", "JobConfig", "check_job_count", "group_jobs", "job_configs",
           "job_key"]
