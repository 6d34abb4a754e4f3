"""The evaluation pipeline: plan every metric, encode each unique observation once, score.

``evaluate`` takes plain, serialisable inputs (an encoder spec such as a path, and
:class:`~dbench.evaluation.options.EvaluationOptions` of names, numbers and paths) so that a sweep can
ship evaluations to worker processes or a cluster. ``dbench.evaluate`` is the same call with the
options as keyword arguments.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dbench.backend import get_backend
from dbench.choices import BackendName, Representation, Status
from dbench.codes import CodeTable, table_representation
from dbench.errors import ConfigError, DbenchError, EncoderError
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.provenance import environment_info, provenance_info
from dbench.evaluation.result import (
    EncoderRecord,
    EstimatorRecord,
    EvaluationResult,
    ProtocolRecord,
    Provenance,
    SeedRun,
)
from dbench.protocols import (
    hash_resolved,
    load_protocol,
    protocol_hash,
    resolve_protocol,
)

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
    """The fully resolved description of one evaluation run (plain data).

    ``notes`` are caveats the result carries (one sentence each): a ``--limit`` raised for a metric so
    that its parameters stay valid, procedural data under a protocol whose numbers are compared with
    published ones.
    """

    dataset: str
    metrics: dict[str, dict[str, Any]]
    seeds: list[int]
    representation: Representation = "mean"
    backend: BackendName = "auto"
    batch_size: int = 256
    protocol: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_config(options: EvaluationOptions | None = None) -> list[EvaluationConfig]:
    """Merge a protocol with the options' overrides into one config per (dataset, representation)."""
    options = options or EvaluationOptions()

    def get_metric(name: str):
        from dbench.metrics import get_metric as _get

        try:
            return _get(name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    proto = load_protocol(options.protocol if options.protocol is not None else DEFAULT_PROTOCOL)
    resolved = resolve_protocol(proto)
    metric_params: dict[str, dict[str, Any]] = dict(resolved["metrics"])
    if options.metrics:
        unknown_in_protocol = [m for m in options.metrics if m not in metric_params]
        chosen = {}
        for name in options.metrics:
            spec = get_metric(name)  # unknown names fail here with the list of known metrics
            chosen[name] = metric_params[name] if name not in unknown_in_protocol else spec.resolve({})
        metric_params = chosen
    for name, overrides in (options.params or {}).items():
        if name not in metric_params:
            raise ConfigError(f"--set names metric {name!r}, which is not being evaluated")
        try:
            metric_params[name] = get_metric(name).resolve({**metric_params[name], **overrides})
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    seeds = list(resolved["seeds"]) if options.seeds is None else list(options.seeds)
    datasets = list(options.datasets) if options.datasets else list(resolved["datasets"])
    reps = [options.representation] if options.representation else list(resolved["representation"])
    notes: list[str] = []
    if options.limit is not None:
        metric_params, notes = _limited(metric_params, options.limit, get_metric)
    proto_record = {
        "name": resolved["name"],
        "version": resolved["version"],
        "hash": protocol_hash(proto),
        "resolved": resolved,
    }
    # A dataset or representation the protocol does not list is another protocol too (choosing one
    # of those it lists is not: that result still follows the protocol).
    outside = any(d not in resolved["datasets"] for d in datasets) or any(r not in resolved["representation"] for r in reps)
    if options.overrides_protocol or outside:
        # Overrides make a different protocol: record what actually ran under a derived name and
        # hash, so a result is never ranked as if it had followed the named protocol.
        modified = {**resolved, "name": f"{resolved['name']}+custom", "metrics": metric_params, "seeds": seeds,
                    "datasets": datasets, "representation": reps}
        if options.limit is not None:
            modified["limit"] = options.limit
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
            backend=options.backend or resolved.get("backend", "auto"),
            batch_size=int(options.batch_size or resolved.get("batch_size", 256)),
            protocol=proto_record,
            notes=[*notes, *literature_notes(resolved["name"], ds)],
        )
        for ds in datasets
        for rep in reps
    ]


