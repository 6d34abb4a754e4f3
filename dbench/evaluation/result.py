"""The result of one evaluation: one pydantic model, written by the pipeline, read by the leaderboard.

One JSON file per evaluation: one encoder, one dataset, one representation, one or several metric
seeds. With several seeds ``scores`` holds the mean over seeds, ``scores_std`` the standard
deviation (ddof=1) and ``per_seed`` every run. :meth:`EvaluationResult.write` writes a result
atomically; :func:`read_result` (and :meth:`EvaluationResult.read`) validates a file and reports any
problem as one line naming the file and the key (:class:`~dbench.errors.ConfigError`).

Schema version 2 adds what a result is cited with: ``provenance`` (UTC time, the command line or
Python call, the encoder file's SHA-256, a trained run's configuration and step), a richer
``environment`` (package versions, CPU and GPU models), ``spread`` (what every standard deviation in
the file is taken over: metric seeds or a probe's draws) and ``notes`` (caveats such as "procedural
dSprites: not comparable with published numbers"). Version 1 files are still read, and written back
unchanged.

A change of the JSON shape bumps ``SCHEMA_VERSION`` (and CHANGELOG.md says why).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from dbench._json import jsonable, write_json_atomic
from dbench._version import __version__
from dbench.choices import Representation, Status
from dbench.errors import ConfigError, excerpt
from dbench.evaluation.provenance import environment_info

#: The versions this dbench reads; it writes the last one.
SchemaVersion = Literal[1, 2]
SCHEMA_VERSIONS: tuple[SchemaVersion, ...] = get_args(SchemaVersion)
SCHEMA_VERSION: SchemaVersion = SCHEMA_VERSIONS[-1]
# Keys schema version 2 added; a version 1 file has none of them and is written back without them.
_ADDED_IN_2 = ("provenance", "spread", "notes", "estimators")

#: A submission's link to its code: http(s) only, or empty for none.
CODE_URL_PATTERN = r"^(https?://\S+)?$"

#: metric -> score key -> value (NaN allowed: a degenerate score is reported, not hidden).
Scores = dict[str, dict[str, float]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtocolRecord(_Strict):
    """The protocol an evaluation followed: its name, version, hash and fully resolved form."""

    name: str = Field(min_length=1)
    version: StrictInt = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    resolved: dict[str, Any]
    #: set when overrides changed the named protocol: the hash of the protocol they changed
    base_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_serializer(mode="wrap")
    def _without_unset_base(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("base_hash") is None:
            data.pop("base_hash", None)  # written only for a derived protocol, as before
        return data


class EncoderRecord(_Strict):
    """Which encoder was scored: display name, content fingerprint, how it was specified."""

    name: str = Field(min_length=1)
    fingerprint: str | None = None
    spec: str | dict[str, Any] | None = None


class SubmissionRecord(_Strict):
    """Who submitted the entry (``dbench score`` copies the submission's metadata file)."""

    name: str = Field(min_length=1)
    team: str | None = None
    description: str | None = None
    # An empty string means "no link" (the metadata file's default).
    code_url: str | None = Field(default=None, pattern=CODE_URL_PATTERN)


class Provenance(_Strict):
    """When and how an evaluation was run, and which encoder file it scored (schema version 2)."""

    #: UTC time the result was made, ISO 8601 (``2025-01-31T12:00:00Z``)
    created_utc: str = Field(min_length=1)
    #: the command line (``dbench evaluate ...``) or Python call (``dbench.evaluate(...)``)
    invocation: str | None = None
    #: ``{"path", "sha256", "bytes"}`` of the encoder file (a run folder's encoder.pt); None in memory
    encoder_file: dict[str, Any] | None = None
    #: for a trained reference-model run folder: ``{"config": config.json, "step": ...}``
    training: dict[str, Any] | None = None


class EstimatorRecord(_Strict):
    """Which estimator a metric fitted and on which device (``"cpu"``, ``"cuda:0"``)."""

    estimator: str = Field(min_length=1, max_length=64)
    device: str = Field(min_length=1, max_length=64)


class SeedRun(_Strict):
    """Scores of one metric seed."""

    seed: StrictInt
    scores: Scores


class EvaluationResult(_Strict):
    """Everything needed to reproduce and compare one evaluation (one dataset, one representation).

    ``scores`` maps metric -> key -> value; with several seeds it holds the mean over seeds,
    ``scores_std`` the standard deviation and ``per_seed`` the individual runs. ``errors`` maps a
    metric that could not be scored to its one-line reason (the other metrics are still reported).
    ``estimators`` (optional, written only when a metric reported one) maps a metric that fits a
    model to the estimator that ran and its device, e.g. ``{"dci": {"estimator": "array_trees",
    "device": "cuda:0"}}``.
    :attr:`artifacts` holds arrays for plots (e.g. DCI's importance matrix) in memory only; they are
    never written to the JSON. The model is frozen: change a copy (``model_copy(update=...)``).
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    dbench_version: str = __version__
    protocol: ProtocolRecord
    encoder: EncoderRecord
    submission: SubmissionRecord | None = None
    dataset: str = Field(min_length=1)
    representation: Representation
    seeds: list[StrictInt] = Field(min_length=1)
    backend: str
    environment: dict[str, Any] = Field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    scores: Scores
    scores_std: Scores | None = None
    per_seed: list[SeedRun] | None = None
    seconds: dict[str, float] = Field(default_factory=dict)
    estimators: dict[str, EstimatorRecord] | None = None
    n_encoded: StrictInt = Field(ge=0)
    errors: dict[str, str] = Field(default_factory=dict)
    status: Status
    error: str | None = None
    #: one-line warnings about how the scores were obtained (e.g. a non-deterministic encoder);
    #: written only when there are some, so results without warnings keep their earlier shape
    warnings: list[str] = Field(default_factory=list)
    baseline: StrictBool = False
    provenance: Provenance | None = None
    #: what each standard deviation in the file is taken over, e.g. ``{"scores_std": "... over metric seeds"}``
    spread: dict[str, str] = Field(default_factory=dict)
    #: caveats a reader must know (one sentence each), printed under the score table
    notes: list[str] = Field(default_factory=list)

    _artifacts: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("environment", "metric_params", mode="before")
    @classmethod
    def _plain_data(cls, value: Any) -> Any:
        # NumPy scalars, tuples and paths in metric parameters become plain JSON data.
        return jsonable(value, "value") if isinstance(value, dict) else value

    @model_serializer(mode="wrap")
    def _as_its_version(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not data.get("warnings"):  # written only when there are some
            data.pop("warnings", None)
        if self.schema_version == 1:  # a version 1 file read back is written back as it was
            for key in _ADDED_IN_2:
                data.pop(key, None)
        if data.get("estimators") is None:
            data.pop("estimators", None)  # written only when a metric reported its estimator
        return data

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationResult:
        if self.status == "ok" and (self.error or self.errors):
            raise ValueError("status is 'ok' but error/errors are set; use status 'partial' or 'failed'")
        if self.status == "failed" and not (self.error or self.errors):
            raise ValueError("status is 'failed' but neither error nor errors says why")
        if len(self.seeds) > 1:
            if self.scores_std is None:
                raise ValueError(f"{len(self.seeds)} seeds need scores_std (standard deviation per score)")
            if self.per_seed is None or [run.seed for run in self.per_seed] != list(self.seeds):
                raise ValueError("per_seed must hold one run per seed, in the order of seeds")
        for metric, keys in (self.scores_std or {}).items():
            unknown = set(keys) - set(self.scores.get(metric, {}))
            if unknown:
                raise ValueError(f"scores_std.{metric} has keys missing from scores: {', '.join(sorted(unknown))}")
        if self.schema_version == 1 and (self.provenance is not None or self.spread or self.notes):
            raise ValueError("provenance, spread and notes need schema_version 2")
        if self.schema_version == 1 and self.estimators:
            raise ValueError("estimators need schema_version 2")
        return self

    # -- in-memory extras --------------------------------------------------------------------------

    @property
    def artifacts(self) -> dict[str, Any]:
        """Arrays for plots, by metric (kept in memory, never written to the JSON)."""
        return self._artifacts

    def with_artifacts(self, artifacts: dict[str, Any]) -> EvaluationResult:
        """A copy of this result carrying ``artifacts``."""
        copy = self.model_copy()
        copy._artifacts = dict(artifacts)
        return copy

    # -- reading scores ----------------------------------------------------------------------------

    @property
    def entry_name(self) -> str:
        """Display name: the submission's name, else the encoder's."""
        return self.submission.name if self.submission else self.encoder.name

    def score(self, column: str) -> tuple[float, float | None]:
        """``(mean, std)`` of a ``"metric.key"`` score; NaN when absent, std None for one seed."""
        metric, _, key = column.partition(".")
        value = self.scores.get(metric, {}).get(key, math.nan)
        std = (self.scores_std or {}).get(metric, {}).get(key) if len(self.seeds) > 1 else None
        return value, std

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON data (what :meth:`write` writes)."""
        return self.model_dump(mode="json")

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the result as JSON atomically: a killed run never leaves a half-written file."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> EvaluationResult:
        """Read and validate a result file (see :func:`read_result`)."""
        return read_result(path)


def _format_error(source: str, exc: ValidationError) -> str:
    first = max(exc.errors(), key=lambda e: len(e["loc"]))
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and "[" in p)) or "<top level>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{source}: {loc}: {message}"


