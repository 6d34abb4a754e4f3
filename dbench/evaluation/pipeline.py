"""The evaluation pipeline: plan every metric, encode each unique observation once, score.

``evaluate`` takes plain, serialisable inputs (an encoder spec such as a path, a dataset name, metric
names or a protocol, seeds) so that a sweep can ship evaluations to worker processes or a cluster.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from dbench.backend import get_backend
from dbench.errors import ConfigError, DbenchError
from dbench.evaluation.code_table import CodeTable
from dbench.evaluation.result import EvaluationResult

log = logging.getLogger(__name__)

DEFAULT_PROTOCOL = "quick"


def metric_rng(seed: int, metric: str) -> np.random.Generator:
    """The random generator of one metric: derived from the seed and the metric's name only.

    Adding or removing another metric therefore never changes this metric's samples.
    """
    salt = int.from_bytes(hashlib.sha256(metric.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed), salt]))


@dataclass
class EvaluationConfig:
    """The fully resolved description of one evaluation run (plain data)."""

    dataset: str
    metrics: dict[str, dict[str, Any]]
    seeds: list[int]
    representation: str = "mean"
    backend: str = "auto"
    batch_size: int = 256
    protocol: dict[str, Any] = field(default_factory=dict)


def resolve_config(
    *,
    protocol: str | os.PathLike | Mapping[str, Any] | None,
    dataset: str | None,
    metrics: Sequence[str] | None,
    seed: int | Sequence[int] | None,
    params: Mapping[str, Mapping[str, Any]] | None,
    representation: str | None,
    backend: str | None,
    batch_size: int | None,
) -> list[EvaluationConfig]:
    """Merge a protocol with explicit overrides into one config per (dataset, representation)."""
    from dbench.protocols import load_protocol, protocol_hash, resolve_protocol

    def get_metric(name: str):
        from dbench.metrics import get_metric as _get

        try:
            return _get(name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    proto = load_protocol(protocol if protocol is not None else DEFAULT_PROTOCOL)
    resolved = resolve_protocol(proto)
    metric_params: dict[str, dict[str, Any]] = dict(resolved["metrics"])
    if metrics:
        unknown_in_protocol = [m for m in metrics if m not in metric_params]
        chosen = {}
        for name in metrics:
            spec = get_metric(name)  # unknown names fail here with the list of known metrics
            chosen[name] = metric_params[name] if name not in unknown_in_protocol else spec.resolve({})
        metric_params = chosen
    for name, overrides in (params or {}).items():
        if name not in metric_params:
            raise ConfigError(f"--set names metric {name!r}, which is not being evaluated")
        try:
            metric_params[name] = get_metric(name).resolve({**metric_params[name], **overrides})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    seeds = list(resolved["seeds"]) if seed is None else ([int(seed)] if np.isscalar(seed) else [int(s) for s in seed])
    datasets = [dataset] if dataset else list(resolved["datasets"])
    reps = resolved["representation"]
    reps = [representation] if representation else (list(reps) if isinstance(reps, (list, tuple)) else [reps])
    proto_record = {
        "name": resolved["name"],
        "version": resolved["version"],
        "hash": protocol_hash(proto),
        "resolved": resolved,
    }
    if metrics or params or seed is not None:
        # Overrides make a different protocol: record what actually ran under a derived name and
        # hash, so a result is never ranked as if it had followed the named protocol.
        from dbench.protocols import hash_resolved

        modified = {**resolved, "name": f"{resolved['name']}+custom", "metrics": metric_params, "seeds": seeds}
        proto_record = {
            "name": modified["name"],
            "version": resolved["version"],
            "hash": hash_resolved(modified),
            "resolved": modified,
            "base_hash": proto_record["hash"],
        }
    return [
        EvaluationConfig(
            dataset=ds,
            metrics=metric_params,
            seeds=seeds,
            representation=rep,
            backend=backend or resolved.get("backend", "auto"),
            batch_size=int(batch_size or resolved.get("batch_size", 256)),
            protocol=proto_record,
        )
        for ds in datasets
        for rep in reps
    ]


def evaluate(
    encoder: Any,
    *,
    protocol: str | os.PathLike | Mapping[str, Any] | None = None,
    dataset: str | None = None,
    metrics: Sequence[str] | None = None,
    seed: int | Sequence[int] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    representation: str | None = None,
    backend: str | None = None,
    batch_size: int | None = None,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``encoder`` and return the result of the first (dataset, representation) pair.

    ``encoder`` is anything :func:`dbench.encoders.load_encoder` accepts (a path to a Python file,
    TorchScript file or trained run folder; a callable; an object with ``encode``; a torch module).
    The protocol (default ``quick``) supplies datasets, metrics with their parameters, seeds and
    representation; the other arguments override it. Use :func:`evaluate_all` for protocols that
    list several datasets or representations.
    """
    return evaluate_all(
        encoder,
        protocol=protocol,
        dataset=dataset,
        metrics=metrics,
        seed=seed,
        params=params,
        representation=representation,
        backend=backend,
        batch_size=batch_size,
        data_dir=data_dir,
        cache_dir=cache_dir,
        progress=progress,
    )[0]


