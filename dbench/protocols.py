"""Evaluation protocols: short YAML files of names and numbers that fix how an encoder is scored.

A protocol says which datasets, representations (``mean`` / ``sampled`` codes), metric seeds, array
backend and encoding batch size an evaluation uses, and which metrics it runs with which parameter
overrides. Everything not overridden comes from the metric's :class:`~dbench.metrics.MetricSpec`
defaults (disentanglement_lib's published values), so :func:`resolve_protocol` can write down every
number a result depends on and :func:`protocol_hash` can fingerprint it.

Files hold data only: they are read with ``yaml.safe_load`` semantics, explicit YAML tags (``!!python``,
``!custom``...) and duplicate keys are rejected, and every problem is reported as one line naming the
file, the key and what is allowed (:class:`~dbench.errors.ConfigError`). ``include: other.yaml`` pulls
in one other protocol (one level only); keys of the including file replace the included ones whole.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictInt, ValidationError

from dbench.errors import ConfigError

REPRESENTATIONS: tuple[str, ...] = ("mean", "sampled")
BACKENDS: tuple[str, ...] = ("auto", "numpy", "cupy", "torch")
AGGREGATES: tuple[str, ...] = ("mean_std",)

# Keys of the including file that are never inherited: a protocol's identity is its own.
_OWN_KEYS: tuple[str, ...] = ("name", "version")
# Keys left out of the hash: they document a protocol but cannot change any number.
_UNHASHED_KEYS: tuple[str, ...] = ("description",)

# A metric parameter: a YAML scalar or a list of them (downstream_task's training sizes).
ParamScalar = Union[StrictBool, StrictInt, float, str, None]
ParamValue = Union[ParamScalar, list[ParamScalar]]


class Protocol(BaseModel):
    """A validated protocol, ``include`` already merged in.

    ``representation`` is always a list (``"mean"`` in a file becomes ``["mean"]``). ``ranking`` lists
    the ``"metric.key"`` scores a leaderboard ranks entries on, in column order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    version: StrictInt = Field(ge=1)
    description: str = ""
    datasets: list[str] = Field(min_length=1)
    representation: Union[Literal["mean", "sampled"], list[Literal["mean", "sampled"]]] = "mean"
    seeds: list[Annotated[StrictInt, Field(ge=0)]] = Field(min_length=1)
    backend: Literal["auto", "numpy", "cupy", "torch"] = "auto"
    batch_size: StrictInt = Field(default=64, ge=1)
    metrics: dict[str, Union[dict[str, ParamValue], None]] = Field(min_length=1)
    aggregate: Union[Literal["mean_std"], None] = None
    ranking: Union[list[str], None] = None

    _source: str = PrivateAttr(default="<protocol>")

    @property
    def source(self) -> str:
        """Where the protocol was read from (a file path), for error messages."""
        return self._source

    @property
    def representations(self) -> list[str]:
        """``representation`` as a list."""
        rep = self.representation
        return [rep] if isinstance(rep, str) else list(rep)

    def overrides(self, metric: str) -> dict[str, Any]:
        """Parameter overrides the protocol sets for ``metric`` (an empty mapping in YAML may be null)."""
        return dict(self.metrics[metric] or {})


