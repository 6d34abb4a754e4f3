"""Disentanglement metrics.

Array-level metrics (codes and factor indices in, a dict of named floats out) and sampling-level
metrics (which intervene on factors, so they need a dataset and an encoder). Each metric lives in a
private module (``dbench.metrics._mig``...) that declares it once, in a :class:`MetricSpec`; the
registry (``dbench.metrics._registry``) maps names to those modules.

This package re-exports the public metric functions (imported on first use, so ``import
dbench.metrics`` imports no metric, torch, scikit-learn or matplotlib), the declaration API
(:class:`MetricSpec` and what it is built from), :func:`get_metric`, the registry's names and
:class:`DegenerateInputWarning`. ``import dbench`` does not import this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dbench.metrics._constraints import (
    AnyOf,
    Boolean,
    Constraint,
    Interval,
    ListOf,
    Options,
    Text,
)
from dbench.metrics._registry import (
    METRIC_MODULES,
    METRIC_NAMES,
    PUBLIC_FUNCTIONS,
    get_metric,
)
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey
from dbench.metrics._validation import DegenerateInputWarning

if TYPE_CHECKING:  # the lazily re-exported functions, with their signatures, for type checkers only
    from dbench.metrics._beta_vae import beta_vae as beta_vae
    from dbench.metrics._dci import dci as dci
    from dbench.metrics._dci import dci_importance as dci_importance
    from dbench.metrics._factor_vae import factor_vae as factor_vae
    from dbench.metrics._irs import irs as irs
    from dbench.metrics._mig import mig as mig
    from dbench.metrics._modularity import modularity_explicitness as modularity_explicitness
    from dbench.metrics._sap import sap as sap
    from dbench.metrics._unsupervised import unsupervised as unsupervised


def __getattr__(name: str) -> Any:
    """The public metric functions (``mig``, ``dci``, ``beta_vae``...), imported from their module on use."""
    module = PUBLIC_FUNCTIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'dbench.metrics' has no attribute {name!r}")
    function = getattr(importlib.import_module(module), name)
    globals()[name] = function  # later lookups skip __getattr__
    return function


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "METRIC_MODULES",
    "METRIC_NAMES",
    "AnyOf",
    "Boolean",
    "Constraint",
    "DegenerateInputWarning",
    "Interval",
    "ListOf",
    "MetricSpec",
    "Options",
    "Param",
    "Params",
    "Plan",
    "Rule",
    "ScoreKey",
    "Scored",
    "Text",
    "get_metric",
]
__all__ += list(PUBLIC_FUNCTIONS)  # the registry's public metric functions (mig, dci, beta_vae...)
