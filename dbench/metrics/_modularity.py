"""Modularity and explicitness (Ridgeway & Mozer 2018), as computed by disentanglement_lib.

*Modularity*: each latent should carry information about at most one factor. From the discrete mutual
information matrix ``m`` (latents x factors, 20-bin histograms, nats) each latent gets
``1 - (sum_k m_jk^2 - max_k m_jk^2) / (max_k m_jk^2 * (K - 1))``; a latent with no information scores 0;
modularity is the mean over latents.

*Explicitness*: per factor, a logistic regression from all (standardised) latents to the factor's
value; the score is the one-vs-rest ROC AUC of its predicted probabilities, averaged over the factor's
classes (macro), then over factors; reported on the training and the test set.

disentanglement_lib (``evaluation/metrics/modularity_explicitness.py``) details kept here:
standardisation with the training mean and population standard deviation; scikit-learn's
``LogisticRegression()`` with its defaults (``C=1``, lbfgs, multinomial for more than two classes,
``max_iter=100``); AUC of ``predict_proba`` against a one-hot of the labels, macro-averaged.

Speed: scikit-learn's fit is reproduced step for step by :func:`exact_logistic_regression` (scipy's
L-BFGS-B, the optimiser scikit-learn calls, on the same objective evaluated with vectorised NumPy), so
the 100-iteration iterate dlib reports is the same; ``solver="sklearn"`` runs scikit-learn itself.

Where the fits run (``solver="lbfgs"``): NumPy codes get that exact host fit; codes of another
namespace (torch, CuPy, array_api_strict) get every factor's regression solved together to the
optimum on their own device (:mod:`dbench.estimators.device_logistic`; agreement in docs/gpu.md).
``"exact"`` and ``"batched"`` name one of the two whatever the codes.

References
----------
Ridgeway, Mozer. Learning Deep Disentangled Embeddings With the F-Statistic Loss. NeurIPS 2018.
https://arxiv.org/abs/1802.05312
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import device_name, is_host_numpy, to_numpy
from dbench.datasets.base import GroundTruthDataset
from dbench.estimators.exact_logistic import exact_logistic_regression
from dbench.estimators.threads import single_blas_thread
from dbench.metrics._constraints import Interval, Options
from dbench.metrics._discretize import mutual_information_codes_factors
from dbench.metrics._plans import plan_factor_samples, split_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import (
    check_train_test,
    warn_degenerate,
    warn_if_constant_codes,
)

SOLVERS = ("lbfgs", "exact", "batched", "sklearn")
# disentanglement_lib study defaults: num_train = 10000, num_test = 5000, 20 histogram bins.
PARAMS = Params(
    n_train=Param(10_000, Interval(int, 2, 1_000_000), "training samples (mutual information, logistic fits)", sample_size=True),
    n_test=Param(5_000, Interval(int, 2, 1_000_000), "test samples for explicitness_test", sample_size=True),
    n_bins=Param(20, Interval(int, 1, 1000), "equal-width histogram bins per latent for the mutual information"),
    solver=Param(
        "lbfgs",
        Options(SOLVERS),
        "'lbfgs': scikit-learn's iterates on NumPy codes, the optimum on a device; "
        "'exact' / 'batched': one of those; 'sklearn': the estimator",
    ),
)
# dlib calls LogisticRegression() with no arguments: scikit-learn's defaults.
LOGISTIC_C = 1.0
LOGISTIC_MAX_ITER = 100
LOGISTIC_TOL = 1e-4


def modularity_from_mutual_information(mutual_information: Any) -> float:
    """Modularity (mean over latents) of a mutual-information matrix ``(n_latents, n_factors)``.

    With a single factor every informative latent is trivially modular (score 1; dlib divides 0 by 0).
    """
    xp = array_namespace(mutual_information)
    squared = mutual_information**2
    largest = xp.max(squared, axis=1)
    n_factors = squared.shape[1]
    informative = largest > 0
    if n_factors == 1:
        warn_degenerate("modularity: a single factor; every informative latent is modular by definition")
        per_latent = xp.astype(informative, squared.dtype)
    else:
        deviation = (xp.sum(squared, axis=1) - largest) / (xp.where(informative, largest, 1.0) * (n_factors - 1))
        per_latent = xp.where(informative, 1.0 - deviation, xp.zeros_like(largest))
    return float(xp.mean(per_latent))


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``normalize_data``: training mean and population std; a constant latent is only centred."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    if np.any(std == 0):
        # dlib divides by zero here and scikit-learn then rejects the NaNs; a centred constant is 0.
        warn_degenerate("explicitness: constant latent(s) carry no information; they are centred, not scaled")
        std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (test - mean) / std


def macro_roc_auc(labels: np.ndarray, classes: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean over ``classes`` of the one-vs-rest ROC AUC of ``probabilities[:, k]`` for ``labels == classes[k]``.

    ``classes`` sorted ascending (as ``np.unique`` returns them). Ties share their average rank (as
    ``sklearn.metrics.roc_auc_score``). Classes absent from ``labels`` (or making up all of it) have no AUC
    and are skipped with a warning; dlib fails there.

    The AUC is the Mann-Whitney statistic: the summed ranks of the positives within the class's column.
    Each sample is a positive of at most one class, so after one sort of every column (all columns in
    one call) the positives' average ranks come from two binary searches per sample.
    """
    slot = np.minimum(np.searchsorted(classes, labels), classes.size - 1)
    known = classes[slot] == labels  # test labels never seen in training are negatives everywhere
    n_pos = np.bincount(slot[known], minlength=classes.size)
    n_neg = labels.shape[0] - n_pos
    defined = (n_pos > 0) & (n_neg > 0)
    if not np.all(defined):
        warn_degenerate(f"explicitness: {int((~defined).sum())} class(es) absent from one split have no ROC AUC; skipped")
    if not np.any(defined):
        return 0.5
    # Samples grouped by class: class k's positives are by_class[starts[k]:starts[k + 1]].
    by_class = np.argsort(np.where(known, slot, classes.size), kind="stable")
    starts = np.concatenate([[0], np.cumsum(n_pos)])
    sorted_columns = np.sort(np.ascontiguousarray(probabilities.T[defined]), axis=1)
    aucs = []
    for row, k in enumerate(np.flatnonzero(defined)):
        # Sorted queries make the binary searches walk the column in order (cache-friendly).
        own = np.sort(probabilities[by_class[starts[k] : starts[k + 1]], k])
        below = np.searchsorted(sorted_columns[row], own, side="left")
        up_to = np.searchsorted(sorted_columns[row], own, side="right")
        # Average 1-based rank of a value is (below + up_to + 1) / 2; summed exactly in integers.
        rank_sum = np.sum(below + up_to + 1) / 2.0
        pos, neg = n_pos[k], n_neg[k]
        aucs.append((rank_sum - pos * (pos + 1) / 2.0) / (pos * neg))
    return float(np.mean(aucs))


