"""The sweep engine: expand a :class:`~dbench.studies.spec.SweepSpec` into jobs, skip finished ones, run the
rest on an executor, write every result as it arrives.

One loop for every executor: tasks are submitted (at most about twice as many as the executor runs at
once, so a stopped sweep has little in flight and a large one does not hold every job's codes in
memory; a training only when a worker is free, as it runs for minutes), the loop waits for the first
future to complete and acts on it, which may submit more tasks; scoring tasks go first, then encoding
tasks, then trainings, so results are written as early as possible:

    train task (optional) -> encode task per (encoder, dataset) -> score task per job -> result file

**The client writes every file.** Workers send back the codes and results (kilobytes for a result;
codes of a group are megabytes at the ``dlib`` protocol's sample sizes), and the client writes them
atomically under ``DIR``. So workers need no shared storage with the client (except for training,
whose run folders are files), a file is never written by two processes at once, and what the
client has written is exactly what is done: stopping the client (SIGTERM, Ctrl-C) loses at most the
tasks in flight, and a rerun of the same command picks up from the files.

Stopping: SIGTERM and SIGINT raise :class:`KeyboardInterrupt` in the client, except while a file is
being written (the signal then takes effect right after it). The executor is shut down with its
tasks cancelled and its workers stopped; :func:`run_sweep` returns a report with ``interrupted`` set.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dbench.errors import ConfigError, EncoderError
from dbench.evaluation.result import validate_result
from dbench.studies.encoders import (
    EncoderSource,
    encoder_fingerprint,
    encoder_name,
    expand_entries,
    fallback_fingerprint,
    source_metadata,
)
from dbench.studies.executors import SweepExecutor, make_executor
from dbench.studies.jobs import EncodeGroup, EncoderRef, Job, JobConfig, check_job_count, group_jobs, job_configs
from dbench.studies.layout import SWEEP_FILE, SweepFolder, write_yaml_atomic
from dbench.studies.progress import SweepProgress
from dbench.studies.records import encoder_record, failure_result, with_shared_encoding
from dbench.studies.spec import SweepSpec
from dbench.studies.tasks import EncodeRequest, GroupCodes, ScoreRequest, TaskOutcome, encode_group, guarded, score_job
from dbench.studies.training import RunSpec, is_trained, runs_of, train_run


@dataclass
class SweepReport:
    """What a sweep did: counts of this run and of earlier ones, and whether it was stopped."""

    out: Path
    jobs: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    done_before: int = 0
    failed_before: int = 0
    trainings: int = 0
    trained: int = 0
    training_failed: int = 0
    training_failed_before: int = 0
    interrupted: bool = False
    executor: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every job and training has a result and none failed (this run or before)."""
        bad = self.failed + self.partial + self.failed_before + self.training_failed + self.training_failed_before
        return not self.interrupted and bad == 0

    def summary(self) -> str:
        text = (f"sweep: {self.jobs} jobs: {self.ok + self.partial + self.failed} run now ({self.ok} ok, "
                f"{self.partial} partial, {self.failed} failed), {self.done_before} done before")
        if self.failed_before:
            text += f", {self.failed_before} failed before (rerun with --retry-failed to try them again)"
        if self.trainings:
            text += f"; trainings: {self.trained} of {self.trainings} trained now"
            if self.training_failed or self.training_failed_before:
                text += f", {self.training_failed + self.training_failed_before} failed"
        return text + f"; results in {self.out}"


@dataclass
class _Task:
    kind: str  # "train", "encode" or "score"
    fn: Callable[..., Any]
    request: Any
    context: Any
    gpu: bool = False
    priority: int = 0
    isolated: bool = False


class _Stop:
    """SIGTERM/SIGINT -> KeyboardInterrupt in the main thread, deferred while a file is written."""

    def __init__(self) -> None:
        self._writing = False
        self._pending = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self._writing:
            self._pending = True
            return
        raise KeyboardInterrupt

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
            if self._pending:
                self._pending = False
                raise KeyboardInterrupt


