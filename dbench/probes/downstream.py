"""Downstream classification task (disentanglement_lib's ``downstream_task``, Locatello et al., 2019).

For each training size ``n`` (default 10, 100, 1000, 10 000) a fresh training set of ``n`` and a test
set of ``n_test`` (5000) observations are drawn; for every factor a classifier is fitted on the codes
and its accuracy on both sets is reported. Two predictors, as in the study's two metric configs:

* ``logistic_regression_cv``: ``LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))``. By default
  (``logistic_solver="exact"``) scikit-learn's own procedure and optimiser on a vectorised objective
  (:func:`dbench.estimators.logistic_lbfgs.logistic_regression_cv_exact`, host NumPy): the same chosen
  ``C`` and iterates as scikit-learn. ``logistic_solver="batched"`` solves all factors, folds and ``C``
  values at once on the codes' backend (:mod:`dbench.estimators.logistic`; CuPy/torch), agreeing with
  scikit-learn's accuracies to ~1e-3;
* ``gradient_boosting``: ``GradientBoostingClassifier()`` with scikit-learn's defaults (CPU).

Keys are ``"{predictor}:{dlib key}"`` with disentanglement_lib's keys ``"{n}:mean_train_accuracy"``,
``"{n}:mean_test_accuracy"``, ``"{n}:min_train_accuracy"``, ``"{n}:min_test_accuracy"``,
``"{n}:train_accuracy_factor_{i}"``, ``"{n}:test_accuracy_factor_{i}"``; plus the summaries of
:mod:`dbench.probes.summaries` (``"{predictor}:sample_efficiency"``, ``"{predictor}:log_n_auc"``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.estimators.logistic import logistic_regression_cv
from dbench.estimators.logistic_lbfgs import (
    logistic_regression_cv_exact,
    single_blas_thread,
)
from dbench.metrics._downstream_task import PARAMS, SPEC
from dbench.metrics._spec import Plan
from dbench.metrics._validation import check_codes, check_pair, warn_degenerate
from dbench.probes.summaries import summarize

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
        result = logistic_regression_cv(X_train, y_train, Cs=params["Cs"], n_folds=params["n_folds"])
        return result.predict(X_train), result.predict(X_test)
    # scipy's L-BFGS-B runs on the host: convert once here.
    X_train_np = np.asarray(to_numpy(X_train), dtype=np.float64)
    X_test_np = np.asarray(to_numpy(X_test), dtype=np.float64)

    def fit(i: int) -> Any:
        return logistic_regression_cv_exact(X_train_np, y_train[:, i], Cs=params["Cs"], n_folds=params["n_folds"])

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

