"""Disentanglement metrics.

Array-level metrics (codes and factor indices in, a dict of named floats out) and sampling-level
metrics (which intervene on factors, so they need a dataset and an encoder). Every metric also has a
:class:`~dbench.metrics.spec.MetricSpec` that plugs it into the encode-once pipeline; ``METRICS`` is
the one registry of them. Metric modules are imported on first use so ``import dbench.metrics`` stays
cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbench.metrics.spec import MetricSpec

# Registry: metric name -> module defining ``SPEC`` (explicit table, no import side effects).
METRIC_MODULES: dict[str, str] = {
    "beta_vae": "dbench.metrics.beta_vae",
    "factor_vae": "dbench.metrics.factor_vae",
    "mig": "dbench.metrics.mig",
    "dci": "dbench.metrics.dci",
    "sap": "dbench.metrics.sap",
    "modularity_explicitness": "dbench.metrics.modularity",
    "irs": "dbench.metrics.irs",
    "unsupervised": "dbench.metrics.unsupervised",
    "downstream_task": "dbench.probes.downstream",
    "few_shot": "dbench.probes.few_shot",
}
METRIC_NAMES: tuple[str, ...] = tuple(METRIC_MODULES)

# Public array-level and sampling-level functions: attribute name -> module.
_FUNCTIONS: dict[str, str] = {
    "beta_vae": "dbench.metrics.beta_vae",
    "factor_vae": "dbench.metrics.factor_vae",
    "mig": "dbench.metrics.mig",
    "dci": "dbench.metrics.dci",
    "sap": "dbench.metrics.sap",
    "modularity_explicitness": "dbench.metrics.modularity",
    "irs": "dbench.metrics.irs",
    "unsupervised": "dbench.metrics.unsupervised",
}


def get_metric(name: str) -> "MetricSpec":
    """The :class:`MetricSpec` registered as ``name``; an unknown name is an error listing the known ones."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRIC_NAMES)}")
    return importlib.import_module(METRIC_MODULES[name]).SPEC


def __getattr__(attr: str):
    if attr in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[attr]), attr)
    raise AttributeError(f"module 'dbench.metrics' has no attribute {attr!r}")


__all__ = ["METRIC_MODULES", "METRIC_NAMES", "get_metric", *_FUNCTIONS]