class _Sweep:
    """The state of one running sweep (see the module docstring)."""

    def __init__(self, spec: SweepSpec, out: Path, *, retry_failed: bool, gpu: bool, progress: bool,
                 stream: TextIO, invocation: str | None = None) -> None:
        self.spec = spec
        self.invocation = invocation
        self.folder = SweepFolder(out)
        self.retry_failed = retry_failed
        self.gpu = gpu
        self.stream = stream
        self.report = SweepReport(out=out)
        self.show_progress = progress
        self.progress: SweepProgress | None = None
        self.configs: list[JobConfig] = []
        self.keys: set[str] = set()
        self.queue: deque[_Task] = deque()
        self.isolated: deque[_Task] = deque()
        self.in_flight: dict[cf.Future, _Task] = {}
        self.stop = _Stop()
        self.pending_jobs = 0

    # -- messages -----------------------------------------------------------------------------

    def warn(self, line: str) -> None:
        self.report.warnings.append(line)
        text = f"dbench sweep: {line}"
        if self.progress is not None:
            self.progress.write(text)
        else:
            print(text, file=self.stream, flush=True)

    # -- planning -----------------------------------------------------------------------------

    def plan(self) -> None:
        self.folder.root.mkdir(parents=True, exist_ok=True)
        self.configs = job_configs(self.spec)
        sources = expand_entries(self.spec.entries(), warn=self.warn)
        runs = runs_of(self.spec.train) if self.spec.train is not None else []
        if not sources and not runs:
            raise ConfigError("the sweep names no encoders; give ENCODER paths, or encoders: / train: in the sweep file")
        check_job_count(len(sources) + len(runs), len(self.configs))
        write_yaml_atomic(self.folder.root / SWEEP_FILE, self.spec.model_dump(mode="json", exclude_none=True))
        self.report.trainings = len(runs)
        pending: list[Job] = []
        for source in sources:
            pending += self.jobs_of(source)
        for run in runs:
            if is_trained(run):
                self.report.trainings -= 1
                pending += self.jobs_of(self.trained_source(run))
                continue
            failure = self.folder.training_failure_path(run.name)
            if failure.exists() and not self.retry_failed:
                self.report.training_failed_before += 1
                self.report.trainings -= 1
                self.warn(f"training {run.name} failed before ({_read_reason(failure)}); rerun with --retry-failed")
                continue
            self.queue.append(_Task("train", train_run, run, run, gpu=self.gpu))
        # Encoders that exist already are evaluated first, the trainings follow.
        self.queue.extendleft(reversed([self.encode_task(group) for group in group_jobs(pending)]))
        self.report.jobs = len(self.keys)
        self.pending_jobs = len(pending)

    def trained_source(self, run: RunSpec) -> EncoderSource:
        meta = source_metadata(run.out, self.warn)
        return EncoderSource(run.out, encoder_name(run.out), meta)

    def jobs_of(self, source: EncoderSource) -> list[Job]:
        """The jobs of one encoder that are still to run; failures to load it are recorded at once."""
        try:
            fingerprint = encoder_fingerprint(source.path)
            load_error = None
        except EncoderError as exc:
            fingerprint, load_error = fallback_fingerprint(source.path), str(exc).splitlines()[0]
        ref = EncoderRef(source.path, source.name, fingerprint)
        with self.stop.writing():
            self.folder.write_encoder_record(fingerprint, encoder_record(source, fingerprint))
        pending = []
        for config in self.configs:
            job = Job(ref, config)
            if job.key in self.keys:
                continue  # the same encoder file twice (same fingerprint): evaluated once
            self.keys.add(job.key)
            state = self.folder.state(job, warn=self.warn)
            if state == "ok" or (state == "partial" and not self.retry_failed):
                self.report.done_before += 1
            elif state == "failed" and not self.retry_failed:
                self.report.failed_before += 1
            elif load_error is not None:
                self.record_failure(job, load_error)
            else:
                pending.append(job)
        return pending

    def encode_task(self, group: EncodeGroup) -> _Task:
        request = EncodeRequest(
            encoder=group.encoder, dataset=group.dataset, batch_size=group.batch_size,
            jobs=tuple((job.key, job.config) for job in group.jobs),
            data_dir=self.spec.data_dir, cache_dir=self.spec.cache_dir,
        )
        return _Task("encode", encode_group, request, group, gpu=self.gpu)

    # -- recording ----------------------------------------------------------------------------

    def record_failure(self, job: Job, reason: str) -> None:
        with self.stop.writing():
            self.folder.write_result(job, failure_result(job, reason, invocation=self.invocation))
        self.report.failed += 1
        self.warn(f"{job.describe()}: failed: {reason}")
        if self.progress is not None:
            self.progress.job_finished(failed=True)

    def record_result(self, job: Job, data: dict[str, Any], codes: GroupCodes, used: int) -> None:
        result = validate_result(data, f"result of {job.describe()}")
        result = with_shared_encoding(result, n_used=used, group_used=int(codes.indices.size),
                                      group_seconds=codes.seconds)
        with self.stop.writing():
            self.folder.write_result(job, result)
        status = result.status
        if status == "ok":
            self.report.ok += 1
        elif status == "partial":
            self.report.partial += 1
            failures = "; ".join(f"{m}: {r}" for m, r in result.errors.items()) or result.error or ""
            self.warn(f"{job.describe()}: partly scored: {failures}")
        else:
            self.report.failed += 1
            self.warn(f"{job.describe()}: failed: {result.error or next(iter(result.errors.values()), '')}")
        if self.progress is not None:
            self.progress.job_finished(failed=status == "failed")

    # -- running ------------------------------------------------------------------------------

    def run(self, executor: SweepExecutor) -> None:
        window = 2 * executor.slots
        while self.queue or self.isolated or self.in_flight:
            if not any(t.isolated for t in self.in_flight.values()) and self.isolated:
                self.submit(executor, self.isolated.popleft())
            while self.queue and len(self.in_flight) < window:
                if self.queue[0].kind == "train" and len(self.in_flight) >= executor.slots:
                    break  # a training waits for a free worker: what finishes meanwhile is evaluated first
                self.submit(executor, self.queue.popleft())
            finished, _ = cf.wait(list(self.in_flight), timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                self.handle(executor, self.in_flight.pop(future), future)

    def submit(self, executor: SweepExecutor, task: _Task) -> None:
        future = executor.submit(guarded, task.fn, task.request, gpu=task.gpu, priority=task.priority,
                                 isolated=task.isolated)
        self.in_flight[future] = task

    def handle(self, executor: SweepExecutor, task: _Task, future: cf.Future) -> None:
        if future.cancelled():
            raise KeyboardInterrupt
        exc = future.exception()
        if exc is not None:
            lost = executor.worker_lost(exc)
            if lost and executor.kind == "processes" and not task.isolated:
                task.isolated = True  # rerun alone: was it this task that killed the worker?
                self.isolated.append(task)
                return
            self.fail(task, lost or f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            return
        outcome: TaskOutcome = future.result()
        if outcome.interrupted:
            raise KeyboardInterrupt
        if outcome.error is not None:
            self.fail(task, outcome.error)
        elif task.kind == "train":
            self.trained(task.context)
        elif task.kind == "encode":
            self.encoded(task.context, outcome.value)
        else:
            job, codes, used = task.context
            self.record_result(job, outcome.value, codes, used)

    def fail(self, task: _Task, reason: str) -> None:
        if task.kind == "train":
            run: RunSpec = task.context
            with self.stop.writing():
                write_yaml_atomic(self.folder.training_failure_path(run.name), {"run": run.out, "error": reason})
            self.report.training_failed += 1
            self.warn(f"training {run.name}: failed: {reason}")
            if self.progress is not None:
                self.progress.training_finished()
        elif task.kind == "encode":
            for job in task.context.jobs:
                self.record_failure(job, reason)
        else:
            self.record_failure(task.context[0], reason)

    def trained(self, run: RunSpec) -> None:
        self.folder.training_failure_path(run.name).unlink(missing_ok=True)
        self.report.trained += 1
        jobs = self.jobs_of(self.trained_source(run))
        self.report.jobs = len(self.keys)
        if self.progress is not None:
            self.progress.training_finished()
            self.progress.add_jobs(len(jobs))
        # A trained model is evaluated before the next trainings start: results arrive as the study goes,
        # and a stopped sweep has scored what it trained.
        self.queue.extendleft(reversed([self.encode_task(group) for group in group_jobs(jobs)]))

    def encoded(self, group: EncodeGroup, codes: GroupCodes) -> None:
        for job in group.jobs:
            if job.key in codes.job_errors:
                self.record_failure(job, codes.job_errors[job.key])
                continue
            job_codes = codes.codes_for(job.key)
            used = 0 if job_codes is None else int(job_codes["indices"].size)
            request = ScoreRequest(key=job.key, encoder=job.encoder, encoder_name=codes.name, config=job.config,
                                   codes=job_codes, encode_error=codes.error, data_dir=self.spec.data_dir,
                                   invocation=self.invocation)
            # Scoring first: a finished job is a written file; new groups wait for free slots.
            self.queue.appendleft(_Task("score", score_job, request, (job, codes, used), priority=1))


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: str | None = None,
    retry_failed: bool = False,
    gpu: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    invocation: str | None = None,
) -> SweepReport:
    """Run (or resume) the sweep ``spec`` with its files under ``out``; return what it did.

    Parameters
    ----------
    spec : SweepSpec
        What to evaluate (:func:`~dbench.studies.spec.read_sweep_file` reads one from YAML); its paths
        must be absolute or relative to the current folder.
    out : path
        The sweep folder (see :mod:`dbench.studies.layout`); a rerun skips the jobs it holds.
    executor : {"serial", "processes", "dask"}
        Where tasks run (see :mod:`dbench.studies.executors`).
    workers : int, optional
        Worker processes for ``processes`` and the Dask ``LocalCluster`` (default: the CPU count).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running Dask scheduler (``executor="dask"``) instead of a LocalCluster.
    retry_failed : bool
        Run again the jobs (and trainings) that failed or were scored only partly before.
    gpu : bool
        Encoding and training tasks request the Dask worker resource ``GPU: 1``.
    progress : bool
        Show progress on ``stream`` (default stderr): a bar in a terminal, a line every 30 s otherwise.
    invocation : str, optional
        The command line every result records as ``provenance.invocation`` (``dbench sweep`` passes its
        own; default: a ``dbench.studies.run_sweep(...)`` call naming the folder).

    Raises
    ------
    dbench.errors.ConfigError
        For a bad spec, protocol, override or executor option (nothing has run then).
    """
    stream = stream or sys.stderr
    spec = spec.relative_to(Path.cwd())
    out = Path(out).resolve()
    invocation = invocation or f"dbench.studies.run_sweep(<SweepSpec>, {str(out)!r}, executor={executor!r})"
    sweep = _Sweep(spec, out, retry_failed=retry_failed, gpu=gpu, progress=progress, stream=stream,
                   invocation=invocation)
    with sweep.stop:
        try:
            sweep.plan()
            if not sweep.queue:
                return sweep.report
            runner = make_executor(executor, workers=workers, scheduler=scheduler, gpu=gpu)
        except KeyboardInterrupt:
            sweep.report.interrupted = True
            return sweep.report
        sweep.report.executor = runner.describe()
        sweep.progress = SweepProgress(sweep.pending_jobs, enabled=progress, stream=stream,
                                       trainings=sweep.report.trainings)
        cancel = True
        try:
            sweep.run(runner)
            cancel = False
        except KeyboardInterrupt:
            sweep.report.interrupted = True
        finally:
            sweep.progress.close()
            with contextlib.suppress(KeyboardInterrupt):
                runner.close(cancel=cancel)
    return sweep.report


def _read_reason(path: Path) -> str:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return str(data.get("error", "no reason recorded")) if isinstance(data, dict) else "no reason recorded"
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "its record cannot be read"


__all__ = ["SweepReport", "run_sweep"]
