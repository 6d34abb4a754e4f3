"""Disentanglement metrics.

Array-level metrics (codes and factor indices in, a dict of named floats out) and sampling-level
metrics (which intervene on factors, so they need a dataset and an encoder). Every metric also has a
:class:`~dbench.metrics.spec.MetricSpec` that plugs it into the encode-once pipeline;
``METRIC_MODULES`` is the one registry of them. ``import dbench`` does not import this package.
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

# Public array-level and sampling-level functions. They are imported eagerly (none imports torch):
# a function and its module share a name (``dbench.metrics.mig``), and a lazy ``__getattr__`` would
# lose to the submodule attribute that Python's import system sets once the module is imported.
from dbench.metrics.beta_vae import beta_vae  # noqa: E402
from dbench.metrics.dci import dci  # noqa: E402
from dbench.metrics.factor_vae import factor_vae  # noqa: E402
from dbench.metrics.irs import irs  # noqa: E402
from dbench.metrics.mig import mig  # noqa: E402
from dbench.metrics.modularity import modularity_explicitness  # noqa: E402
from dbench.metrics.sap import sap  # noqa: E402
from dbench.metrics.unsupervised import unsupervised  # noqa: E402


def get_metric(name: str) -> "MetricSpec":
    """The :class:`MetricSpec` registered as ``name``; an unknown name is an error listing the known ones."""
    if name not in METRIC_MODULES:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRIC_NAMES)}")
    return importlib.import_module(METRIC_MODULES[name]).SPEC


__all__ = [
    "METRIC_MODULES",
    "METRIC_NAMES",
    "get_metric",
    "beta_vae",
    "dci",
    "factor_vae",
    "irs",
    "mig",
    "modularity_explicitness",
    "sap",
    "unsupervised",
]
