"""Schema of a dbench result file (``schema_version`` 1), as read by the leaderboard.

One JSON file per evaluation: one encoder, one dataset, one representation, one or several metric
seeds. With several seeds ``scores`` holds the mean over seeds, ``scores_std`` the standard
deviation (ddof=1) and ``per_seed`` every run. :func:`read_result` validates a file and reports any
problem as one line naming the file and the key (:class:`~dbench.errors.ConfigError`).

The writer is :class:`dbench.evaluation.result.EvaluationResult`; a change of shape bumps
``SCHEMA_VERSION`` there and here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from dbench.errors import ConfigError

SCHEMA_VERSION = 1

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
    #: set when command-line overrides changed the named protocol: the hash of the protocol they changed
    base_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class EncoderRecord(_Strict):
    """Which encoder was scored: display name, content fingerprint, how it was specified."""

    name: str = Field(min_length=1)
    fingerprint: Optional[str] = None
    spec: Union[str, dict[str, Any], None] = None


class SubmissionRecord(_Strict):
    """Who submitted the entry (``dbench score`` copies the submission's metadata file)."""

    name: str = Field(min_length=1)
    team: Optional[str] = None
    description: Optional[str] = None
    # An empty string means "no link" (the metadata file's default).
    code_url: Optional[str] = Field(default=None, pattern=r"^(https?://\S+)?$")


class SeedRun(_Strict):
    """Scores of one metric seed."""

    seed: StrictInt
    scores: Scores


class ResultFile(_Strict):
    """One evaluation result as written by ``dbench evaluate --out``."""

    schema_version: Literal[1]
    dbench_version: str
    protocol: ProtocolRecord
    encoder: EncoderRecord
    submission: Optional[SubmissionRecord] = None
    dataset: str = Field(min_length=1)
    representation: Literal["mean", "sampled"]
    seeds: list[StrictInt] = Field(min_length=1)
    backend: str
    environment: dict[str, Any] = Field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    scores: Scores
    scores_std: Optional[Scores] = None
    per_seed: Optional[list[SeedRun]] = None
    seconds: dict[str, float] = Field(default_factory=dict)
    n_encoded: StrictInt = Field(ge=0)
    errors: dict[str, str] = Field(default_factory=dict)
    status: Literal["ok", "partial", "failed"]
    error: Optional[str] = None
    baseline: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> "ResultFile":
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
        return self

    @property
    def entry_name(self) -> str:
        """Display name: the submission's name, else the encoder's."""
        return self.submission.name if self.submission else self.encoder.name

    def score(self, column: str) -> tuple[float, Optional[float]]:
        """``(mean, std)`` of a ``"metric.key"`` score; NaN when absent, std None for one seed."""
        metric, _, key = column.partition(".")
        value = self.scores.get(metric, {}).get(key, math.nan)
        std = (self.scores_std or {}).get(metric, {}).get(key) if len(self.seeds) > 1 else None
        return value, std


def _format_error(source: str, exc: ValidationError) -> str:
    first = max(exc.errors(), key=lambda e: len(e["loc"]))
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and "[" in p)) or "<top level>"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{source}: {loc}: {message}"


def validate_result(data: Any, source: str = "<result>") -> ResultFile:
    """Validate parsed JSON; one-line :class:`ConfigError` naming ``source`` and the key."""
    if isinstance(data, dict) and data.get("schema_version") not in (None, SCHEMA_VERSION):
        raise ConfigError(
            f"{source}: schema_version: {data.get('schema_version')!r} is not supported; "
            f"this dbench reads version {SCHEMA_VERSION}"
        )
    try:
        return ResultFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(source, exc)) from None


def read_result(path: str | Path) -> ResultFile:
    """Read and validate one result JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read result file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    return validate_result(data, str(path))


__all__ = [
    "SCHEMA_VERSION",
    "EncoderRecord",
    "ProtocolRecord",
    "ResultFile",
    "Scores",
    "SeedRun",
    "SubmissionRecord",
    "read_result",
    "validate_result",
]
