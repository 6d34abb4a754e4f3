"""The metric registry: one explicit table, name -> private module defining ``SPEC``.

Importing this module imports no metric; :func:`get_metric` imports the one asked for. A registry
entry also names the public functions its module defines, which ``dbench.metrics`` re-exports on
first use (``dbench.metrics.mig``). Adding a metric is one line in ``_TABLE``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbench.metrics._spec import MetricSpec


@dataclass(frozen=True)
class Entry:
    """One registered metric: its name, the module defining ``SPEC``, the public functions it defines."""

    name: str
    module: str
    functions: tuple[str, ...] = ()


_TABLE: tuple[Entry, ...] = (
    Entry("beta_vae", "dbench.metrics._beta_vae", ("beta_vae",)),
    Entry("factor_vae", "dbench.metrics._factor_vae", ("factor_vae",)),
    Entry("mig", "dbench.metrics._mig", ("mig",)),
    Entry("dci", "dbench.metrics._dci", ("dci", "dci_importance")),
    Entry("sap", "dbench.metrics._sap", ("sap",)),
    Entry("modularity_explicitness", "dbench.metrics._modularity", ("modularity_explicitness",)),
    Entry("irs", "dbench.metrics._irs", ("irs",)),
    Entry("unsupervised", "dbench.metrics._unsupervised", ("unsupervised",)),
    # The probes' code lives in dbench.probes; these modules hold their declarations.
    Entry("downstream_task", "dbench.metrics._downstream_task"),
    Entry("few_shot", "dbench.metrics._few_shot"),
)


def index(entries: Iterable[Entry]) -> dict[str, Entry]:
    """The entries by name; a name (or a public function name) registered twice is an error."""
    by_name: dict[str, Entry] = {}
    functions: set[str] = set()
    for entry in entries:
        if entry.name in by_name:
            raise ValueError(f"metric {entry.name!r} is registered twice")
        if not entry.module.startswith("dbench.metrics._"):
            raise ValueError(f"metric {entry.name!r}: its module must be a private module of dbench.metrics")
        for function in entry.functions:
            if function in functions:
                raise ValueError(f"public function {function!r} is registered twice")
            functions.add(function)
        by_name[entry.name] = entry
    return by_name


REGISTRY: dict[str, Entry] = index(_TABLE)
METRIC_MODULES: dict[str, str] = {name: entry.module for name, entry in REGISTRY.items()}
METRIC_NAMES: tuple[str, ...] = tuple(REGISTRY)
# Public function name -> the module that defines it.
PUBLIC_FUNCTIONS: dict[str, str] = {function: e.module for e in REGISTRY.values() for function in e.functions}


def get_metric(name: str) -> MetricSpec:
    """The :class:`~dbench.metrics.MetricSpec` registered as ``name``; an unknown name lists the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRIC_NAMES)}")
    spec: MetricSpec = importlib.import_module(REGISTRY[name].module).SPEC
    if spec.name != name:
        raise ValueError(f"{REGISTRY[name].module} declares metric {spec.name!r}, registered as {name!r}")
    return spec
