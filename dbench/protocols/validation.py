"""Checks of a schema-valid protocol against the registries: metrics, their parameters, datasets.

Each metric's parameters are checked by its declaration (:meth:`dbench.metrics.MetricSpec.resolve`:
known names, values in their declared ranges, rules between parameters); ranking entries name score
keys the metric declares (:meth:`dbench.metrics.MetricSpec.score_key`).
"""

from __future__ import annotations

from dbench.choices import AGGREGATES
from dbench.errors import ConfigError, excerpt
from dbench.protocols.model import Protocol


def short_key(key: object) -> str:
    """A key as written, cut to a short excerpt (a hostile file may use a 100 KB key)."""
    text = str(key)
    return text if len(text) <= 40 else excerpt(text, 40)


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
            raise ConfigError(f"{source}: metrics.{short_key(metric)}: unknown metric; allowed: {', '.join(names)}")
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
                f"{source}: datasets.{i}: unknown dataset {excerpt(dataset)}; allowed: {', '.join(datasets)}"
            )
    for field, values in (("datasets", protocol.datasets), ("seeds", protocol.seeds),
                          ("representation", protocol.representations)):
        if len(set(values)) != len(values):
            raise ConfigError(f"{source}: {field}: duplicate entries {excerpt(values)}; list each once")
    if len(protocol.seeds) > 1 and protocol.aggregate is None:
        raise ConfigError(f"{source}: aggregate: required with several seeds; allowed: {', '.join(AGGREGATES)}")
    for i, entry in enumerate(protocol.ranking or []):
        metric, dot, key = entry.partition(".")
        if not dot or not key or metric not in protocol.metrics:
            raise ConfigError(
                f"{source}: ranking.{i}: {excerpt(entry)} must be 'metric.score_key' with metric one of the "
                f"protocol's metrics ({', '.join(protocol.metrics)})"
            )
        try:
            metric_registry.get_metric(metric).score_key(key)  # a key the metric declares
        except ValueError as exc:
            raise ConfigError(f"{source}: ranking.{i}: {exc}") from None
    if protocol.ranking is not None and len(set(protocol.ranking)) != len(protocol.ranking):
        raise ConfigError(f"{source}: ranking: duplicate entries; list each score once")


__all__ = ["validate_semantics"]
