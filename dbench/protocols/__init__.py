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

The package, by job:

- :mod:`~dbench.protocols.model`: the pydantic :class:`Protocol` (what a file may say);
- :mod:`~dbench.protocols.yaml_io`: reading YAML safely;
- :mod:`~dbench.protocols.registry`: the bundled protocols and finding a file by name;
- :mod:`~dbench.protocols.validation`: checks against the metric and dataset registries;
- :mod:`~dbench.protocols.load`: ``include``, validation and one-line errors -> :func:`load_protocol`;
- :mod:`~dbench.protocols.resolve`: the resolved form and its hash.
"""

from dbench._json import canonical_json
from dbench.choices import AGGREGATES, BACKENDS, REPRESENTATIONS
from dbench.protocols.load import load_protocol, protocol_from_dict
from dbench.protocols.model import Protocol
from dbench.protocols.registry import bundled_protocols_dir, list_protocols
from dbench.protocols.resolve import (
    dump_resolved_yaml,
    hash_resolved,
    protocol_hash,
    resolve_protocol,
)

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
    "resolve_protocol",
]
