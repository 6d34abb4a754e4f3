"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams, 2018).

Computed as disentanglement_lib's ``evaluation/metrics/dci.py`` does: for every factor, a
``GradientBoostingClassifier()`` with scikit-learn's defaults is fitted on the training codes to
predict the factor; its ``feature_importances_`` form one column of the importance matrix
``R`` (n_latents x n_factors); informativeness is the mean train / test accuracy over factors.

* disentanglement = sum_i rho_i (1 - H_F(P_i.)) with P_i. the normalised row of latent ``i``,
  ``H_F`` the entropy in base n_factors and weights ``rho_i = sum_j R_ij / sum R``;
* completeness = sum_j rho_j (1 - H_L(P_.j)) with P_.j the normalised column of factor ``j``, ``H_L``
  in base n_latents and ``rho_j = sum_i R_ij / sum R`` (= 1/n_factors since each column sums to 1).

Like disentanglement_lib, 1e-11 is added to every entry before the entropies (so an all-zero row
reads as uniform) and an all-zero matrix gets uniform weights. Quirks and deviations: docs/dci.md.

Where the trees run (``estimator="fast"``): NumPy codes are fitted by the compiled trees on the host
(:mod:`dbench.estimators.boosted_trees`), codes of any other namespace (torch, CuPy, array_api_strict)
by the array-API trees (:mod:`dbench.estimators.array_trees`) on their own device; both are the same
algorithm (docs/gpu.md gives their measured agreement). ``"numba"`` and ``"array"`` name one of them.

Reference: C. Eastwood and C. K. I. Williams, "A framework for the quantitative evaluation of
disentangled representations", ICLR 2018.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench._array import device_name, is_host_numpy, to_numpy
from dbench.datasets.base import factors_to_indices, sample_factors
from dbench.metrics._constraints import Interval, Options
from dbench.metrics._plans import plan_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import check_train_test, warn_degenerate
from dbench.plots.dci import plot_dci

_ENTROPY_OFFSET = 1e-11  # disentanglement_lib adds this to the importance matrix before entropies
ESTIMATORS = ("fast", "numba", "array", "sklearn")
# disentanglement_lib study defaults: dci.num_train = 10000, dci.num_test = 5000.
PARAMS = Params(
    n_train=Param(10_000, Interval(int, 2, 1_000_000), "training samples the boosted trees are fitted on", sample_size=True),
    n_test=Param(5_000, Interval(int, 2, 1_000_000), "test samples for informativeness_test", sample_size=True),
    estimator=Param(
        "fast",
        Options(ESTIMATORS),
        "'fast': dbench's exact trees where the codes live (compiled on NumPy, array-API on a device); "
        "'numba' / 'array': one of those; 'sklearn': scikit-learn",
    ),
    random_state=Param(0, Interval(int, 0, 2**32 - 1), "seed of scikit-learn's tie-breaking feature order"),
)


def _normalised_entropy(p: Any, axis: int, base: int) -> Any:
    """Entropy (base ``base``) of ``p`` normalised along ``axis``, as scipy.stats.entropy computes it."""
    xp = array_namespace(p)
    p = p / xp.sum(p, axis=axis, keepdims=True)
    positive = p > 0
    safe = xp.where(positive, p, xp.ones_like(p))
    terms = xp.where(positive, -p * xp.log(safe), xp.zeros_like(p))
    return xp.sum(terms, axis=axis) / math.log(base)


def _row_specificity(matrix: Any) -> float:
    """Mean over rows of ``1 - H(row) / log(n_columns)``, weighted by each row's share of the total.

    Disentanglement applies it to the importance matrix (rows = latents), completeness to its
    transpose (rows = factors): the two are the same formula from either side (Eastwood & Williams).
    """
    xp = array_namespace(matrix)
    n_columns = matrix.shape[1]
    if n_columns == 1:
        # dlib divides by log(1) and returns NaN; with one column every row is fully specific.
        per_row = xp.ones(matrix.shape[0], dtype=matrix.dtype)
    else:
        per_row = 1.0 - _normalised_entropy(matrix + _ENTROPY_OFFSET, axis=1, base=n_columns)
    weights = matrix if float(xp.sum(matrix)) != 0.0 else xp.ones_like(matrix)
    row_weight = xp.sum(weights, axis=1) / xp.sum(weights)
    return float(xp.sum(per_row * row_weight))


def disentanglement_score(importance: Any) -> float:
    """Disentanglement of an importance matrix ``(n_latents, n_factors)`` (dlib's definition)."""
    return _row_specificity(importance)


def completeness_score(importance: Any) -> float:
    """Completeness of an importance matrix ``(n_latents, n_factors)`` (dlib's definition)."""
    return _row_specificity(array_namespace(importance).matrix_transpose(importance))


