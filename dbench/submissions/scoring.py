"""Scoring submissions: every submission file is handled in a sandbox, never in the scorer's process.

Per submission, in one temporary folder of the scorer:

1. **prepare** (sandboxed, no submission code runs): copy or unpack the submission with limits, parse
   its metadata, hash it; a ``codes.npz`` is read there too. Output: a manifest (and codes) in the
   fixed exchange format (:mod:`dbench.submissions.wire`).
2. **encode** (sandboxed, for model artifacts): the prepared submission, read-only, encodes the
   protocol's query set. Output: codes in the same format.
3. **score** (in the scorer): the codes, checked against the query set before a byte of them is
   read, go into the ordinary pipeline (:func:`~dbench.evaluation.pipeline.run_config`).

Every failure at any step, including a bug of the scorer's own code on one submission, becomes a
result with status ``failed`` and a one-line ``error``; the next submission is scored as usual.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from dbench.errors import ConfigError, EncoderError
from dbench.evaluation.options import EvaluationOptions
from dbench.evaluation.pipeline import EvaluationConfig, resolve_config, run_config
from dbench.evaluation.provenance import provenance_info
from dbench.evaluation.result import (
    EncoderRecord,
    EvaluationResult,
    ProtocolRecord,
    Provenance,
    SubmissionRecord,
    environment_info,
)
from dbench.submissions.limits import Limits
from dbench.submissions.metadata import ARTIFACTS, SubmissionMeta
from dbench.submissions.progress import only_expected
from dbench.submissions.sandbox import (
    NONE_WARNING,
    Sandbox,
    check_isolation,
    process_limit_mechanism,
    seccomp_status,
)
from dbench.submissions.unpack import archive_suffix
from dbench.submissions.wire import MAX_LATENTS, Expect, Wire, read_wire, write_wire

_HEADER_SLACK = 1 << 17


class Manifest(BaseModel):
    """What the prepare step found in a submission (re-validated by the scorer: the sandbox wrote it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    meta: SubmissionMeta
    kind: StrictStr
    artifact: StrictStr
    root: StrictStr = Field(max_length=300)
    artifact_sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    submission_sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    n_files: StrictInt = Field(ge=1)
    n_bytes: StrictInt = Field(ge=0)


@dataclass
class Scored:
    """The results of one submission, with what the result files are named after."""

    source: str
    results: list[EvaluationResult]
    content_hash: str = ""
    sandbox_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.results)


@dataclass(frozen=True)
class _CodesOnly:
    """Stands in for an encoder when all codes come from the sandbox: anything missing is an error."""

    name: str
    fingerprint: str

    def encode_arrays(self, images: np.ndarray):
        raise EncoderError("the sandbox returned no codes for some observations the protocol needs")