def _limited(
    metric_params: dict[str, dict[str, Any]], limit: float, get_metric: Any
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every metric's sample sizes scaled by ``limit`` (:meth:`MetricSpec.limit`), and a note per raised floor."""
    scaled, notes = {}, []
    for name, params in metric_params.items():
        spec = get_metric(name)
        scaled[name], floor = spec.limit(params, limit)
        if floor is not None:
            notes.append(f"--limit {limit:g}: {name}'s sample sizes were raised to at least {floor} to satisfy its rules "
                         f"({'; '.join(rule.condition for rule in spec.rules)})")
    return scaled, notes


#: Protocols whose numbers are compared with published ones (disentanglement_lib's defaults).
LITERATURE_PROTOCOLS = ("dlib",)


def literature_notes(protocol_name: str, dataset: str) -> list[str]:
    """A caveat when a protocol meant for comparing with papers runs on procedurally rendered data."""
    from dbench.datasets import OFFICIAL_EQUIVALENT

    if protocol_name not in LITERATURE_PROTOCOLS or dataset not in OFFICIAL_EQUIVALENT:
        return []
    official, download = OFFICIAL_EQUIVALENT[dataset]
    note = (f"{dataset} is rendered procedurally: scores are comparable with the literature (disentanglement_lib, "
            f"Locatello et al. 2019) only on the official file (dataset {official}; get it with `{download}`)")
    return [note]


def evaluate(encoder: Any, options: EvaluationOptions | None = None) -> EvaluationResult:
    """Evaluate ``encoder`` on the one (dataset, representation) pair the options select.

    ``encoder`` is anything :func:`dbench.encoders.load_encoder` accepts (a path to a Python file,
    TorchScript file or trained run folder; a callable; an object with ``encode``; a torch module).
    A protocol that lists several datasets or representations is a :class:`ConfigError` unless
    ``dataset``/``representation`` pick one: use :func:`evaluate_all` to run them all.
    """
    options = options or EvaluationOptions()
    configs = resolve_config(options)
    if len(configs) > 1:
        pairs = ", ".join(f"{cfg.dataset}/{cfg.representation}" for cfg in configs)
        raise ConfigError(
            f"protocol {configs[0].protocol['name']} gives {len(configs)} evaluations ({pairs}); pass "
            "dataset= and/or representation= to choose one, or use dbench.evaluate_all for all of them"
        )
    loaded, configs, _ = prepare(encoder, configs, options)  # a sampled-only request of a codes-only encoder: EncoderError
    return run_config(loaded, configs[0], options=options, encoder_spec=encoder)


def evaluate_all(encoder: Any, options: EvaluationOptions | None = None) -> list[EvaluationResult]:
    """Evaluate ``encoder`` on every (dataset, representation) pair of the protocol; one result each.

    A representation the encoder cannot give (``sampled`` from an encoder that returns codes only) is
    skipped with one :class:`UserWarning`; if nothing is left, a :class:`~dbench.errors.ConfigError`.
    """
    options = options or EvaluationOptions()
    loaded, configs, skipped = prepare(encoder, resolve_config(options), options)
    for notice in skipped:
        warnings.warn(notice, UserWarning, stacklevel=2)
    return [run_config(loaded, cfg, options=options, encoder_spec=encoder) for cfg in configs]


def prepare(
    encoder: Any, configs: list[EvaluationConfig], options: EvaluationOptions
) -> tuple[Any, list[EvaluationConfig], list[str]]:
    """Load ``encoder`` once for ``configs``; drop the configs it cannot serve, with one notice each kind.

    Returns ``(loaded encoder, configs to run, notices)``. An encoder that returns codes only cannot
    give the ``sampled`` representation: those configs are dropped (one notice) when others remain,
    and a :class:`~dbench.errors.ConfigError` saying what to ask for instead is raised when none do.
    """
    from dbench.datasets import get_dataset
    from dbench.encoders import load_encoder

    # In-memory encoders are fingerprinted by encoding a probe batch: give it the dataset's image shape.
    first = get_dataset(configs[0].dataset, data_dir=options.data_dir)
    loaded = load_encoder(encoder, probe_shape=first.observation_shape)
    if all(cfg.representation != "sampled" for cfg in configs):
        return loaded, configs, []
    # One observation tells whether the encoder gives a posterior (mean, logvar) or codes only; an
    # encoder that fails on it fails in the run too, where the failure is recorded per result.
    try:
        if loaded.encode(first.images(np.zeros(1, dtype=np.int64))).logvar is not None:
            return loaded, configs, []
    except EncoderError:
        return loaded, configs, []
    kept = [cfg for cfg in configs if cfg.representation != "sampled"]
    if not kept:
        raise ConfigError(
            f"encoder {loaded.name!r} returns codes only, so it has no sampled representation; "
            "evaluate the mean representation (--representation mean / representation='mean'), or return "
            "(mean, logvar) from the encoder"
        )
    dropped = len(configs) - len(kept)
    notice = (f"skipped the sampled representation ({dropped} evaluation{'s' if dropped > 1 else ''}): encoder "
              f"{loaded.name!r} returns codes only, not (mean, logvar); the mean representation is evaluated")
    return loaded, kept, [notice]


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
                limit = cfg.protocol.get("resolved", {}).get("limit")
                hint = (f" (--limit {limit:g} scaled {name}'s sample sizes: give a larger --limit, or raise one with "
                        f"--set {name}.PARAM=VALUE)") if limit is not None else ""
                raise ConfigError(f"{name} on {cfg.dataset}: {str(exc).splitlines()[0]}{hint}") from None
    return plans


def query_indices(plans: Mapping[Any, Any]) -> np.ndarray:
    """All observation indices that ``plans`` request, in request order (duplicates kept)."""
    parts = [np.asarray(idx, dtype=np.int64).ravel() for plan in plans.values() for idx in plan.requests.values()]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def run_config(
    loaded: Any,
    cfg: EvaluationConfig,
    *,
    options: EvaluationOptions | None = None,
    encoder_spec: Any = None,
    precomputed: Mapping[str, np.ndarray] | None = None,
    on_codes: Callable[[int, str, Any, dict[str, np.ndarray]], None] | None = None,
) -> EvaluationResult:
    """Run one resolved evaluation with an already-loaded encoder.

    Of ``options`` only where things are is read (``data_dir``, ``cache_dir``, ``progress``,
    ``invocation``): what to evaluate is already resolved in ``cfg``. ``precomputed`` (``{"indices",
    "mean", optional "logvar"}``) pre-fills the code table, as for a submission of codes for a
    protocol's query set; ``loaded`` is then only asked for what is missing. ``on_codes(seed, metric,
    plan, codes)`` receives every metric's NumPy codes (by request key, in the representation scored)
    before it is scored, e.g. to save them (``dbench evaluate --save-codes``).
    """
    from dbench.datasets import get_dataset
    from dbench.metrics import get_metric

    options = options or EvaluationOptions()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = get_dataset(cfg.dataset, data_dir=options.data_dir)
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
        cache_dir=options.cache_dir,
        fingerprint=loaded.fingerprint,
    )
    encode_error: str | None = None
    try:
        if precomputed is not None:
            table.add(precomputed["indices"], precomputed["mean"], precomputed.get("logvar"))
        table.ensure(query_indices(plans), progress=options.progress, desc=f"encoding {cfg.dataset}")
    except DbenchError as exc:
        encode_error = str(exc)
    seconds["encode"] = table.seconds_encoding

    # 3. Score: each metric reads its codes from the table; a failure is recorded, the rest go on.
    per_seed: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    artifacts: dict[str, Any] = {}
    estimators: dict[str, dict[str, str]] = {}
    for seed in cfg.seeds:
        scores: dict[str, dict[str, float]] = {}
        for name in cfg.metrics:
            plan = plans[(seed, name)]
            if not all(table.covers(idx) for idx in plan.requests.values()):
                errors[name] = f"not scored: encoding failed before its observations were encoded ({encode_error})"
                continue
            t1 = time.perf_counter()
            try:
                host = {key: table_representation(table, idx, cfg.representation, seed) for key, idx in plan.requests.items()}
                if on_codes is not None:
                    on_codes(seed, name, plan, host)
                codes = {key: backend.asarray(value) for key, value in host.items()}
                scored = specs[name].score(plan, codes, params[name])
                # Every key declared, every value a finite number inside its declared bounds: a metric
                # that breaks its own declaration is recorded as failed rather than ranked.
                specs[name].check_scores(scored.scores)
                scores[name] = {k: float(v) for k, v in scored.scores.items()}
                if scored.artifacts and seed == cfg.seeds[0]:  # arrays for plots, from the first seed
                    artifacts[name] = scored.artifacts
                if scored.estimator and name not in estimators:  # which estimator ran where
                    estimators[name] = dict(scored.estimator)
            except (ValueError, DbenchError) as exc:
                errors[name] = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t1
        per_seed.append({"seed": seed, "scores": scores})
    seconds["total"] = time.perf_counter() - t0

    mean_scores, std_scores = _aggregate(per_seed)
    status: Status = "ok" if not errors and encode_error is None else ("partial" if mean_scores else "failed")
    return EvaluationResult(
        dataset=cfg.dataset,
        representation=cfg.representation,
        seeds=list(cfg.seeds),
        backend=backend.describe(),
        protocol=ProtocolRecord.model_validate(cfg.protocol),
        encoder=EncoderRecord(
            name=getattr(loaded, "name", str(encoder_spec)),
            fingerprint=loaded.fingerprint,
            spec=str(encoder_spec) if isinstance(encoder_spec, (str, os.PathLike)) else getattr(loaded, "name", ""),
        ),
        metric_params=params,
        scores=mean_scores,
        scores_std=std_scores if len(cfg.seeds) > 1 else None,
        per_seed=[SeedRun.model_validate(run) for run in per_seed] if len(cfg.seeds) > 1 else None,
        seconds={k: round(v, 4) for k, v in seconds.items()},
        estimators={name: EstimatorRecord(**record) for name, record in estimators.items()} or None,
        n_encoded=int(table.n_encoded),
        errors=errors,
        status=status,
        error=encode_error,
        environment=environment_info(),
        provenance=Provenance.model_validate(provenance_info(invocation=options.invocation, encoder_spec=encoder_spec)),
        spread=spread_meanings(specs, cfg.seeds, mean_scores),
        notes=list(cfg.notes),
    ).with_artifacts(artifacts)


def spread_meanings(specs: Mapping[str, Any], seeds: list[int], scores: Mapping[str, Mapping[str, float]]) -> dict[str, str]:
    """What each standard deviation in a result is taken over, for ``result.spread``.

    ``scores_std`` (several seeds) is over the metric seeds; a score key ending ``:std`` is what its
    metric declares (a probe's spread over its training-set draws).
    """
    spread: dict[str, str] = {}
    if len(seeds) > 1:
        spread["scores_std"] = (f"standard deviation (ddof=1) over the {len(seeds)} metric seeds "
                                f"{', '.join(map(str, seeds))}; each score is their mean")
    for metric, keys in scores.items():
        declared = {specs[metric].score_key(key) for key in keys if key.endswith(":std") and metric in specs}
        for score_key in sorted(declared, key=lambda k: k.key):
            spread[f"{metric}.{score_key.key}"] = score_key.doc
    return spread


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
