"""What a sweep evaluates: the :class:`SweepSpec` (a YAML sweep file, the command line, or Python).

A sweep file names encoders (paths or globs, relative to the file), optionally a grid of reference
models to train first, and the protocols, datasets, representations, metric seeds and parameter
overrides every encoder is evaluated with::

    encoders:
      - runs/*/                          # every run folder under runs/
      - path: my_encoder.py              # or a mapping, with metadata for the aggregate table
        meta: {family: moments, width: 10}
    protocols: [quick]                   # bundled names or YAML files
    datasets: [dsprites]                 # default: each protocol's
    representations: [mean, sampled]     # default: each protocol's
    seeds: [0, 1]                        # metric seeds, one job each (default: the protocol's, one job)
    metrics: [mig, dci]                  # default: each protocol's
    set: {mig: {n_train: 5000}}          # parameter overrides, as --set
    limit: 0.2                           # every sample size scaled by 0.2, as --limit

The file is data only and is checked before anything runs: at most :data:`MAX_FILE_BYTES` bytes, no
YAML tags, anchors or aliases, no duplicate keys, nesting at most :data:`MAX_DEPTH` deep, only the keys
below; every problem is one line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from dbench.choices import BackendName, Representation
from dbench.errors import ConfigError

#: Largest sweep file read (a sweep file is a few lines; anything this big is a mistake or an attack).
MAX_FILE_BYTES = 1 << 20
#: Deepest nesting of mappings and lists accepted in a sweep file.
MAX_DEPTH = 8
#: Most entries a list in a sweep may hold (encoders, seeds, grid values ...).
MAX_ITEMS = 100_000

Name = Annotated[str, Field(min_length=1, max_length=4096)]
MetaValue = bool | int | float | str | None
Number = StrictInt | float
Seed = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncoderEntry(_Strict):
    """One encoder path or glob, with optional metadata that the aggregate table carries as columns."""

    path: Name
    meta: dict[Annotated[str, Field(min_length=1, max_length=100)], MetaValue] = Field(default_factory=dict)


class TrainGrid(_Strict):
    """Reference models to train with ``dbench train`` before they are evaluated (see docs/studies.md).

    Every model is trained for every value combination of its hyperparameter lists and every seed, into
    ``out/<model>[-<hp><value>...]-seed<seed>``; a run folder that already finished ``steps`` steps is
    taken as it is, an unfinished one resumes from its checkpoint.
    """

    out: Name
    steps: StrictInt = Field(ge=0, le=10_000_000)
    seeds: list[Seed] = Field(min_length=1, max_length=1000)
    dataset: Name = "dsprites"
    #: More ``dbench train`` arguments, e.g. ``[--batch-size, 64, --threads, 1, --device, cuda]``.
    args: list[str | int | float] = Field(default_factory=list, max_length=100)
    #: model -> hyperparameter -> value or list of values (an empty mapping: the model's defaults).
    models: dict[Name, dict[Name, Number | list[Number]] | None] = Field(min_length=1, max_length=100)

    @field_validator("args")
    @classmethod
    def _args_are_strings(cls, value: list[Any]) -> list[str]:
        return [str(v) for v in value]


class SweepSpec(_Strict):
    """Everything a sweep evaluates (see the module docstring); paths are absolute once resolved."""

    encoders: list[Name | EncoderEntry] = Field(default_factory=list, max_length=MAX_ITEMS)
    train: TrainGrid | None = None
    protocols: list[Name] = Field(default_factory=lambda: ["quick"], min_length=1, max_length=100)
    datasets: list[Name] | None = Field(default=None, min_length=1, max_length=100)
    representations: list[Representation] | None = Field(default=None, min_length=1, max_length=2)
    seeds: list[Seed] | None = Field(default=None, min_length=1, max_length=10_000)
    metrics: list[Name] | None = Field(default=None, min_length=1, max_length=100)
    set: dict[Name, dict[Name, Any]] = Field(default_factory=dict, max_length=100)
    #: every sample size of the protocols scaled by this fraction, as ``dbench evaluate --limit``
    limit: float | None = Field(default=None, gt=0, le=1)
    backend: BackendName | None = None
    batch_size: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    data_dir: Name | None = None
    cache_dir: Name | None = None

    def entries(self) -> list[EncoderEntry]:
        """The encoders as :class:`EncoderEntry` objects (a plain string is a path without metadata)."""
        return [e if isinstance(e, EncoderEntry) else EncoderEntry(path=e) for e in self.encoders]

    def relative_to(self, base: Path) -> SweepSpec:
        """A copy whose relative paths (encoders, train.out, data_dir, cache_dir) are taken from ``base``."""

        def absolute(path: str) -> str:
            expanded = os.path.expanduser(path)
            return expanded if os.path.isabs(expanded) else os.path.normpath(str(base / expanded))

        def local_protocol(name: str) -> str:
            # A protocol given as a file (it has a YAML suffix or a separator) is relative to the file;
            # a bare name is a bundled protocol.
            looks_like_file = name.endswith((".yaml", ".yml")) or os.sep in name or "/" in name
            return absolute(name) if looks_like_file else name

        update: dict[str, Any] = {
            "encoders": [e.model_copy(update={"path": absolute(e.path)}) for e in self.entries()],
            "protocols": [local_protocol(p) for p in self.protocols],
            "data_dir": absolute(self.data_dir) if self.data_dir else None,
            "cache_dir": absolute(self.cache_dir) if self.cache_dir else None,
        }
        if self.train is not None:
            update["train"] = self.train.model_copy(update={"out": absolute(self.train.out)})
        return self.model_copy(update=update)


def _format(source: str, exc: ValidationError) -> str:
    first = max(exc.errors(), key=lambda e: len(e["loc"]))
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = f"unknown key; allowed: {', '.join(_allowed_keys(first['loc']))}"
    return f"{source}: {loc or '<top level>'}: {message} (got {_short(first.get('input'))})"


# pydantic appends the union member it tried to a location; those are type names, not keys.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list", "EncoderEntry", "constrained-str"})


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if loc and loc[0] == "train":
        return list(TrainGrid.model_fields)
    if loc and loc[0] == "encoders":
        return list(EncoderEntry.model_fields)
    return list(SweepSpec.model_fields)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def spec_from_dict(data: Any, source: str = "<sweep>") -> SweepSpec:
    """Validate a parsed sweep mapping; one-line :class:`ConfigError` naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a sweep file must be a YAML mapping of keys (encoders, protocols, ...) to values")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(source, exc)) from None