class Scorer:
    """Scores submissions under one protocol; the query set is computed once for the whole batch.

    Parameters
    ----------
    protocol
        Bundled protocol name or YAML file.
    trust
        Allow Python-file submissions (they run in the same sandbox, with the same limits).
    limits
        Resource limits per submission (:class:`~dbench.submissions.limits.Limits`).
    isolation
        ``"bwrap"`` (bubblewrap sandbox) or ``"none"`` (a plain subprocess; trusted submissions only).
    progress
        ``progress(label) -> callback(line)`` for the sandbox's encoding progress, or None.
    invocation
        The command line recorded in every result's provenance (``dbench score ...``), or None.
    """

    def __init__(self, protocol: Any = "challenge", *, trust: bool = False, limits: Limits | None = None,
                 data_dir: str | os.PathLike | None = None, batch_size: int | None = None, isolation: str = "bwrap",
                 progress: Callable[[str], Any] | None = None, invocation: str | None = None) -> None:
        from dbench.submissions.queries import protocol_queries

        check_isolation(isolation)
        self.trust = trust
        self.limits = limits or Limits()
        self.isolation = isolation
        # The folder the scorer's datasets come from ($DBENCH_DATA_DIR when not given): the sandbox
        # gets exactly that one, read-only, and is told it explicitly (its environment is clean).
        from dbench.datasets._files import search_dirs

        found = [p for p in search_dirs(data_dir) if p.is_dir()]
        self.data_dir = found[0].resolve() if found else (Path(data_dir).resolve() if data_dir is not None else None)
        self.progress = progress
        self.invocation = invocation
        if isolation == "bwrap":
            # What every sandbox sees must not hold the signing key: stop before the batch starts.
            probe = Sandbox(isolation, self.limits, scratch=Path("."))
            if self.data_dir is not None:
                probe.data_dir(self.data_dir)
            exposed = probe.exposed_secret()
            if exposed:
                raise ConfigError(exposed)
        self.configs = resolve_config(EvaluationOptions(protocol=protocol, batch_size=batch_size))
        self.queries = protocol_queries(protocol, data_dir=self.data_dir)
        self.batch_size = self.configs[0].batch_size
        self.sandbox_record = {
            "isolation": isolation,
            "process_limit": process_limit_mechanism(isolation),
            "seccomp": seccomp_status() if isolation == "bwrap" else "none",
            "limits": {k: getattr(self.limits, k) for k in ("wall_seconds", "memory_bytes", "max_processes",
                                                           "max_unpacked_bytes", "scratch_bytes")},
        }
        if isolation == "none":
            self.sandbox_record["warning"] = NONE_WARNING

    # -- one submission --------------------------------------------------------------------------

    def score(self, path: str | os.PathLike) -> Scored:
        """Score one submission; never raises for anything the submission does."""
        label = printable(Path(path).name or str(path), 200)
        try:
            return self._score(Path(path), label)
        except Exception as exc:  # noqa: BLE001 - a scorer bug on one submission must not stop the batch
            reason = (f"internal error in the scorer on this submission ({exc.__class__.__name__}: "
                      f"{(str(exc).splitlines() or [''])[0][:200]}); please report it")
            return Scored(str(path), [self._failed(cfg, label, None, "", reason) for cfg in self.configs])

    def _score(self, path: Path, label: str) -> Scored:
        problem = _source_problem(path)
        if problem:
            return Scored(str(path), [self._failed(cfg, label, None, "", problem) for cfg in self.configs])
        deadline = time.monotonic() + self.limits.wall_seconds
        with tempfile.TemporaryDirectory(prefix="dbench-score-") as tmp:
            work = Path(tmp)
            queries = work / "queries.bin"
            write_wire(queries, Wire(arrays={(ds, "indices"): idx for ds, idx in self.queries.items()}))
            manifest, prepared, seconds = self._prepare(path, label, work, queries, deadline)
            if isinstance(manifest, str):
                return Scored(str(path), [self._failed(cfg, label, None, "", manifest) for cfg in self.configs],
                              sandbox_seconds=seconds)
            meta = manifest.meta
            fingerprint = f"sha256:{manifest.artifact_sha256}"

            def fail(reason: str) -> Scored:
                return Scored(str(path), [self._failed(cfg, meta.name, meta, fingerprint, reason, manifest)
                                          for cfg in self.configs], manifest.submission_sha256, seconds)

            if manifest.kind == "python" and not self.trust:
                return fail("Python-file submissions are refused; submit TorchScript, ONNX or codes, or score with --trust")
            if manifest.kind == "codes":
                codes = prepared
            else:
                codes, encode_seconds = self._encode(manifest, label, work, queries, deadline)
                seconds["encode"] = encode_seconds
                if isinstance(codes, str):
                    return fail(codes)
            checked = _check_codes(codes, self.queries)
            if isinstance(checked, str):
                return fail(checked)
            # The statistics come from the process that ran the submission: believable ones only.
            for dataset, stat in codes.stats.items():
                if dataset not in self.queries or stat.n_encoded > self.queries[dataset].size \
                        or stat.seconds > self.limits.wall_seconds:
                    return fail(f"the sandbox reported impossible encoding statistics for {dataset[:100]!r} "
                                f"({stat.n_encoded:,} images in {stat.seconds:g} s)")
            results = [self._result(cfg, checked, manifest, codes.stats) for cfg in self.configs]
            return Scored(str(path), results, manifest.submission_sha256, seconds)

    def _sandbox(self, work: Path, name: str) -> Sandbox:
        scratch = work / f"{name}-scratch"
        scratch.mkdir()
        sandbox = Sandbox(self.isolation, self.limits, scratch=scratch)
        if self.data_dir is not None:
            sandbox.data_dir(self.data_dir)
        return sandbox

    def _prepare(self, path: Path, label: str, work: Path, queries: Path, deadline: float) -> tuple[Any, Any, dict]:
        dest = work / "prepared"
        dest.mkdir(mode=0o755)
        os.chmod(dest, 0o755)
        out = _output_file(work / "prepare.out")
        sandbox = self._sandbox(work, "prepare")
        inside_source = "/in/" + ("submission" if path.is_dir() else f"submission{archive_suffix(path.name)}")
        args = ["prepare", "--source", sandbox.path(path, inside_source), f"--label={label[:100]}",
                "--dest", sandbox.path(dest, "/prepared", writable=True),
                "--queries", sandbox.path(queries, "/in/queries.bin"),
                "--out", sandbox.path(out, "/out/result.bin", writable=True),
                "--max-entries", str(self.limits.max_entries), "--max-bytes", str(self.limits.max_unpacked_bytes)]
        outcome = sandbox.run(args, deadline=deadline, file_size=max(self._codes_bytes(), self.limits.max_unpacked_bytes))
        seconds = {"prepare": round(outcome.seconds, 4)}
        if not outcome.ok:
            return outcome.reason, None, seconds
        try:
            wire = read_wire(out, Expect(rows=self._rows(), manifest=True), source="the prepare step's output")
            manifest = Manifest.model_validate(wire.manifest)
        except ConfigError as exc:
            return str(exc), None, seconds
        except ValidationError as exc:
            return f"the prepare step's manifest is invalid ({exc.errors()[0]['msg']})", None, seconds
        if manifest.kind not in ARTIFACTS.values() or ARTIFACTS.get(manifest.artifact) != manifest.kind:
            return f"the prepare step reported an unknown artifact {manifest.artifact!r}", None, seconds
        if manifest.kind == "codes" and not wire.arrays:
            return "the prepare step returned no codes for a codes.npz submission", None, seconds
        return manifest, wire, seconds

    def _encode(self, manifest: Manifest, label: str, work: Path, queries: Path, deadline: float) -> tuple[Wire | str, float]:
        out = _output_file(work / "encode.out")
        sandbox = self._sandbox(work, "encode")
        root = (work / "prepared" / manifest.root).resolve()
        if not root.is_relative_to((work / "prepared").resolve()):
            return "the prepare step reported a root outside its folder", 0.0
        args = ["encode", "--submission", sandbox.path(root, "/submission"), "--kind", manifest.kind,
                "--artifact", manifest.artifact, "--queries", sandbox.path(queries, "/in/queries.bin"),
                "--out", sandbox.path(out, "/out/result.bin", writable=True), "--batch-size", str(self.batch_size)]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        reporter = self.progress(label) if self.progress is not None else None
        try:
            # Files may be as large as the scratch tmpfs (which fills first) or the codes output.
            file_size = max(self._codes_bytes(), self.limits.scratch_bytes + (1 << 20))
            on_progress = only_expected(reporter, self._rows()) if reporter is not None else None
            outcome = sandbox.run(args, deadline=deadline, file_size=file_size, on_progress=on_progress)
        finally:
            if reporter is not None and hasattr(reporter, "close"):
                reporter.close()
        if not outcome.ok:
            return outcome.reason, outcome.seconds
        try:
            return read_wire(out, Expect(rows=self._rows()), source="the encode step's output"), outcome.seconds
        except ConfigError as exc:
            return str(exc), outcome.seconds

    def _rows(self) -> dict[str, int]:
        return {ds: int(idx.size) for ds, idx in self.queries.items()}

    def _codes_bytes(self) -> int:
        """The largest exchange file of codes (and log-variances, float64, MAX_LATENTS wide): its RLIMIT_FSIZE."""
        return sum(2 * n * MAX_LATENTS * 8 for n in self._rows().values()) + _HEADER_SLACK

    # -- results ---------------------------------------------------------------------------------

    def _result(self, cfg: EvaluationConfig, codes: dict[str, dict[str, np.ndarray]], manifest: Manifest,
                stats: dict[str, Any]) -> EvaluationResult:
        fingerprint = f"sha256:{manifest.artifact_sha256}"
        part = codes[cfg.dataset]
        precomputed = {"indices": self.queries[cfg.dataset], **part}
        spec = _spec(manifest)
        result = run_config(_CodesOnly(manifest.meta.name, fingerprint), cfg,
                            options=EvaluationOptions(data_dir=self.data_dir), encoder_spec=spec,
                            precomputed=precomputed)
        seconds = dict(result.seconds)
        stat = stats.get(cfg.dataset)
        if stat is not None:
            seconds["encode"] = round(float(stat.seconds), 4)
        return result.model_copy(update={
            "submission": SubmissionRecord.model_validate(manifest.meta.model_dump()),
            "encoder": result.encoder.model_copy(update={"spec": spec}),
            "n_encoded": int(stat.n_encoded) if stat is not None else 0,
            "seconds": seconds,
            "environment": {**result.environment, "sandbox": self.sandbox_record},
            "provenance": self._provenance(manifest),
        })

    def _failed(self, cfg: EvaluationConfig, name: str, meta: SubmissionMeta | None, fingerprint: str, reason: str,
                manifest: Manifest | None = None) -> EvaluationResult:
        return EvaluationResult(
            dataset=cfg.dataset,
            representation=cfg.representation,
            seeds=list(cfg.seeds),
            backend="none",
            protocol=ProtocolRecord.model_validate(cfg.protocol),
            encoder=EncoderRecord(name=printable(name or "submission", 100) or "submission", fingerprint=fingerprint or None,
                                  spec=_spec(manifest) if manifest is not None else None),
            metric_params=cfg.metrics,
            scores={},
            seconds={},
            n_encoded=0,
            status="failed",
            error=printable((reason.splitlines() or ["failed"])[0], 500) or "failed",
            submission=SubmissionRecord.model_validate(meta.model_dump()) if meta is not None else None,
            environment={**environment_info(), "sandbox": self.sandbox_record},
            provenance=self._provenance(manifest),
        )

    def _provenance(self, manifest: Manifest | None) -> Provenance:
        # Built from the manifest: the scorer never opens the submission's files to hash them.
        record = provenance_info(invocation=self.invocation, encoder_spec=None)
        if manifest is not None:
            record["encoder_file"] = {"path": manifest.artifact, "sha256": manifest.artifact_sha256, "bytes": None}
        return Provenance.model_validate(record)