# Keys a file must carry although the model gives them defaults (the pipeline fills them in).
_REQUIRED_IN_FILES = ("schema_version", "dbench_version")


def validate_result(data: Any, source: str = "<result>") -> EvaluationResult:
    """Validate parsed JSON; one-line :class:`ConfigError` naming ``source`` and the key."""
    if isinstance(data, dict) and data.get("schema_version", SCHEMA_VERSION) not in SCHEMA_VERSIONS:
        raise ConfigError(
            f"{source}: schema_version: {excerpt(data.get('schema_version'))} is not supported; this dbench reads "
            f"versions {', '.join(map(str, SCHEMA_VERSIONS))} (a newer dbench wrote it? upgrade dbench)"
        )
    try:
        result = EvaluationResult.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None
    missing = [key for key in _REQUIRED_IN_FILES if key not in data]  # data is a dict: it validated
    if missing:
        raise ConfigError(f"{source}: {missing[0]}: Field required")
    problem = score_problem(result)
    if problem:
        raise ConfigError(f"{source}: {problem}; a result file holds the scores dbench wrote (re-run the evaluation)")
    return result


def score_problem(result: EvaluationResult) -> str | None:
    """Why ``result``'s numbers cannot be trusted (a score not finite, undeclared or out of its metric's
    declared range; a standard deviation not finite or negative), or None.

    JSON allows ``NaN``, ``Infinity`` and ``1e300`` where a file was edited or damaged; a leaderboard or
    a table built on such a file would rank it silently. :func:`validate_result` applies it to every file.
    """
    from dbench.metrics import get_metric

    runs = [("scores", result.scores)] + [(f"per_seed[{i}]", run.scores) for i, run in enumerate(result.per_seed or [])]
    for where, scores in runs:
        for metric, values in scores.items():
            try:
                get_metric(metric).check_scores(values)
            except ValueError as exc:
                return f"{where}: {str(exc).splitlines()[0]}"
    for metric, values in (result.scores_std or {}).items():
        for key, value in values.items():
            if not (math.isfinite(value) and value >= 0):
                return f"scores_std.{metric}.{key} = {value!r} is not a finite, non-negative spread"
    return None


#: Largest result file read (a result with every metric's per-seed scores is well under 1 MB).
MAX_RESULT_BYTES = 64 << 20


def read_result(path: str | os.PathLike[str]) -> EvaluationResult:
    """Read and validate one result JSON file (at most :data:`MAX_RESULT_BYTES`, nesting bounded)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RESULT_BYTES + 1)
        if len(raw) > MAX_RESULT_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_RESULT_BYTES >> 20} MB; not a dbench result file")
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read result file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply for a result file (a result nests four levels)") from None
    try:
        return validate_result(data, str(path))
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply for a result file (a result nests four levels)") from None


__all__ = [
    "CODE_URL_PATTERN",
    "SCHEMA_VERSION",
    "SCHEMA_VERSIONS",
    "EncoderRecord",
    "EstimatorRecord",
    "EvaluationResult",
    "ProtocolRecord",
    "Provenance",
    "Scores",
    "SeedRun",
    "SubmissionRecord",
    "environment_info",
    "read_result",
    "score_problem",
    "validate_result",
]