class _Fitted(NamedTuple):
    """One factor's classifier: its importances (host), training-set predictions and a predict function."""

    importances: np.ndarray
    predicted_train: np.ndarray
    predict: Callable[[Any], np.ndarray]


def resolve_estimator(estimator: str, codes: Any) -> str:
    """The trees that run: ``"boosted_trees"`` (compiled, host), ``"array_trees"`` (the codes' backend)
    or ``"sklearn"``. ``"fast"`` picks by where the codes live; without numba, compiled trees become
    the array-API trees on NumPy (the same algorithm; slower)."""
    if estimator == "sklearn":
        return "sklearn"
    if estimator == "array" or (estimator == "fast" and not is_host_numpy(codes)):
        return "array_trees"
    from dbench.estimators.boosted_trees import numba_available

    if numba_available():
        return "boosted_trees"
    warnings.warn("numba is not installed; DCI runs the array-API trees on NumPy (slower)", RuntimeWarning, stacklevel=4)
    return "array_trees"


def _host_labels(predict: Callable[[Any], Any]) -> Callable[[Any], np.ndarray]:
    """``predict`` with its labels moved to the host (a backend's labels are compared with host factors)."""

    def predict_on_host(x: Any) -> np.ndarray:
        return to_numpy(predict(x))

    return predict_on_host


def _fit_factors(x_train: Any, labels: np.ndarray, estimator: str, random_state: int) -> list[_Fitted]:
    """One boosted classifier per column of ``labels`` with the resolved ``estimator`` on codes ``x_train``
    (host float64 NumPy unless the estimator is the array-API trees)."""
    if estimator == "array_trees":
        from dbench.estimators.array_trees import fit_array_trees_multi

        # Every factor's trees grow together: one pass over the codes serves all of them.
        return [
            _Fitted(trees.feature_importances, to_numpy(trees.predict_train()), _host_labels(trees.predict))
            for trees in fit_array_trees_multi(x_train, labels)
        ]
    fitted = []
    for y_train in labels.T:
        if estimator == "boosted_trees":
            from dbench.estimators.boosted_trees import fit_boosted_trees

            model = fit_boosted_trees(x_train, y_train)
            # The raw scores accumulated while fitting are exactly predict(codes_train)'s (same
            # leaves, same order of sums), so the training set is not pushed through the trees again.
            fitted.append(_Fitted(model.feature_importances, model.predict_train(), model.predict))
            continue
        from sklearn.ensemble import GradientBoostingClassifier

        # dlib uses random_state=None; a fixed seed makes the (tie-breaking) feature order reproducible.
        classifier = GradientBoostingClassifier(random_state=random_state).fit(x_train, y_train)
        fitted.append(_Fitted(np.abs(classifier.feature_importances_), classifier.predict(x_train), classifier.predict))
    return fitted


def dci_importance(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    estimator: str = PARAMS["estimator"].default,
    random_state: int = PARAMS["random_state"].default,
) -> tuple[np.ndarray, dict[str, float]]:
    """Importance matrix ``(n_latents, n_factors)`` (float64 NumPy) and the four DCI scores.

    See :func:`dci` for the parameters.
    """
    importance, scores, _ = _dci(codes_train, factors_train, codes_test, factors_test, estimator, random_state)
    return importance, scores


def _dci(
    codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, estimator: str, random_state: int
) -> tuple[np.ndarray, dict[str, float], dict[str, str]]:
    """:func:`dci_importance`, and which estimator ran on which device."""
    xp = check_train_test(codes_train, factors_train, codes_test, factors_test)
    SPEC.validate({"estimator": estimator, "random_state": random_state})
    ran = resolve_estimator(estimator, codes_train)
    # Labels are host bookkeeping; the codes stay where they are for the array-API trees (the other
    # estimators move them to the host once, below).
    y_train_all = to_numpy(factors_train).astype(np.int64)
    y_test_all = to_numpy(factors_test).astype(np.int64)
    n_latents, n_factors = codes_train.shape[1], y_train_all.shape[1]
    importance = np.zeros((n_latents, n_factors), dtype=np.float64)
    train_accuracy = np.zeros(n_factors)
    test_accuracy = np.zeros(n_factors)
    if bool(xp.all(codes_train == codes_train[:1, :])):
        warn_degenerate("codes_train is constant: no latent carries information (DCI importances are all 0)")
    if ran == "array_trees":
        x_train, x_test = codes_train, codes_test
    else:  # the compiled trees and scikit-learn run on the host: convert once at the boundary
        x_train, x_test = (to_numpy(codes).astype(np.float64) for codes in (codes_train, codes_test))
    # One classifier per factor. The compiled trees fit factors one after the other: they already
    # spread the trees of each boosting stage over all cores (factors with many classes would leave
    # threads per factor unbalanced); the array-API trees grow every factor's trees together; and
    # scikit-learn's fit is single-threaded as in dlib.
    fitted = []
    for j in range(n_factors):
        classes = np.unique(y_train_all[:, j])
        if classes.size < 2:
            # scikit-learn refuses one class; the only possible classifier predicts it and uses no latent.
            warn_degenerate(f"factor {j} takes a single value in factors_train; its importances are 0")
            train_accuracy[j] = 1.0
            test_accuracy[j] = float(np.mean(y_test_all[:, j] == classes[0]))
        else:
            fitted.append(j)
    models = _fit_factors(x_train, y_train_all[:, fitted], ran, random_state) if fitted else []
    for j, model in zip(fitted, models, strict=True):
        importance[:, j] = model.importances
        train_accuracy[j] = float(np.mean(model.predicted_train == y_train_all[:, j]))
        test_accuracy[j] = float(np.mean(model.predict(x_test) == y_test_all[:, j]))
    scores = {
        "disentanglement": disentanglement_score(importance),
        "completeness": completeness_score(importance),
        "informativeness_train": float(np.mean(train_accuracy)),
        "informativeness_test": float(np.mean(test_accuracy)),
    }
    where = device_name(codes_train) if ran == "array_trees" else "cpu"
    return importance, scores, {"estimator": ran, "device": where}