def evaluate_all(encoder: Any, *, data_dir=None, cache_dir=None, progress: bool = False, **overrides) -> list[EvaluationResult]:
    """Evaluate ``encoder`` on every (dataset, representation) pair of the protocol; one result each."""
    from dbench.encoders import load_encoder

    configs = resolve_config(
        protocol=overrides.get("protocol"),
        dataset=overrides.get("dataset"),
        metrics=overrides.get("metrics"),
        seed=overrides.get("seed"),
        params=overrides.get("params"),
        representation=overrides.get("representation"),
        backend=overrides.get("backend"),
        batch_size=overrides.get("batch_size"),
    )
    from dbench.datasets import get_dataset

    # In-memory encoders are fingerprinted by encoding a probe batch: give it the dataset's image shape.
    first = get_dataset(configs[0].dataset, data_dir=data_dir)
    loaded = load_encoder(encoder, probe_shape=tuple(first.observation_shape))
    return [run_config(loaded, cfg, encoder_spec=encoder, data_dir=data_dir, cache_dir=cache_dir, progress=progress) for cfg in configs]


def plan_config(cfg: EvaluationConfig, ds: Any) -> dict[tuple[int, str], Any]:
    """Every metric's :class:`~dbench.metrics.Plan` for every seed of ``cfg``, keyed (seed, metric)."""
    from dbench.metrics import get_metric

    plans = {}
    for seed in cfg.seeds:
        for name, overrides in cfg.metrics.items():
            spec = get_metric(name)
            try:
                plans[(seed, name)] = spec.plan(ds, metric_rng(seed, name), spec.resolve(overrides))
            except ValueError as exc:  # parameters that cannot work on this dataset
                raise ConfigError(f"{name} on {cfg.dataset}: {str(exc).splitlines()[0]}") from None
    return plans


