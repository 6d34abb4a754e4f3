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
from functools import partial
from typing import Any

import numpy as np

from dbench._progress import Progress
from dbench.backend import get_backend
from dbench.choices import BackendName, Representation, Status
from dbench.codes import CodeTable, table_representation
from dbench.errors import ConfigError, DbenchError, EncoderError, signal_name
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
from dbench.evaluation.run_checks import (
    DeterminismWarning,
    LargeRunWarning,
    determinism_warning,
    large_run_warning,
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


#: ``checkpoint(result, n_results)``: called with the partial result after every metric run.
Checkpoint = Callable[[EvaluationResult, int], None]


def evaluate_all(
    encoder: Any, options: EvaluationOptions | None = None, *, checkpoint: Checkpoint | None = None
) -> list[EvaluationResult]:
    """Evaluate ``encoder`` on every (dataset, representation) pair of the protocol; one result each.

    A representation the encoder cannot give (``sampled`` from an encoder that returns codes only) is
    skipped with one :class:`UserWarning`; if nothing is left, a :class:`~dbench.errors.ConfigError`.
    ``checkpoint(result, n_results)``, when given, receives the result so far (status ``partial``,
    unfinished metrics in ``errors``) after every metric run, so a run killed part-way (SIGKILL, out
    of memory) still leaves what it had finished. Ctrl-C or SIGTERM raises :class:`EvaluationInterrupted`
    holding the results finished and the partial one interrupted.
    """
    options = options or EvaluationOptions()
    configs = resolve_config(options)
    results: list[EvaluationResult] = []
    try:
        loaded, configs, skipped = prepare(encoder, configs, options)
        for notice in skipped:
            warnings.warn(notice, UserWarning, stacklevel=2)
        for cfg in configs:
            save = None if checkpoint is None else partial(_checkpoint, checkpoint, len(configs))
            results.append(run_config(loaded, cfg, options=options, encoder_spec=encoder, checkpoint=save))
    except EvaluationInterrupted as interrupted:
        raise EvaluationInterrupted(results + interrupted.results, interrupted.signal_name) from None
    except KeyboardInterrupt as interrupt:  # while loading the encoder or its dataset
        raise EvaluationInterrupted(results, signal_name(interrupt)) from None
    return results


def _checkpoint(checkpoint: Checkpoint, n_results: int, result: EvaluationResult) -> None:
    checkpoint(result, n_results)


class EvaluationInterrupted(KeyboardInterrupt):
    """An evaluation stopped by Ctrl-C (SIGINT) or SIGTERM, with what it had finished.

    ``results`` holds the complete results of the (dataset, representation) pairs finished before the
    interrupt and, when scoring had begun, the partial result of the one interrupted (status
    ``partial``, or ``failed`` when no metric had finished; ``error`` says what was interrupted).
    ``signal_name`` is ``"SIGINT"`` or ``"SIGTERM"``. A ``KeyboardInterrupt``, so code that stops on
    Ctrl-C still does.
    """

    def __init__(self, results: list[EvaluationResult], signal_name: str) -> None:
        super().__init__(signal_name)
        self.results = results
        self.signal_name = signal_name


def prepare(
    encoder: Any, configs: list[EvaluationConfig], options: EvaluationOptions
) -> tuple[Any, list[EvaluationConfig], list[str]]:
    """Load ``encoder`` once for ``configs``; drop the configs it cannot serve, with one notice each kind.

    Returns ``(loaded encoder, configs to run, notices)``. An encoder that returns codes only cannot
    give the ``sampled`` representation: those configs are dropped (one notice) when others remain,
    and a :class:`~dbench.errors.ConfigError` saying what to ask for instead is raised when none do.
    Data folders named by environment variables are made absolute first: user code that changes the
    working folder changes nothing.
    """
    from dbench.datasets import get_dataset
    from dbench.datasets._files import pin_data_dirs
    from dbench.encoders import load_encoder

    pin_data_dirs()
    source = os.path.abspath(os.fspath(encoder)) if isinstance(encoder, (str, os.PathLike)) else None
    # In-memory encoders are fingerprinted by encoding a probe batch: give it the dataset's image shape.
    first = get_dataset(configs[0].dataset, data_dir=options.data_dir)
    loaded = load_encoder(encoder, probe_shape=first.observation_shape)
    loaded.source = source  # fixed before its code ran: the file a result's provenance names
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
    checkpoint: Callable[[EvaluationResult], None] | None = None,
    on_codes: Callable[[int, str, Any, dict[str, np.ndarray]], None] | None = None,
) -> EvaluationResult:
    """Run one resolved evaluation with an already-loaded encoder.

    Of ``options`` only where things are is read (``data_dir``, ``cache_dir``, ``progress``,
    ``invocation``): what to evaluate is already resolved in ``cfg``. ``precomputed`` (``{"indices",
    "mean", optional "logvar"}``) pre-fills the code table, as for a submission of codes for a
    protocol's query set; ``loaded`` is then only asked for what is missing. ``on_codes(seed, metric,
    plan, codes)`` receives every metric's NumPy codes (by request key, in the representation scored)
    before it is scored, e.g. to save them (``dbench evaluate --save-codes``).

    After the first encoded batch, the encoder is asked once more for a few of its images (the
    determinism probe: codes that differ are a warning, recorded in the result's ``warnings``) and a
    run far larger than the metrics' defaults gets a warning with its estimated time. A metric that
    fails is recorded in ``errors`` and the others go on. Ctrl-C or SIGTERM raises
    :class:`EvaluationInterrupted` carrying the partial result: the metrics already finished.
    ``checkpoint(result)`` receives the result so far after every metric run.
    """
    from dbench.datasets import get_dataset
    from dbench.metrics import get_metric

    options = options or EvaluationOptions()
    run = _Run(cfg, time.perf_counter())
    ds = get_dataset(cfg.dataset, data_dir=options.data_dir)
    backend = get_backend(cfg.backend)
    specs = {name: get_metric(name) for name in cfg.metrics}
    params = {name: specs[name].resolve(p) for name, p in cfg.metrics.items()}

    # 1. Plan: every metric, every seed, decides which observations it needs.
    plans = plan_config(cfg, ds)
    run.seconds["plan"] = time.perf_counter() - run.t0

    # 2. Encode once: the union of all requests, each unique observation once. A failing encoder
    #    still leaves the metrics whose observations were encoded scoreable.
    table = CodeTable(ds, loaded.encode_arrays, batch_size=cfg.batch_size, cache_dir=options.cache_dir,
                      fingerprint=loaded.fingerprint)
    source = getattr(loaded, "source", None) or encoder_spec  # an absolute path, where prepare() fixed one
    provenance = Provenance.model_validate(provenance_info(invocation=options.invocation, encoder_spec=source))
    result = partial(_result, run, loaded=loaded, cfg=cfg, backend=backend, params=params, table=table,
                     encoder_spec=encoder_spec, specs=specs, provenance=provenance)
    queries = query_indices(plans)
    try:
        try:
            if precomputed is not None:
                table.add(precomputed["indices"], precomputed["mean"], precomputed.get("logvar"))
            desc = f"encoding {cfg.dataset}"
            table.ensure(table.missing(queries)[: cfg.batch_size], progress=options.progress, desc=desc)
            run.warn(determinism_warning(loaded, table, ds, queries), DeterminismWarning, record=True)
            if table.width is not None:
                run.warn(large_run_warning(params, len(cfg.seeds), n_latents=table.width,
                                           n_factors=len(ds.factor_sizes)), LargeRunWarning)
            table.ensure(queries, progress=options.progress, desc=desc)
        except DbenchError as exc:
            run.encode_error = str(exc)
        run.seconds["encode"] = table.seconds_encoding
        # Rendering runs ahead on a thread: each part's own time shows which one bounds the encode stage.
        run.seconds["render"] = table.seconds_rendering
        run.seconds["encoder"] = table.seconds_encoder
        # 3. Score: each metric reads its codes from the table; a failure is recorded, the rest go on.
        saved = None if checkpoint is None else (lambda: checkpoint(result(pending=True)))
        _score_all(run, plans, specs, params, table, backend, progress=options.progress, checkpoint=saved,
                   on_codes=on_codes)
    except KeyboardInterrupt as interrupt:
        run.seconds.update(encode=table.seconds_encoding, render=table.seconds_rendering, encoder=table.seconds_encoder)
        raise EvaluationInterrupted([result(interrupt=interrupt)], signal_name(interrupt)) from None
    return result()


