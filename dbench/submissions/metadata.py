"""A submission's metadata file and its artifact kinds; parsed inside the sandbox only.

A submission is a folder or an archive holding one metadata file (``submission.yaml``,
``submission.yml`` or ``submission.json``) and exactly one encoder artifact (:data:`ARTIFACTS`).
:func:`parse_metadata` turns the metadata file's bytes into a :class:`SubmissionMeta`: UTF-8 text of
at most :data:`MAX_METADATA_BYTES`, a flat mapping of the four keys, strings of bounded length,
no control characters, a ``code_url`` that is http(s) or empty. Every problem is one
:class:`~dbench.errors.ConfigError` line naming the file, the key and the fix.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from dbench.errors import ConfigError
from dbench.evaluation.result import CODE_URL_PATTERN

METADATA_FILES = ("submission.yaml", "submission.yml", "submission.json")
#: Artifact file name -> kind. Exactly one must be present at the submission's top level.
ARTIFACTS = {
    "encoder.pt": "torchscript",
    "encoder.ts": "torchscript",
    "encoder.onnx": "onnx",
    "codes.npz": "codes",
    "encoder.py": "python",
}
MAX_METADATA_BYTES = 64 << 10
#: Longest value of each key, in characters.
MAX_LENGTHS = {"name": 100, "team": 100, "description": 2000, "code_url": 500}
_KEYS = ", ".join(MAX_LENGTHS)
# Control characters (C0, DEL, C1) and Unicode line/paragraph separators and bidi overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class SubmissionMeta(BaseModel):
    """The metadata file: who submitted what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr = Field(min_length=1, max_length=MAX_LENGTHS["name"])
    team: StrictStr = Field(min_length=1, max_length=MAX_LENGTHS["team"])
    description: StrictStr = Field(default="", max_length=MAX_LENGTHS["description"])
    code_url: StrictStr = Field(default="", max_length=MAX_LENGTHS["code_url"], pattern=CODE_URL_PATTERN)


def parse_metadata(data: bytes, *, source: str) -> SubmissionMeta:
    """Parse a metadata file's bytes (YAML or JSON); one-line ConfigError naming what is wrong."""
    import yaml

    if len(data) > MAX_METADATA_BYTES:
        raise ConfigError(f"{source}: {len(data):,} bytes; a metadata file holds at most {MAX_METADATA_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply; give a flat mapping of {_KEYS}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping with the keys {_KEYS}")
    unknown = sorted(repr(k) for k in raw if k not in MAX_LENGTHS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0][:60]} (allowed keys: {_KEYS})")
    for key, value in raw.items():
        if value is None:
            raise ConfigError(f"{source}: {key}: empty; give a text value or remove the key")
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key}: must be text, got {type(value).__name__}; quote it")
        allowed = value.replace("\n", "").replace("\t", "") if key == "description" else value
        if _CONTROL.search(allowed):
            raise ConfigError(f"{source}: {key}: contains control characters or line breaks; remove them")
    try:
        return SubmissionMeta(**_strip(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{source}: {where}: {err['msg'].lower()} (allowed keys: {_KEYS})") from None


def _strip(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v.strip() for k, v in raw.items()}


__all__ = ["ARTIFACTS", "MAX_LENGTHS", "MAX_METADATA_BYTES", "METADATA_FILES", "SubmissionMeta", "parse_metadata"]