def query_indices(plans: Mapping[Any, Any]) -> np.ndarray:
    """All observation indices that ``plans`` request, in request order (duplicates kept)."""
    parts = [np.asarray(idx, dtype=np.int64).ravel() for plan in plans.values() for idx in plan.requests.values()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def run_config(
    loaded: Any,
    cfg: EvaluationConfig,
    *,
    encoder_spec: Any = None,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    precomputed: Mapping[str, np.ndarray] | None = None,
) -> EvaluationResult:
    """Run one resolved evaluation with an already-loaded encoder.

    ``precomputed`` (``{"indices", "mean", optional "logvar"}``) pre-fills the code table, as for a
    submission of codes for a protocol's query set; ``loaded`` is then only asked for what is missing.
    """
    from dbench.datasets import get_dataset
    from dbench.metrics import get_metric

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = get_dataset(cfg.dataset, data_dir=data_dir)
    backend = get_backend(cfg.backend)
    specs = {name: get_metric(name) for name in cfg.metrics}
    params = {name: specs[name].resolve(p) for name, p in cfg.metrics.items()}

    # 1. Plan: every metric, every seed, decides which observations it needs.
    plans = plan_config(cfg, ds)
    seconds["plan"] = time.perf_counter() - t0

    # 2. Encode once: the union of all requests, each unique observation once, metric by metric so
    #    that a failing encoder still leaves the earlier metrics scoreable.
    table = CodeTable(
        ds,
        loaded.encode_arrays,
        batch_size=cfg.batch_size,
        cache_dir=cache_dir,
        fingerprint=loaded.fingerprint,
    )
    encode_error: str | None = None
    try:
        if precomputed is not None:
            table.add(precomputed["indices"], precomputed["mean"], precomputed.get("logvar"))
        table.ensure(query_indices(plans), progress=progress, desc=f"encoding {cfg.dataset}")
    except DbenchError as exc:
        encode_error = str(exc)
    seconds["encode"] = table.seconds_encoding

    # 3. Score: each metric reads its codes from the table; a failure is recorded, the rest go on.
    per_seed: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    artifacts: dict[str, Any] = {}
    for seed in cfg.seeds:
        scores: dict[str, dict[str, float]] = {}
        for name in cfg.metrics:
            plan = plans[(seed, name)]
            if not all(table.covers(idx) for idx in plan.requests.values()):
                errors[name] = f"not scored: encoding failed before its observations were encoded ({encode_error})"
                continue
            t1 = time.perf_counter()
            try:
                codes = {
                    key: backend.asarray(_representation(table, idx, cfg.representation, seed))
                    for key, idx in plan.requests.items()
                }
                scored = specs[name].score(plan, codes, params[name])
                scores[name] = {k: float(v) for k, v in scored.scores.items()}
                if scored.artifacts and seed == cfg.seeds[0]:  # arrays for plots, from the first seed
                    artifacts[name] = scored.artifacts
            except (ValueError, DbenchError) as exc:
                errors[name] = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t1
        per_seed.append({"seed": seed, "scores": scores})
    seconds["total"] = time.perf_counter() - t0

    mean_scores, std_scores = _aggregate(per_seed)
    status = "ok" if not errors and encode_error is None else ("partial" if mean_scores else "failed")
    return EvaluationResult(
        dataset=cfg.dataset,
        representation=cfg.representation,
        seeds=list(cfg.seeds),
        backend=backend.describe(),
        protocol=cfg.protocol,
        encoder={
            "name": getattr(loaded, "name", str(encoder_spec)),
            "fingerprint": loaded.fingerprint,
            "spec": str(encoder_spec) if isinstance(encoder_spec, (str, os.PathLike)) else getattr(loaded, "name", ""),
        },
        metric_params=params,
        scores=mean_scores,
        scores_std=std_scores if len(cfg.seeds) > 1 else None,
        per_seed=per_seed if len(cfg.seeds) > 1 else None,
        seconds={k: round(v, 4) for k, v in seconds.items()},
        n_encoded=int(table.n_encoded),
        errors=errors,
        status=status,
        error=encode_error,
        artifacts=artifacts,
    )


def _representation(table: CodeTable, indices: np.ndarray, representation: str, seed: int) -> np.ndarray:
    mean = table.lookup(indices).astype(np.float64, copy=False)
    if representation == "mean":
        return mean
    if representation != "sampled":
        raise ConfigError(f"unknown representation {representation!r}; use 'mean' or 'sampled'")
    from dbench.encoders import sample_representation

    logvar = table.lookup(indices, part="logvar").astype(np.float64, copy=False)
    flat_idx = np.asarray(indices, dtype=np.int64).ravel()
    sampled = sample_representation(mean.reshape(flat_idx.size, -1), logvar.reshape(flat_idx.size, -1), flat_idx, seed)
    return np.asarray(sampled, dtype=np.float64).reshape(mean.shape)


def _aggregate(per_seed: list[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Mean and standard deviation over seeds of every score present in all seeds."""
    if not per_seed:
        return {}, {}
    if len(per_seed) == 1:
        return per_seed[0]["scores"], {}
    means: dict[str, dict[str, float]] = {}
    stds: dict[str, dict[str, float]] = {}
    first = per_seed[0]["scores"]
    for metric, keys in first.items():
        for key in keys:
            values = [run["scores"].get(metric, {}).get(key) for run in per_seed]
            if any(v is None for v in values):
                continue
            arr = np.asarray(values, dtype=np.float64)
            means.setdefault(metric, {})[key] = float(arr.mean())
            stds.setdefault(metric, {})[key] = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return means, stds
