"""Checks of a schema-valid protocol against the registries: metrics, their parameters, datasets.

The parameter checks (:func:`check_parameter`) compare a value with the kind of the metric's default.
"""

from __future__ import annotations

import math
from typing import Any

from dbench.choices import AGGREGATES
from dbench.errors import ConfigError
from dbench.protocols.model import Protocol


def _param_kind(value: Any) -> str:
    """The kind of a parameter value, in words."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def check_parameter(source: str, metric: str, key: str, value: Any, default: Any) -> None:
    """``value`` must be of the kind of the metric's default; an integer is accepted for a number."""
    if default is None or value is None:
        return  # no kind to compare with, or the metric's "not set" value
    expected, got = _param_kind(default), _param_kind(value)
    if got != expected and not (expected == "a number" and got == "an integer"):
        raise ConfigError(
            f"{source}: metrics.{metric}.{key}: got {value!r}; allowed: {expected} (default {default!r})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: metrics.{metric}.{key}: got {value!r}; allowed: a finite number")


def _known_datasets() -> tuple[str, ...]:
    from dbench.datasets import DATASETS

    return tuple(DATASETS)


def validate_semantics(protocol: Protocol) -> None:
    """Checks against the registries: metric names and parameters, dataset names, ranking entries."""
    from dbench import metrics as metric_registry

    source = protocol.source
    names = metric_registry.METRIC_NAMES
    for metric in protocol.metrics:
        if metric not in names:
            raise ConfigError(f"{source}: metrics.{metric}: unknown metric; allowed: {', '.join(names)}")
    for metric in protocol.metrics:
        defaults = metric_registry.get_metric(metric).defaults
        for key, value in protocol.overrides(metric).items():
            if key not in defaults:
                allowed = ", ".join(sorted(defaults)) or "none"
                raise ConfigError(f"{source}: metrics.{metric}.{key}: unknown parameter; allowed: {allowed}")
            check_parameter(source, metric, key, value, defaults[key])

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
    if protocol.ranking is not None and len(set(protocol.ranking)) != len(protocol.ranking):
        raise ConfigError(f"{source}: ranking: duplicate entries; list each score once")


__all__ = ["check_parameter", "validate_semantics"]