def _check_tokens(text: str, path: Path) -> None:
    """Refuse tags, anchors, aliases and deep nesting before the document is built."""
    from dbench.protocols.yaml_io import _StrictSafeLoader

    depth = 0
    starts = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
              yaml.FlowSequenceStartToken)
    ends = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    for token in yaml.scan(text, Loader=_StrictSafeLoader):
        line = token.start_mark.line + 1
        if isinstance(token, yaml.TagToken):
            raise ConfigError(f"{path}: line {line}: YAML tags are not allowed in a sweep file; write plain values")
        if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
            raise ConfigError(f"{path}: line {line}: YAML anchors and aliases are not allowed in a sweep file; "
                              "write each value out")
        if isinstance(token, starts):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{path}: line {line}: nested more than {MAX_DEPTH} levels deep; a sweep file is "
                                  "a flat mapping of lists")
        elif isinstance(token, ends):
            depth -= 1


def read_sweep_file(path: str | os.PathLike[str]) -> SweepSpec:
    """Read, check and validate a sweep file; its relative paths are taken from the file's folder."""
    from dbench.protocols.yaml_io import _StrictSafeLoader

    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ConfigError(f"{path}: not a file; give the path of a YAML sweep file")
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for a sweep file; "
                              "use globs instead of listing every encoder")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a sweep file is YAML") from None
    try:
        _check_tokens(text, path)
        data = yaml.load(text, Loader=_StrictSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    return spec_from_dict(data, str(path)).relative_to(path.resolve().parent)


__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "EncoderEntry", "SweepSpec", "TrainGrid", "read_sweep_file", "spec_from_dict"]
