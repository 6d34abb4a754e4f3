"""A protocol's resolved form (every number it fixes, as plain JSON data) and its hash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dbench._json import canonical_json, jsonable
from dbench.errors import ConfigError
from dbench.protocols.load import load_protocol
from dbench.protocols.model import Protocol

# Keys left out of the hash: they document a protocol but cannot change any number.
_UNHASHED_KEYS: tuple[str, ...] = ("description",)


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
        resolved_metrics[metric] = jsonable(params, f"{protocol.source}: metrics.{metric}", finite=True)
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


__all__ = ["dump_resolved_yaml", "hash_resolved", "protocol_hash", "resolve_protocol"]
