"""How a metric plugs into the encode-once evaluation pipeline.

Each metric is split in two (the torchmetrics / disentanglement_lib public-private split):

``plan(dataset, rng, params) -> Plan``
    Decide, with an explicit random generator, which observations the metric needs: named arrays of
    flat observation indices (any shape) plus any labels (factor indices, chosen factors...).
``score(plan, codes, params) -> dict[str, float]``
    Pure maths. ``codes[key]`` has shape ``plan.requests[key].shape + (n_latents,)`` and lives in the
    backend's array namespace (NumPy, CuPy, torch, array_api_strict).

The pipeline unions the requests of all metrics, encodes each unique index once, and hands every
metric its codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np


@dataclass
class Plan:
    """Observation indices a metric needs (``requests``) and the labels that go with them (``extra``)."""

    requests: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """A metric as the pipeline sees it.

    ``defaults`` holds every parameter with disentanglement_lib's published default, sample sizes
    included; a protocol may override any of them and nothing else.
    """

    name: str
    defaults: Mapping[str, Any]
    plan: Callable[[Any, np.random.Generator, Mapping[str, Any]], Plan]
    score: Callable[[Plan, Mapping[str, Any], Mapping[str, Any]], dict[str, float]]
    description: str = ""

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults updated with ``overrides``; an unknown parameter is an error naming the allowed ones."""
        params = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in params:
                allowed = ", ".join(sorted(params)) or "none"
                raise ValueError(f"metric {self.name!r} has no parameter {key!r}; allowed: {allowed}")
            params[key] = value
        return params