# ----------------------------------------------------------------------------------------------
# Reading YAML safely


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also rejects duplicate mapping keys (YAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML hook
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; tags, duplicate keys and non-mapping documents are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read protocol file ({exc.strerror or exc})") from None
    try:
        # Protocols hold names and numbers only: any explicit tag (even a safe one such as !!str)
        # is refused so that no file can smuggle in constructors or type coercions.
        for token in yaml.scan(text, Loader=_StrictSafeLoader):
            if isinstance(token, yaml.TagToken):
                line = token.start_mark.line + 1
                raise ConfigError(
                    f"{path}: line {line}: YAML tags are not allowed in protocols; "
                    "write plain names and numbers"
                )
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a protocol must be a YAML mapping of keys to values")
    return data


# ----------------------------------------------------------------------------------------------
# Finding protocols


def bundled_protocols_dir() -> Path:
    """Folder of the protocols shipped with dbench.

    ``dbench/bundled_protocols`` is a symlink to the repository's top-level ``protocols/`` folder, and
    a real folder of package data in an installed wheel. Where a checkout has no symlinks (Windows
    without ``core.symlinks``), the ``protocols/`` folder beside the package is used.
    """
    packaged = Path(__file__).resolve().parent / "bundled_protocols"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "protocols"


def list_protocols() -> list[str]:
    """Names of the bundled protocols, sorted."""
    return sorted(p.stem for p in bundled_protocols_dir().glob("*.yaml"))


def _bundled_file(name: str) -> Path | None:
    """The bundled protocol called ``name`` (``quick`` or ``quick.yaml``), if there is one."""
    if "/" in name or "\\" in name:
        return None
    path = bundled_protocols_dir() / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def _locate(name_or_path: str | Path) -> Path:
    """A file path as given, or the bundled protocol of that name (``quick`` or ``quick.yaml``)."""
    path = Path(name_or_path)
    found = path if path.is_file() else _bundled_file(str(name_or_path))
    if found is None:
        raise ConfigError(
            f"protocol {str(name_or_path)!r} not found: give a protocol file path or a bundled name "
            f"({', '.join(list_protocols()) or 'none'})"
        )
    return found


def _locate_include(target: Any, including: Path) -> Path:
    """``include:`` target: a path relative to the including file, else a bundled protocol name."""
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{including}: include: must be a file name such as 'quick.yaml'")
    local = including.parent / target
    found = local if local.is_file() else _bundled_file(target)
    if found is None:
        raise ConfigError(
            f"{including}: include: {target!r} not found next to the file nor among bundled protocols "
            f"({', '.join(list_protocols()) or 'none'})"
        )
    return found


def _merged_document(path: Path) -> dict[str, Any]:
    """The file's mapping with its ``include`` merged under it (one level; own keys win)."""
    data = _read_yaml(path)
    target = data.pop("include", None)
    if target is None:
        return data
    base_path = _locate_include(target, path)
    base = _read_yaml(base_path)
    if "include" in base:
        raise ConfigError(
            f"{path}: include: {base_path.name} itself has an include; only one level of include "
            "is allowed (copy the keys you need instead)"
        )
    for key in _OWN_KEYS:
        if key not in data:
            raise ConfigError(f"{path}: {key}: required in a protocol that uses include (not inherited)")
    return {**{k: v for k, v in base.items() if k not in _OWN_KEYS}, **data}


# ----------------------------------------------------------------------------------------------
# Validation


def _allowed_hint(error: Mapping[str, Any]) -> str:
    """What pydantic would accept at the error's location, in words."""
    kind, loc, got = error["type"], error["loc"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key; allowed: " + ", ".join(Protocol.model_fields)
    if kind == "missing":
        return "required key is missing"
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "").replace(" or ", ", ").replace("'", "")
        return f"got {got!r}; allowed: {expected}"
    if len(loc) >= 3 and loc[0] == "metrics":
        return f"got {got!r}; allowed: a number, a string, a boolean, null or a list of those"
    if len(loc) == 2 and loc[0] == "metrics":
        return f"got {got!r}; allowed: a mapping of parameter names to values (or nothing)"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return f"{message} (got {got!r})"


# pydantic appends the union member it tried ("list[...]", "literal[...]", "int"...) to an error's
# location; those are type names, not keys a user wrote.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict", "list"})


def _location(loc: tuple[Any, ...]) -> str:
    keys = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
    return ".".join(keys) or "<top level>"


def _format_validation_error(source: str, exc: ValidationError) -> str:
    """One line: the first (most specific) problem, its key and what is allowed."""
    errors = exc.errors()
    # For a union field pydantic reports one error per member; the deepest is the informative one.
    first = max(errors, key=lambda e: len(e["loc"]))
    others = {e["loc"][0] for e in errors if e["loc"]} - {first["loc"][0] if first["loc"] else None}
    more = f" (and problems with {', '.join(map(str, sorted(others, key=str)))})" if others else ""
    return f"{source}: {_location(first['loc'])}: {_allowed_hint(first)}{more}"


def _known_datasets() -> tuple[str, ...]:
    from dbench.datasets import DATASETS

    return tuple(DATASETS)


def _validate_semantics(protocol: Protocol) -> None:
    """Checks against the registries: metric names and parameters, dataset names, ranking entries."""
    from dbench import metrics as metric_registry

    source = protocol.source
    names = metric_registry.METRIC_NAMES
    for metric in protocol.metrics:
        if metric not in names:
            raise ConfigError(f"{source}: metrics.{metric}: unknown metric; allowed: {', '.join(names)}")
    for metric in protocol.metrics:
        # The metric's declaration checks every parameter (known, in range, rules between them).
        try:
            metric_registry.get_metric(metric).resolve(protocol.overrides(metric))
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    datasets = _known_datasets()
    for i, dataset in enumerate(protocol.datasets):
        if dataset not in datasets:
            raise ConfigError(
                f"{source}: datasets.{i}: unknown dataset {dataset!r}; allowed: {', '.join(datasets)}"
            )
    for field, values in (("datasets", protocol.datasets), ("seeds", protocol.seeds),
                          ("representation", protocol.representations)):
        if len(set(values)) != len(values):
            raise ConfigError(f"{source}: {field}: duplicate entries {values!r}; list each once")
    if len(protocol.seeds) > 1 and protocol.aggregate is None:
        raise ConfigError(f"{source}: aggregate: required with several seeds; allowed: {', '.join(AGGREGATES)}")
    for i, entry in enumerate(protocol.ranking or []):
        metric, dot, key = entry.partition(".")
        if not dot or not key or metric not in protocol.metrics:
            raise ConfigError(
                f"{source}: ranking.{i}: {entry!r} must be 'metric.score_key' with metric one of the "
                f"protocol's metrics ({', '.join(protocol.metrics)})"
            )
        try:
            metric_registry.get_metric(metric).score_key(key)  # a key the metric declares
        except ValueError as exc:
            raise ConfigError(f"{source}: ranking.{i}: {exc}") from None
    if protocol.ranking is not None and len(set(protocol.ranking)) != len(protocol.ranking):
        raise ConfigError(f"{source}: ranking: duplicate entries; list each score once")


def protocol_from_dict(data: Mapping[str, Any], source: str = "<protocol>") -> Protocol:
    """Validate an already merged protocol mapping (no ``include``); ``source`` names it in errors."""
    if "include" in data:
        raise ConfigError(f"{source}: include: only allowed in protocol files")
    try:
        protocol = Protocol.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
    protocol._source = source
    _validate_semantics(protocol)
    return protocol


def load_protocol(name_or_path: str | Path | Protocol | Mapping[str, Any]) -> Protocol:
    """Read and validate a protocol: a bundled name (``"quick"``), a YAML file path or a mapping.

    Raises :class:`~dbench.errors.ConfigError` with one line naming the file, the key and what is
    allowed.
    """
    if isinstance(name_or_path, Protocol):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return protocol_from_dict(name_or_path, source="<protocol mapping>")
    path = _locate(name_or_path)
    return protocol_from_dict(_merged_document(path), source=str(path))


# ----------------------------------------------------------------------------------------------
# Resolved form and hash


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON data (tuples to lists, NumPy scalars to Python numbers) or an error naming ``where``."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    item = getattr(value, "item", None)  # NumPy scalar in a metric's defaults
    if callable(item) and getattr(value, "shape", None) == ():
        return _jsonable(item(), where)
    raise ConfigError(f"{where}: value of type {type(value).__name__} cannot be written to a result file")


def resolve_protocol(protocol: Protocol | str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Everything the protocol fixes, as plain JSON data.

    Every metric carries its full parameter set (the metric's defaults updated with the protocol's
    overrides), ``representation`` is a list and ``include`` is already flattened, so the result
    alone says which numbers produced a score.
    """
    from dbench import metrics as metric_registry

    protocol = load_protocol(protocol)
    resolved_metrics = {}
    for metric in protocol.metrics:
        try:
            params = metric_registry.get_metric(metric).resolve(protocol.overrides(metric))
        except ValueError as exc:
            raise ConfigError(f"{protocol.source}: {exc}") from None
        resolved_metrics[metric] = _jsonable(params, f"{protocol.source}: metrics.{metric}")
    return {
        "name": protocol.name,
        "version": protocol.version,
        "description": protocol.description,
        "datasets": list(protocol.datasets),
        "representation": protocol.representations,
        "seeds": list(protocol.seeds),
        "backend": protocol.backend,
        "batch_size": protocol.batch_size,
        "metrics": resolved_metrics,
        "aggregate": protocol.aggregate,
        "ranking": list(protocol.ranking) if protocol.ranking is not None else None,
    }


def canonical_json(data: Any) -> str:
    """Compact JSON with sorted keys: the same data always gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def hash_resolved(resolved: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a resolved protocol, ``description`` left out.

    Use it to check the ``protocol.resolved`` stored in a result file against its ``protocol.hash``.
    """
    hashed = {k: v for k, v in resolved.items() if k not in _UNHASHED_KEYS}
    return hashlib.sha256(canonical_json(hashed).encode("ascii")).hexdigest()


def protocol_hash(protocol: Protocol | str | Path | Mapping[str, Any]) -> str:
    """Fingerprint of every number a protocol fixes: :func:`hash_resolved` of :func:`resolve_protocol`.

    Equal hashes mean an equal evaluation setup, whatever the key order in the YAML file, the run or
    the machine; the free-text ``description`` does not count.
    """
    return hash_resolved(resolve_protocol(protocol))


def dump_resolved_yaml(resolved: Mapping[str, Any]) -> str:
    """The resolved protocol as YAML, keys in the documented order."""
    return yaml.safe_dump(dict(resolved), sort_keys=False, default_flow_style=None, width=100)



# ----------------------------------------------------------------------------------------------
# Command line: dbench protocols list | show NAME | validate FILE...

_PROTOCOLS_EPILOG = """examples:
  dbench protocols list                  # bundled protocols with their descriptions
  dbench protocols show quick            # every parameter, defaults filled in, and the hash
  dbench protocols validate my.yaml      # exit 0 if valid, 1 with one line per problem
"""


def register(subparsers: Any) -> None:
    """Add ``dbench protocols`` with its ``list``, ``show`` and ``validate`` subcommands."""
    import argparse

    parser = subparsers.add_parser(
        "protocols",
        help="list, show or validate evaluation protocols",
        description="Evaluation protocols: YAML files fixing datasets, metrics, parameters and seeds.",
        epilog=_PROTOCOLS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="protocols_command", metavar="ACTION", required=True)
    p_list = sub.add_parser("list", help="bundled protocol names and descriptions")
    p_list.set_defaults(func=_cli_list)
    p_show = sub.add_parser("show", help="print a protocol fully resolved (YAML) with its hash")
    p_show.add_argument("protocol", help="bundled name or YAML file")
    p_show.set_defaults(func=_cli_show)
    p_validate = sub.add_parser("validate", help="check protocol files; exit 0 if all are valid, else 1")
    p_validate.add_argument("files", nargs="+", metavar="FILE", help="protocol YAML files or bundled names")
    p_validate.set_defaults(func=_cli_validate)
    p_export = sub.add_parser(
        "export-queries",
        help="write the observations a submission must encode (indices, and images with --images)",
    )
    p_export.add_argument("protocol", help="bundled name or YAML file")
    p_export.add_argument("--out", required=True, help=".npz file: <dataset>__indices (and <dataset>__images)")
    p_export.add_argument("--images", action="store_true", help="also write the images (float32 N,C,H,W)")
    p_export.add_argument("--data-dir", default=None)
    p_export.set_defaults(func=_cli_export_queries)


def _cli_export_queries(args: Any) -> int:
    from dbench.submissions.queries import export_queries

    path = export_queries(args.protocol, args.out, images=args.images, data_dir=args.data_dir)
    print(f"wrote {path}")
    return 0


def _cli_list(args: Any) -> int:
    # Listing reads the files only; `show` and `validate` check them against the metric registry.
    for name in list_protocols():
        try:
            description = " ".join(str(_merged_document(_locate(name)).get("description", "")).split())
        except ConfigError as exc:
            description = f"INVALID: {exc}"
        print(f"{name:<12} {description}")
    return 0


def _cli_show(args: Any) -> int:
    resolved = resolve_protocol(args.protocol)
    print(f"# hash: {hash_resolved(resolved)}")
    print(dump_resolved_yaml(resolved), end="")
    return 0


def _cli_validate(args: Any) -> int:
    import sys

    status = 0
    for target in args.files:
        try:
            resolved = resolve_protocol(target)
        except ConfigError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"ok: {target} ({resolved['name']} v{resolved['version']}, hash {hash_resolved(resolved)[:12]})")
    return status


__all__ = [
    "AGGREGATES",
    "BACKENDS",
    "REPRESENTATIONS",
    "Protocol",
    "bundled_protocols_dir",
    "canonical_json",
    "dump_resolved_yaml",
    "hash_resolved",
    "list_protocols",
    "load_protocol",
    "protocol_from_dict",
    "protocol_hash",
    "register",
    "resolve_protocol",
]
