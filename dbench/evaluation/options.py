"""What to evaluate and where things are: the options of one call to :func:`dbench.evaluate`.

One frozen dataclass replaces the keyword arguments that used to be threaded through ``evaluate``,
``evaluate_all`` and ``resolve_config``. Every field is optional: what is not given comes from the
protocol (default ``quick``). The values are checked and normalised once, here (a single metric
name or dataset becomes a one-name tuple, a single seed a one-seed tuple), so every later stage reads
plain data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from dbench.choices import BACKENDS, REPRESENTATIONS, BackendName, Representation
from dbench.errors import ConfigError, excerpt
from dbench.protocols.model import MAX_BATCH_SIZE, MAX_SEED, MAX_SEEDS

if TYPE_CHECKING:
    from dbench.protocols import Protocol

#: What ``protocol=`` accepts: a bundled name, a YAML file, a mapping, or a loaded Protocol.
ProtocolSpec = Union[str, "os.PathLike[str]", Mapping[str, Any], "Protocol"]
PathSpec = Union[str, "os.PathLike[str]"]


def _is_integer(value: Any) -> bool:
    return not isinstance(value, bool) and hasattr(value, "__index__")  # int and NumPy integers


def _names(
    value: str | Sequence[str] | None, what: str = "metrics", example: str = "metric names such as 'mig' or ['mig', 'dci']"
) -> tuple[str, ...] | None:
    """Names as a tuple (a single string is one name); None (or an empty list, as before) means the protocol's."""
    if value is None or (not isinstance(value, str) and isinstance(value, Sequence) and not value):
        return None
    names = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, Sequence) else (value,)
    if not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{what}: expected {example}; got {excerpt(value)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: {sorted({n for n in names if names.count(n) > 1})} given twice; name each once")
    return names


def _seeds(value: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else [value]
    if not values or not all(_is_integer(s) for s in values):
        raise ConfigError(f"seed: expected an integer or a non-empty list of integers; got {excerpt(value)}")
    seeds = tuple(int(s) for s in values)
    outside = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if outside:
        raise ConfigError(f"seed: {excerpt(outside[0])} is outside [0, {MAX_SEED}]; use non-negative 32-bit seeds")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1}) if len(set(seeds)) != len(seeds) else []
    if repeated:
        raise ConfigError(
            f"seed: {', '.join(map(str, repeated[:5]))} given more than once; list each seed once (a repeated seed "
            "repeats the same run and would report a spread of 0 that was never measured)"
        )
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"seed: {len(seeds)} seeds; at most {MAX_SEEDS} (each seed runs every metric again)")
    return seeds


def _absolute(path: PathSpec | None) -> str | None:
    """A path made absolute now, so that user code changing the working folder later changes nothing."""
    return None if path is None else os.path.abspath(os.fspath(path))


def _absolute_protocol(protocol: Any) -> Any:
    """A protocol given as the path of an existing file, made absolute; names and mappings unchanged."""
    if isinstance(protocol, (str, os.PathLike)) and os.path.isfile(protocol):
        return os.path.abspath(os.fspath(protocol))
    return protocol


def _choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is not None and value not in allowed:
        raise ConfigError(f"{what}: got {excerpt(value)}; allowed: {', '.join(allowed)}")
    return value


@dataclass(frozen=True, kw_only=True)
class EvaluationOptions:
    """The options of an evaluation: the keyword arguments of :func:`dbench.evaluate` (see there).

    Each overrides what the protocol (default ``quick``) says. ``data_dir``, ``cache_dir`` and
    ``progress`` say where things are and how to report; the others what to evaluate. A single metric
    name or seed may be given for a list of them; read the seeds as :attr:`seeds`.
    """

    protocol: ProtocolSpec | None = None
    dataset: str | Sequence[str] | None = None  # stored as a tuple; read it as ``datasets``
    metrics: Sequence[str] | None = None  # stored as a tuple
    seed: int | Sequence[int] | None = None  # stored as a tuple; read it as ``seeds``
    params: Mapping[str, Mapping[str, Any]] | None = field(default_factory=dict)  # stored as a dict
    representation: Representation | None = None
    backend: BackendName | None = None
    batch_size: int | None = None
    limit: float | None = None
    data_dir: PathSpec | None = None
    cache_dir: PathSpec | None = None
    progress: bool = False
    #: How the evaluation was asked for (the command line, or the Python call), recorded in the result.
    invocation: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # normalising a frozen dataclass once, at construction
        set_(self, "metrics", _names(self.metrics))
        set_(self, "seed", _seeds(self.seed))
        if isinstance(self.dataset, str) and not self.dataset:
            raise ConfigError(f"dataset: expected a dataset name such as 'dsprites'; got {excerpt(self.dataset)}")
        example = "dataset names such as 'dsprites' or ['dsprites', 'noisy_dsprites']"
        set_(self, "dataset", _names(self.dataset, "dataset", example))
        if self.limit is not None:
            if isinstance(self.limit, bool) or not isinstance(self.limit, (int, float)) or not 0 < float(self.limit) <= 1:
                raise ConfigError(
                    f"limit: expected a fraction in (0, 1] scaling every sample size, e.g. 0.1; got {excerpt(self.limit)}"
                )
            set_(self, "limit", float(self.limit))
        if self.invocation is not None and not isinstance(self.invocation, str):
            raise ConfigError(f"invocation: expected a string; got {type(self.invocation).__name__}")
        params = {} if self.params is None else self.params
        if not isinstance(params, Mapping) or not all(isinstance(v, Mapping) for v in params.values()):
            raise ConfigError(f"params: expected a mapping of metric names to parameter mappings, e.g. "
                              f"{{'mig': {{'n_train': 5000}}}}; got {excerpt(self.params)}")
        set_(self, "params", {str(k): dict(v) for k, v in params.items()})
        _choice(self.representation, REPRESENTATIONS, "representation")
        _choice(self.backend, BACKENDS, "backend")
        if self.batch_size is not None and not (_is_integer(self.batch_size) and 1 <= int(self.batch_size) <= MAX_BATCH_SIZE):
            raise ConfigError(f"batch_size: expected an integer in [1, {MAX_BATCH_SIZE}]; got {excerpt(self.batch_size)}")
        # Paths are fixed now, before any user code runs: an encoder that calls os.chdir changes nothing.
        set_(self, "data_dir", _absolute(self.data_dir))
        set_(self, "cache_dir", _absolute(self.cache_dir))
        set_(self, "protocol", _absolute_protocol(self.protocol))

    @property
    def seeds(self) -> tuple[int, ...] | None:
        """The seeds given, as a tuple (None: the protocol's)."""
        return self.seed  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def datasets(self) -> tuple[str, ...] | None:
        """The datasets given, as a tuple (None: the protocol's)."""
        return self.dataset  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def overrides_protocol(self) -> bool:
        """Whether metrics, parameters, seeds or sample sizes differ from the protocol's (a derived protocol).

        A dataset or representation outside the protocol's lists also derives one; that depends on
        the protocol and is decided when it is resolved.
        """
        return bool(self.metrics or self.params or self.seed is not None or self.limit is not None)


__all__ = ["EvaluationOptions", "PathSpec", "ProtocolSpec"]