def dci(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    estimator: str = PARAMS["estimator"].default,
    random_state: int = PARAMS["random_state"].default,
) -> dict[str, float]:
    """DCI scores of codes against ground-truth factors (Eastwood & Williams, 2018; dlib's variant).

    Parameters
    ----------
    codes_train, codes_test : array (n_samples, n_latents)
        Representations, any array-API namespace: NumPy codes are fitted on the host, others where
        they live (``estimator="fast"``).
    factors_train, factors_test : array (n_samples, n_factors)
        Integer factor indices paired row by row with the codes.
    estimator : {"fast", "numba", "array", "sklearn"}
        ``"fast"``: dbench's exact re-implementation of ``GradientBoostingClassifier()`` (same
        algorithm and trees, several times faster; see docs/dci.md) where the codes live: compiled
        (``"numba"``) for NumPy codes, array-API (``"array"``) for torch, CuPy or array_api_strict codes
        (docs/gpu.md). ``"sklearn"``: scikit-learn itself, as disentanglement_lib runs it.
    random_state : int
        Seed of scikit-learn's feature order (it only breaks ties between equally good splits).

    Returns
    -------
    dict with ``disentanglement``, ``completeness``, ``informativeness_train`` and
    ``informativeness_test`` (accuracies), all Python floats.

    Examples
    --------
    >>> import numpy as np
    >>> from dbench.metrics import dci
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(400, 2))
    >>> scores = dci(factors[:300] * 1.0, factors[:300], factors[300:] * 1.0, factors[300:])
    >>> round(scores["disentanglement"], 3), round(scores["informativeness_test"], 3)
    (1.0, 1.0)
    """
    return dci_importance(
        codes_train, factors_train, codes_test, factors_test, estimator=estimator, random_state=random_state
    )[1]


def _plan(dataset: Any, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    # dlib draws the training set first, then the test set, from the same random state.
    factors_train = sample_factors(dataset, params["n_train"], rng)
    factors_test = sample_factors(dataset, params["n_test"], rng)
    return Plan(
        requests={
            "train": factors_to_indices(dataset, factors_train),
            "test": factors_to_indices(dataset, factors_test),
        },
        extra={
            "factors_train": factors_train,
            "factors_test": factors_test,
            "factor_names": list(getattr(dataset, "factor_names", [])),
        },
    )


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    # The codes stay on the backend (see resolve_estimator); the plan's factors join them there.
    xp, arrays = plan_codes(plan, codes, ("train", "test"))
    device = device_of(arrays["train"])
    importance, scores, ran = _dci(
        arrays["train"],
        xp.asarray(np.asarray(plan.extra["factors_train"]), device=device),
        arrays["test"],
        xp.asarray(np.asarray(plan.extra["factors_test"]), device=device),
        params["estimator"],
        params["random_state"],
    )
    artifacts = {"importance": importance, "factor_names": plan.extra.get("factor_names")}
    return Scored(scores, artifacts=artifacts, estimator=ran)


SPEC = MetricSpec(
    name="dci",
    description="Disentanglement, completeness, informativeness from gradient-boosted-tree importances",
    params=PARAMS,
    scores=(
        ScoreKey("disentanglement", 0.0, 1.0, True, "importance-weighted mean over latents of 1 - entropy over factors"),
        ScoreKey("completeness", 0.0, 1.0, True, "mean over factors of 1 - entropy of its importances over latents"),
        ScoreKey("informativeness_train", 0.0, 1.0, True, "mean training accuracy of the per-factor classifiers"),
        ScoreKey("informativeness_test", 0.0, 1.0, True, "mean test accuracy of the per-factor classifiers"),
    ),
    plan_fn=_plan,
    score_fn=_score,
    plot=plot_dci,
)