def printable(text: str, limit: int) -> str:
    """One line of valid, printable UTF-8 text: a file name's undecodable bytes become ``\\udcXX``."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit]


def _spec(manifest: Manifest) -> dict[str, Any]:
    return {"kind": manifest.kind, "artifact": manifest.artifact,
            "submission_sha256": f"sha256:{manifest.submission_sha256}",
            "files": manifest.n_files, "bytes": manifest.n_bytes}


def _output_file(path: Path) -> Path:
    """An empty file the sandbox may write (bound read-write in its place)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    return path


def _source_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a submission, looking only at its type (the scorer opens no submission file)."""
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        return f"{path}: no such submission folder or archive ({exc.strerror})"
    if stat.S_ISDIR(info.st_mode):
        return None
    if not stat.S_ISREG(info.st_mode):
        return f"{path}: not a folder or a regular file"
    if archive_suffix(path.name) is None:
        return f"{path}: not a folder, .zip or .tar(.gz/.bz2/.xz) archive"
    return None


def _check_codes(wire: Wire, queries: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]] | str:
    """Codes per dataset from the sandbox's output: every dataset there, shapes consistent, finite."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for dataset in queries:
        mean = wire.arrays.get((dataset, "mean"))
        if mean is None:
            return f"the sandbox returned no codes for {dataset}"
        bad = ~np.isfinite(mean).all(axis=1)
        if bad.any():
            return f"codes contain NaN or inf in {int(bad.sum()):,} rows of {dataset}"
        part = {"mean": mean.astype(np.float64)}
        logvar = wire.arrays.get((dataset, "logvar"))
        if logvar is not None:
            if logvar.shape != mean.shape:
                return f"logvar must have the shape of the codes {mean.shape}; got {logvar.shape}"
            if not np.isfinite(logvar).all():
                return f"logvar contains NaN or inf for {dataset}"
            part["logvar"] = logvar.astype(np.float64)
        out[dataset] = part
    return out


def score_submission(path: str | os.PathLike, *, protocol: Any = "challenge", trust: bool = False,
                     limits: Limits | None = None, data_dir: str | os.PathLike | None = None,
                     batch_size: int | None = None, isolation: str = "bwrap") -> list[EvaluationResult]:
    """Score one submission under ``protocol``; failures become results with status ``failed`` and a reason."""
    scorer = Scorer(protocol, trust=trust, limits=limits, data_dir=data_dir, batch_size=batch_size, isolation=isolation)
    return scorer.score(path).results


__all__ = ["Manifest", "Scored", "Scorer", "printable", "score_submission"]
