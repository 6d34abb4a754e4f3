"""The few-shot probes' declaration (linear and k-NN probes per factor, k labelled examples per class).

Their code lives in :mod:`dbench.probes.few_shot`, which imports these parameters for its keyword
defaults and checks; ``plan`` and ``score`` are imported from there when first called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from dbench.metrics._constraints import AnyOf, Interval, ListOf, Options, Text
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey

PROBES = ("linear", "knn")

PARAMS = Params(
    shots=Param(
        [1, 5, 10, 50, "all"],
        ListOf(AnyOf(Interval(int, 1, 100_000), Options(("all",))), min_length=1, max_length=10, unique=True),
        "labelled examples per factor value ('all': the whole pool)",
    ),
    n_draws=Param(5, Interval(int, 1, 1000), "balanced training sets drawn per shot count and factor"),
    n_pool=Param(10000, Interval(int, 2, 1_000_000), "labelled pool the training sets are drawn from"),
    n_test=Param(5000, Interval(int, 2, 1_000_000), "test observations"),
    probes=Param(
        list(PROBES), ListOf(Options(PROBES), min_length=1, max_length=len(PROBES), unique=True), "probes fitted per factor"
    ),
    C=Param(1.0, Interval(float, 0.0, 1e10, closed="right"), "inverse L2 strength of the linear probe (logistic regression)"),
    ridge_alpha=Param(1.0, Interval(float, 0.0, 1e10, closed="right"), "L2 strength of the ridge regression (continuous factors)"),
    continuous_factors=Param(
        [],
        ListOf(AnyOf(Interval(int, 0, 1000), Text()), max_length=100),
        "factors (indices or names) regressed with R² instead of classified",
    ),
)
# Each shot count and factor keeps n_draws training sets of at most n_pool rows.
RULES = (Rule("n_draws * n_pool <= 2_000_000", "training rows drawn per shot count and factor"),)


def _plan(dataset: Any, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    from dbench.probes.few_shot import (
        plan,  # the probe's code imports this module: no import cycle
    )

    return plan(dataset, rng, params)


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    from dbench.probes.few_shot import score

    return Scored(score(plan, codes, params))


def _spread_keys(what: str, low: float, high: float, doc: str) -> tuple[ScoreKey, ...]:
    """A mean over draws and its spread: ``what``, ``what:std``, ``what:ci95_low``, ``what:ci95_high``."""
    std_high = 1.0 if high - low <= 1.0 else math.inf  # ddof=1 std of values in [0, 1] is <= 1/sqrt(2)
    return (
        ScoreKey(what, low, high, True, f"{doc}, mean over draws"),
        ScoreKey(f"{what}:std", 0.0, std_high, None, f"{doc}, standard deviation over draws (ddof = 1)"),
        ScoreKey(f"{what}:ci95_low", -math.inf, high, None, f"{doc}, lower end of the 95% Student-t interval"),
        ScoreKey(f"{what}:ci95_high", low, math.inf, None, f"{doc}, upper end of the 95% Student-t interval"),
    )


SPEC = MetricSpec(
    name="few_shot",
    description="Few-shot linear and k-NN probes per factor (k labelled examples per class), mean and 95% CI over draws",
    params=PARAMS,
    scores=(
        *_spread_keys("{probe}:{shots}:accuracy_factor_{i}", 0.0, 1.0, "test accuracy on factor i"),
        *_spread_keys("{probe}:{shots}:r2_factor_{i}", -math.inf, 1.0, "test R² on continuous factor i"),
        *_spread_keys("{probe}:{shots}:mean_accuracy", 0.0, 1.0, "test accuracy averaged over classified factors"),
    ),
    plan_fn=_plan,
    score_fn=_score,
    rules=RULES,
)
