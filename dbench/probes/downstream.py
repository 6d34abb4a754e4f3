"""Downstream classification task (disentanglement_lib's ``downstream_task``, Locatello et al., 2019).

For each training size ``n`` (default 10, 100, 1000, 10 000) a fresh training set of ``n`` and a test
set of ``n_test`` (5000) observations are drawn; for every factor a classifier is fitted on the codes
and its accuracy on both sets is reported. Two predictors, as in the study's two metric configs:

* ``logistic_regression_cv``: ``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))``. By default
  (``logistic_solver="exact"``) scikit-learn's own procedure and optimiser on a vectorised objective
  (:func:`dbench.estimators.exact_logistic.exact_logistic_regression_cv`, host NumPy): the same chosen
  ``C`` and iterates as scikit-learn. ``logistic_solver="batched"`` solves all factors, folds and ``C``
  values at once on the codes' backend (:mod:`dbench.estimators.batched_logistic`; CuPy/torch), agreeing with
  scikit-learn's accuracies to ~1e-3;
* ``gradient_boosting``: ``GradientBoostingClassifier()`` with scikit-learn's defaults (CPU).

Keys are ``"{predictor}:{dlib key}"`` with disentanglement_lib's keys ``"{n}:mean_train_accuracy"``,
``"{n}:mean_test_accuracy"``, ``"{n}:min_train_accuracy"``, ``"{n}:min_test_accuracy"``,
``"{n}:train_accuracy_factor_{i}"``, ``"{n}:test_accuracy_factor_{i}"``; plus the summaries of
:mod:`dbench.probes.summaries` (``"{predictor}:sample_efficiency"``, ``"{predictor}:log_n_auc"``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.estimators.batched_logistic import batched_logistic_regression_cv
from dbench.estimators.exact_logistic import exact_logistic_regression_cv
from dbench.estimators.threads import single_blas_thread
from dbench.metrics._constraints import Interval, ListOf, Options
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey
from dbench.metrics._validation import check_codes, check_pair, warn_degenerate
from dbench.probes.summaries import summarize

# The declaration (the metric's MetricSpec is SPEC, at the end of this module; the registry reaches it
# through dbench.metrics._downstream_task). Keyword defaults below are read from PARAMS.
PREDICTOR_NAMES = ("logistic_regression_cv", "gradient_boosting")
LOGISTIC_SOLVERS = ("exact", "batched")

PARAMS = Params(
    n_train_sizes=Param(
        [10, 100, 1000, 10000],
        ListOf(Interval(int, 2, 1_000_000), min_length=1, max_length=20, unique=True),
        "training-set sizes of the learning curve, each drawn afresh",
        sample_size=True,
    ),
    n_test=Param(5000, Interval(int, 1, 1_000_000), "test observations per training size", sample_size=True),
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


Predictions = tuple[np.ndarray, np.ndarray]  # (train predictions (n, F), test predictions (m, F))
# Training sets from this size on are fitted on threads, one factor each: their big NumPy operations
# release the GIL. Smaller fits are Python/scipy overhead, which threads only contend for.
_THREADED_FROM = 1000


def predict_logistic_regression_cv(X_train: Any, y_train: np.ndarray, X_test: Any, params: Mapping[str, Any]) -> Predictions:
    """Labels predicted by ``LogisticRegressionCV(Cs, cv=KFold(n_folds))`` per factor.

    ``params["logistic_solver"]``: ``"exact"`` (scikit-learn's procedure, host NumPy) or ``"batched"``
    (array-API solver on the codes' backend).
    """
    if params["logistic_solver"] == "batched":
        result = batched_logistic_regression_cv(X_train, y_train, Cs=params["Cs"], n_folds=params["n_folds"])
        return result.predict(X_train), result.predict(X_test)
    # scipy's L-BFGS-B runs on the host: convert once here.
    X_train_np = np.asarray(to_numpy(X_train), dtype=np.float64)
    X_test_np = np.asarray(to_numpy(X_test), dtype=np.float64)

    def fit(i: int) -> Any:
        return exact_logistic_regression_cv(X_train_np, y_train[:, i], Cs=params["Cs"], n_folds=params["n_folds"])

    n_factors = y_train.shape[1]
    workers = min(n_factors, len(os.sched_getaffinity(0))) if X_train_np.shape[0] >= _THREADED_FROM else 1
    # Thin products: one BLAS thread each is fastest (OpenBLAS teams fight over a busy machine's cores).
    with single_blas_thread():
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                models = list(pool.map(fit, range(n_factors)))
        else:
            models = [fit(i) for i in range(n_factors)]
    train_pred = np.stack([m.predict(X_train_np) for m in models], axis=1)
    test_pred = np.stack([m.predict(X_test_np) for m in models], axis=1)
    return train_pred, test_pred


def predict_gradient_boosting(X_train: Any, y_train: np.ndarray, X_test: Any, params: Mapping[str, Any]) -> Predictions:
    """Labels predicted by scikit-learn's default ``GradientBoostingClassifier`` per factor.

    scikit-learn runs on the CPU only, so the codes are converted to host NumPy here, once. The seed
    (``random_state=0``) only fixes scikit-learn's tie-breaking between equally good splits, which is
    random in disentanglement_lib. This function is the one place to switch to a faster exact
    implementation later.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    X_train_np, X_test_np = to_numpy(X_train), to_numpy(X_test)
    train_pred = np.empty(y_train.shape, dtype=y_train.dtype)
    test_pred = np.empty((X_test_np.shape[0], y_train.shape[1]), dtype=y_train.dtype)
    for i in range(y_train.shape[1]):
        model = GradientBoostingClassifier(random_state=0).fit(X_train_np, y_train[:, i])
        train_pred[:, i] = model.predict(X_train_np)
        test_pred[:, i] = model.predict(X_test_np)
    return train_pred, test_pred


PREDICTORS: dict[str, Callable[[Any, np.ndarray, Any, Mapping[str, Any]], Predictions]] = {
    "logistic_regression_cv": predict_logistic_regression_cv,
    "gradient_boosting": predict_gradient_boosting,
}


def _fit_predict(predictor: str, X_train: Any, y_train: np.ndarray, X_test: Any, params: Mapping[str, Any]) -> Predictions:
    """Run ``predictor`` on the factors with at least two training values; a factor with a single
    training value is predicted as that value (scikit-learn would refuse to fit it) with a warning."""
    single = np.array([np.unique(y_train[:, i]).size < 2 for i in range(y_train.shape[1])])
    train_pred = np.array(y_train, copy=True)
    test_pred = np.empty((X_test.shape[0], y_train.shape[1]), dtype=y_train.dtype)
    if single.any():
        warn_degenerate(
            f"factor(s) {np.nonzero(single)[0].tolist()} take a single value in the {y_train.shape[0]} training "
            "samples; predicting that value"
        )
        test_pred[:, single] = y_train[0, single]
    if (~single).any():
        fit = PREDICTORS[predictor]
        tr, te = fit(X_train, y_train[:, ~single], X_test, params)
        train_pred[:, ~single], test_pred[:, ~single] = tr, te
    return train_pred, test_pred


def downstream_accuracies(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    predictor: str = PARAMS["predictors"].default[0],
    Cs: int = PARAMS["Cs"].default,
    n_folds: int = PARAMS["n_folds"].default,
    logistic_solver: str = PARAMS["logistic_solver"].default,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-factor train and test accuracy ``(F,)`` of ``predictor`` fitted on ``(X_train, y_train)``.

    ``X_*`` are codes ``(n, D)`` on any array backend; ``y_*`` integer factor indices ``(n, F)``.
    ``logistic_solver`` (``"exact"`` or ``"batched"``) picks the logistic-regression implementation.

    Examples
    --------
    Factor 0 is in the codes, factor 1 is not: a cross-validated logistic regression learns the first
    and stays at chance (about 1/2) on the second:

    >>> import numpy as np
    >>> from dbench.probes.downstream import downstream_accuracies
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, size=(400, 2))
    >>> X = np.stack([y[:, 0] + 0.1 * rng.normal(size=400), rng.normal(size=400)], axis=1)
    >>> train, test = downstream_accuracies(X[:200], y[:200], X[200:], y[200:])
    >>> test.round(2).tolist()
    [1.0, 0.52]
    """
    SPEC.validate({"predictors": [predictor], "Cs": Cs, "n_folds": n_folds, "logistic_solver": logistic_solver})
    # Factor labels are host-side bookkeeping (plan extras); codes stay on their backend.
    y_train_np, y_test_np = np.asarray(to_numpy(y_train)), np.asarray(to_numpy(y_test))
    check_codes(X_train, name="X_train")
    check_codes(X_test, name="X_test")
    check_pair(np.zeros((X_train.shape[0], 1)), y_train_np, codes_name="X_train", factors_name="y_train")
    check_pair(np.zeros((X_test.shape[0], 1)), y_test_np, codes_name="X_test", factors_name="y_test")
    if X_train.shape[1] != X_test.shape[1] or y_train_np.shape[1] != y_test_np.shape[1]:
        raise ValueError("train and test sets must have the same number of latents and factors")
    xp = array_namespace(X_train)
    if not xp.isdtype(X_train.dtype, "real floating"):
        X_train, X_test = xp.astype(X_train, xp.float64), xp.astype(X_test, xp.float64)
    params = {"Cs": Cs, "n_folds": n_folds, "logistic_solver": logistic_solver}
    train_pred, test_pred = _fit_predict(predictor, X_train, y_train_np, X_test, params)
    return np.mean(train_pred == y_train_np, axis=0), np.mean(test_pred == y_test_np, axis=0)


def dlib_scores(size: int, train_acc: np.ndarray, test_acc: np.ndarray) -> dict[str, float]:
    """disentanglement_lib's keys for one training size."""
    out = {
        f"{size}:mean_train_accuracy": float(np.mean(train_acc)),
        f"{size}:mean_test_accuracy": float(np.mean(test_acc)),
        f"{size}:min_train_accuracy": float(np.min(train_acc)),
        f"{size}:min_test_accuracy": float(np.min(test_acc)),
    }
    for i in range(train_acc.size):
        out[f"{size}:train_accuracy_factor_{i}"] = float(train_acc[i])
        out[f"{size}:test_accuracy_factor_{i}"] = float(test_acc[i])
    return out


def plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    """Draw, for each training size in order, a training then a test set of factor vectors (uniform).

    ``params`` are validated and complete (the spec's ``plan`` resolves them).
    """
    requests, factors = {}, {}
    for size in params["n_train_sizes"]:
        for key, count in ((f"train_{int(size)}", int(size)), (f"test_{int(size)}", int(params["n_test"]))):
            factors[key] = sample_factors(dataset, count, rng)
            requests[key] = factors_to_indices(dataset, factors[key])
    return Plan(requests=requests, extra={"factors": factors, "factor_names": list(getattr(dataset, "factor_names", []))})


def score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, float]:
    """Accuracies per predictor and training size under disentanglement_lib's keys, plus summaries."""
    out: dict[str, float] = {}
    for predictor in params["predictors"]:
        for size in params["n_train_sizes"]:
            train_key, test_key = f"train_{int(size)}", f"test_{int(size)}"
            train_acc, test_acc = downstream_accuracies(
                codes[train_key],
                plan.extra["factors"][train_key],
                codes[test_key],
                plan.extra["factors"][test_key],
                predictor=predictor,
                Cs=params["Cs"],
                n_folds=params["n_folds"],
                logistic_solver=params["logistic_solver"],
            )
            out.update({f"{predictor}:{key}": value for key, value in dlib_scores(int(size), train_acc, test_acc).items()})
    out.update(summarize(out))
    return out


def _scored(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    # The factor names label the learning-curve plot.
    return Scored(score(plan, codes, params), artifacts={"factor_names": plan.extra.get("factor_names")})


def _plot(scored: Scored, folder: Path) -> Path | None:
    from dbench.probes.plots import plot_downstream  # lazy: matplotlib only when plotting

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
    plan_fn=plan,
    score_fn=_scored,
    rules=RULES,
    plot=_plot,
)