def _sklearn_fit(x_train: np.ndarray, y_train: np.ndarray) -> Any:
    """dlib's estimator itself: ``sklearn.linear_model.LogisticRegression()`` fitted on one factor."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LOGISTIC_C, max_iter=LOGISTIC_MAX_ITER, tol=LOGISTIC_TOL).fit(x_train, y_train)


_FITS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {"exact": exact_logistic_regression, "sklearn": _sklearn_fit}


def resolve_solver(solver: str, codes: Any) -> str:
    """The fit that runs: ``"exact"`` (host), ``"batched"`` (the codes' backend) or ``"sklearn"``."""
    if solver == "lbfgs":
        return "exact" if is_host_numpy(codes) else "batched"
    return solver


def explicitness(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    solver: str = PARAMS["solver"].default,
) -> tuple[float, float]:
    """Mean over factors of the macro one-vs-rest ROC AUC of a logistic regression: ``(train, test)``.

    ``solver="lbfgs"`` (default) fits NumPy codes with :func:`exact_logistic_regression` and codes on
    another backend with the batched solver there; ``"exact"``, ``"batched"`` and ``"sklearn"`` (scikit-learn's
    estimator) name one fit. The exact fits give dlib's ``LogisticRegression()`` to rounding error.
    """
    train, test, _ = _explicitness(codes_train, factors_train, codes_test, factors_test, solver)
    return train, test


def _explicitness(
    codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, solver: str
) -> tuple[float, float, dict[str, str]]:
    """:func:`explicitness`, and which estimator ran on which device."""
    SPEC.validate({"solver": solver})
    ran = resolve_solver(solver, codes_train)
    y_train_all, y_test_all = to_numpy(factors_train), to_numpy(factors_test)
    fitted = []
    train_scores, test_scores = np.ones(y_train_all.shape[1]), np.ones(y_train_all.shape[1])
    for k in range(y_train_all.shape[1]):
        if np.unique(y_train_all[:, k]).size < 2:
            warn_degenerate("explicitness: a factor takes a single value; it is perfectly explicit (AUC 1)")
        else:
            fitted.append(k)
    if fitted and ran == "batched":
        aucs = _batched_aucs(codes_train, codes_test, y_train_all[:, fitted], y_test_all[:, fitted])
    elif fitted:
        aucs = _host_aucs(codes_train, codes_test, y_train_all[:, fitted], y_test_all[:, fitted], ran)
    for k, (train_auc, test_auc) in zip(fitted, aucs if fitted else [], strict=True):
        train_scores[k], test_scores[k] = train_auc, test_auc
    where = device_name(codes_train) if ran == "batched" else "cpu"
    estimator = {"exact": "exact_logistic", "batched": "batched_logistic", "sklearn": "sklearn"}[ran]
    return float(np.mean(train_scores)), float(np.mean(test_scores)), {"estimator": estimator, "device": where}


def _host_aucs(
    codes_train: Any, codes_test: Any, y_train: np.ndarray, y_test: np.ndarray, solver: str
) -> list[tuple[float, float]]:
    """Per factor, the train and test macro AUC of a host fit (scikit-learn's iterates or scikit-learn)."""
    # The optimiser (scipy's L-BFGS-B, or scikit-learn) runs on the host: convert once here.
    x_train, x_test = _standardise(to_numpy(codes_train).astype(np.float64), to_numpy(codes_test).astype(np.float64))
    aucs = []
    # The products here are (n x D) by (D x K) with D, K small: one BLAS thread is fastest, and on a busy
    # machine OpenBLAS's thread team makes them up to ~100x slower. (Threads across factors did not pay
    # on a loaded 2-core machine: the many small NumPy calls keep handing the GIL back and forth.)
    with single_blas_thread():
        for k in range(y_train.shape[1]):
            classes = np.unique(y_train[:, k])
            model = _FITS[solver](x_train, y_train[:, k])
            # Binary: dlib's one-hot has two columns, scored on predict_proba's two columns.
            aucs.append((
                macro_roc_auc(y_train[:, k], classes, model.predict_proba(x_train)),
                macro_roc_auc(y_test[:, k], classes, model.predict_proba(x_test)),
            ))
    return aucs


def _batched_aucs(
    codes_train: Any, codes_test: Any, y_train: np.ndarray, y_test: np.ndarray
) -> list[tuple[float, float]]:
    """Per factor, the train and test macro AUC of regressions fitted together on the codes' backend.

    Standardisation and the fits run on the device; only the predicted probabilities ``(n, K)`` per
    factor come to the host for the rank statistics.
    """
    from dbench.estimators.device_logistic import fit_logistic_on_backend

    xp = array_namespace(codes_train)
    x_train, x_test = xp.astype(codes_train, xp.float64), xp.astype(codes_test, xp.float64)
    mean, std = xp.mean(x_train, axis=0), xp.std(x_train, axis=0)
    if bool(xp.any(std == 0)):
        warn_degenerate("explicitness: constant latent(s) carry no information; they are centred, not scaled")
        std = xp.where(std == 0, 1.0, std)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    model = fit_logistic_on_backend(x_train, y_train)
    train_proba, test_proba = to_numpy(model.predict_proba(x_train)), to_numpy(model.predict_proba(x_test))
    aucs = []
    for k, classes in enumerate(model.classes):
        aucs.append((
            macro_roc_auc(y_train[:, k], classes, train_proba[k, :, : classes.size]),
            macro_roc_auc(y_test[:, k], classes, test_proba[k, :, : classes.size]),
        ))
    return aucs


def modularity_explicitness(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    n_bins: int = PARAMS["n_bins"].default,
    solver: str = PARAMS["solver"].default,
) -> dict[str, float]:
    """Modularity (from training codes) and explicitness on the training and test sets.

    Parameters
    ----------
    codes_train, codes_test : arrays (n, n_latents)
    factors_train, factors_test : integer arrays (n, n_factors)
    n_bins : int
        Histogram bins per latent for the mutual information (dlib: 20).
    solver : {"lbfgs", "exact", "batched", "sklearn"}
        How dlib's ``LogisticRegression()`` is fitted. ``"exact"`` runs scikit-learn's optimiser on a
        vectorised objective on the host (:func:`exact_logistic_regression`, same result, much faster);
        ``"batched"`` solves every factor's objective to its optimum on the codes' backend;
        ``"lbfgs"`` (default) is ``"exact"`` for NumPy codes and ``"batched"`` for codes on another
        backend; ``"sklearn"`` runs scikit-learn's estimator itself.

    Returns
    -------
    dict
        ``modularity``, ``explicitness_train``, ``explicitness_test``, each in ``[0, 1]``.

    Examples
    --------
    Each latent follows one factor: perfectly modular in the limit, and every factor is read off
    the codes by a linear model (AUC near 1):

    >>> import numpy as np
    >>> from dbench.metrics import modularity_explicitness
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 3, size=(600, 2))
    >>> codes = factors + 0.1 * rng.normal(size=(600, 2))
    >>> scores = modularity_explicitness(codes[:400], factors[:400], codes[400:], factors[400:])
    >>> {key: round(value, 2) for key, value in scores.items()}
    {'modularity': 1.0, 'explicitness_train': 1.0, 'explicitness_test': 1.0}
    """
    return _modularity_explicitness(codes_train, factors_train, codes_test, factors_test, n_bins, solver)[0]


def _modularity_explicitness(
    codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, n_bins: int, solver: str
) -> tuple[dict[str, float], dict[str, str]]:
    """:func:`modularity_explicitness`, and which estimator ran on which device."""
    xp = check_train_test(codes_train, factors_train, codes_test, factors_test)
    SPEC.validate({"n_bins": n_bins, "solver": solver})
    warn_if_constant_codes(xp, codes_train, "modularity_explicitness")
    mi, _ = mutual_information_codes_factors(codes_train, factors_train, n_bins)
    explicit_train, explicit_test, ran = _explicitness(codes_train, factors_train, codes_test, factors_test, solver)
    scores = {
        "modularity": modularity_from_mutual_information(mi),
        "explicitness_train": explicit_train,
        "explicitness_test": explicit_test,
    }
    return scores, ran


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": params["n_train"], "test": params["n_test"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    (train_codes, train_factors), (test_codes, test_factors) = split_codes(plan, codes, ("train", "test"))
    scores, ran = _modularity_explicitness(
        train_codes, train_factors, test_codes, test_factors, params["n_bins"], params["solver"]
    )
    return Scored(scores, estimator=ran)


SPEC = MetricSpec(
    name="modularity_explicitness",
    description="Modularity and explicitness (Ridgeway & Mozer 2018): MI-based modularity, logistic-regression AUC",
    params=PARAMS,
    scores=(
        ScoreKey("modularity", 0.0, 1.0, True, "mean over latents of how much of its information is about one factor"),
        ScoreKey("explicitness_train", 0.0, 1.0, True, "macro ROC AUC of per-factor logistic regressions, training set"),
        ScoreKey("explicitness_test", 0.0, 1.0, True, "macro ROC AUC of per-factor logistic regressions, test set"),
    ),
    plan_fn=_plan,
    score_fn=_score,
)
