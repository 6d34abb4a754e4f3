"""The downstream task's declaration (disentanglement_lib's ``downstream_task``, Locatello et al. 2019).

Its code lives in :mod:`dbench.probes.downstream`, which imports these parameters for its keyword
defaults and checks; ``plan`` and ``score`` are imported from there when first called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbench.metrics._constraints import Interval, ListOf, Options
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey

PREDICTOR_NAMES = ("logistic_regression_cv", "gradient_boosting")
LOGISTIC_SOLVERS = ("exact", "batched")

PARAMS = Params(
    n_train_sizes=Param(
        [10, 100, 1000, 10000],
        ListOf(Interval(int, 2, 1_000_000), min_length=1, max_length=20, unique=True),
        "training-set sizes of the learning curve, each drawn afresh",
    ),
    n_test=Param(5000, Interval(int, 1, 1_000_000), "test observations per training size"),
    predictors=Param(
        list(PREDICTOR_NAMES),
        ListOf(Options(PREDICTOR_NAMES), min_length=1, max_length=len(PREDICTOR_NAMES), unique=True),
        "classifiers fitted per factor",
    ),
    Cs=Param(10, Interval(int, 1, 100), "regularisation strengths in LogisticRegressionCV's grid"),
    n_folds=Param(5, Interval(int, 2, 100), "cross-validation folds of LogisticRegressionCV"),
    logistic_solver=Param(
        "exact", Options(LOGISTIC_SOLVERS), "'exact': scikit-learn's procedure; 'batched': every fit at once on the backend"
    ),
)
RULES = (
    Rule("min(n_train_sizes) >= n_folds", "every training set is split into n_folds folds"),
    Rule("sum(n_train_sizes) + len(n_train_sizes) * n_test <= 20_000_000", "observations the plan holds"),
)


def _plan(dataset: Any, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    from dbench.probes.downstream import (
        plan,  # the probe's code imports this module: no import cycle
    )

    return plan(dataset, rng, params)


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    from dbench.probes.downstream import score

    # The factor names label the learning-curve plot.
    return Scored(score(plan, codes, params), artifacts={"factor_names": plan.extra.get("factor_names")})


def _plot(scored: Scored, folder: Path) -> Path | None:
    from dbench.probes.plots import plot_downstream

    return plot_downstream(scored, folder)


def _accuracy_keys(split: str) -> tuple[ScoreKey, ...]:
    """dlib's per-size keys for one split (``train`` or ``test``)."""
    return (
        ScoreKey(f"{{predictor}}:{{n}}:mean_{split}_accuracy", 0.0, 1.0, True, f"mean {split} accuracy over factors"),
        ScoreKey(f"{{predictor}}:{{n}}:min_{split}_accuracy", 0.0, 1.0, True, f"lowest {split} accuracy over factors"),
        ScoreKey(f"{{predictor}}:{{n}}:{split}_accuracy_factor_{{i}}", 0.0, 1.0, True, f"{split} accuracy on factor i"),
    )


SPEC = MetricSpec(
    name="downstream_task",
    description="Downstream factor classification accuracy vs number of labels (logistic regression CV, boosted trees)",
    params=PARAMS,
    scores=(
        *_accuracy_keys("train"),
        *_accuracy_keys("test"),
        ScoreKey("{predictor}:sample_efficiency", 0.0, math.inf, True, "mean test accuracy at 100 labels / at 10 000"),
        ScoreKey("{predictor}:log_n_auc", 0.0, 1.0, True, "area under mean test accuracy against log10(n), normalised"),
    ),
    plan_fn=_plan,
    score_fn=_score,
    rules=RULES,
    plot=_plot,
)