@dataclass
class _Run:
    """What one run has so far: timings, scores per seed, errors, warnings, the encoder's error."""

    cfg: EvaluationConfig
    t0: float
    seconds: dict[str, float] = field(default_factory=dict)
    scores: dict[int, dict[str, dict[str, float]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    #: per metric that fits a model, which estimator ran on which device (from its first scored seed)
    estimators: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    encode_error: str | None = None
    current: str = "encoding"  # what runs now, for the message of an interrupt

    def warn(self, message: str | None, category: type[Warning], *, record: bool = False) -> None:
        """Issue a one-line warning (and keep it in the result when ``record``); None: nothing to say."""
        if message:
            warnings.warn(message, category, stacklevel=3)
            if record:
                self.warnings.append(message)


def _score_all(run: _Run, plans: Mapping[tuple[int, str], Any], specs: Mapping[str, Any],
               params: Mapping[str, Any], table: CodeTable, backend: Any, *, progress: bool,
               checkpoint: Callable[[], None] | None = None,
               on_codes: Callable[[int, str, Any, dict[str, np.ndarray]], None] | None = None) -> None:
    """Score every (seed, metric) whose codes the table holds, recording scores and failures in ``run``.

    ``checkpoint()`` is called after every metric run that was scored (or failed while scoring);
    ``on_codes`` as in :func:`run_config`.
    """
    from dbench.evaluation.cost import estimate_run

    cfg = run.cfg
    width = table.width
    estimates = {} if width is None else estimate_run(params, n_latents=width, n_factors=len(table.dataset.factor_sizes))
    with Progress("scoring", total=len(cfg.seeds) * len(cfg.metrics), unit="metric runs", enabled=progress) as bar:
        for seed in cfg.seeds:
            scores = run.scores.setdefault(seed, {})
            for name in cfg.metrics:
                plan = plans[(seed, name)]
                if not all(table.covers(idx) for idx in plan.requests.values()):
                    run.errors[name] = f"not scored: encoding failed before its observations were encoded ({run.encode_error})"
                    bar.update()
                    continue
                run.current = f"scoring {name} (seed {seed})"
                bar.step(f"{name} (seed {seed})", estimate=estimates.get(name))
                t1 = time.perf_counter()
                try:
                    host = {key: table_representation(table, idx, cfg.representation, seed)
                            for key, idx in plan.requests.items()}
                    if on_codes is not None:
                        try:
                            on_codes(seed, name, plan, host)
                        except OSError as exc:  # saving codes is a side line: the scores are not affected
                            reason = (exc.strerror or exc.__class__.__name__).lower()
                            warnings.warn(f"cannot save the codes of {name} to {exc.filename or 'their folder'} "
                                          f"({reason}); saving stops, the scores are not affected", UserWarning,
                                          stacklevel=2)
                            on_codes = None
                    codes = {key: backend.asarray(value) for key, value in host.items()}
                    scored = specs[name].score(plan, codes, params[name])
                    # Every key declared, every value a finite number inside its declared bounds: a metric
                    # that breaks its own declaration is recorded as failed rather than ranked.
                    specs[name].check_scores(scored.scores)
                    scores[name] = {k: float(v) for k, v in scored.scores.items()}
                    if scored.artifacts and seed == cfg.seeds[0]:  # arrays for plots, from the first seed
                        run.artifacts[name] = scored.artifacts
                    if scored.estimator and name not in run.estimators:  # which estimator ran where
                        run.estimators[name] = dict(scored.estimator)
                except (ValueError, DbenchError) as exc:
                    run.errors[name] = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                except Exception as exc:  # noqa: BLE001 - one metric failing (MemoryError, a bug) never loses the others
                    run.errors[name] = f"failed with {exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
                run.seconds[name] = run.seconds.get(name, 0.0) + time.perf_counter() - t1
                bar.update()
                if checkpoint is not None:
                    checkpoint()


def _result(run: _Run, *, loaded: Any, cfg: EvaluationConfig, backend: Any, params: dict[str, Any],
            table: CodeTable, encoder_spec: Any, specs: Mapping[str, Any], provenance: Provenance,
            interrupt: BaseException | None = None, pending: bool = False) -> EvaluationResult:
    """The result of ``run`` so far; after an ``interrupt`` (or while ``pending``) every metric not finished is an error."""
    errors = dict(run.errors)
    error = run.encode_error
    if pending:
        for seed in cfg.seeds:
            for name in cfg.metrics:
                if name not in run.scores.get(seed, {}) and name not in errors:
                    errors[name] = "not scored yet: the run stopped before it was scored (this is its last checkpoint)"
        error = error or "a checkpoint of a run in progress: the run stopped before it finished"
    if interrupt is not None:
        sig = signal_name(interrupt)
        for seed in cfg.seeds:
            for name in cfg.metrics:
                if name not in run.scores.get(seed, {}) and name not in errors:
                    errors[name] = f"not scored: interrupted by {sig} ({run.current})"
        finished = sum(len(s) for s in run.scores.values())
        error = (f"interrupted by {sig} while {run.current}; {finished} of {len(cfg.seeds) * len(cfg.metrics)} "
                 "metric runs finished")
    per_seed = [{"seed": seed, "scores": run.scores.get(seed, {})} for seed in cfg.seeds]
    run.seconds["total"] = time.perf_counter() - run.t0
    mean_scores, std_scores = _aggregate(per_seed)
    status: Status = "ok" if not errors and error is None else ("partial" if mean_scores else "failed")
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
        per_seed=[SeedRun.model_validate(seed_run) for seed_run in per_seed] if len(cfg.seeds) > 1 else None,
        seconds={k: round(v, 4) for k, v in run.seconds.items()},
        estimators={name: EstimatorRecord(**record) for name, record in run.estimators.items()} or None,
        n_encoded=int(table.n_encoded),
        errors=errors,
        status=status,
        error=error,
        warnings=list(run.warnings),
        environment=environment_info(),
        provenance=provenance,
        spread=spread_meanings(specs, cfg.seeds, mean_scores),
        notes=list(cfg.notes),
    ).with_artifacts(run.artifacts)


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
