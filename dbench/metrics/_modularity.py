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

from dbench._array import to_numpy
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

SOLVERS = ("lbfgs", "sklearn")
# disentanglement_lib study defaults: num_train = 10000, num_test = 5000, 20 histogram bins.
PARAMS = Params(
    n_train=Param(10_000, Interval(int, 2, 1_000_000), "training samples (mutual information, logistic fits)", sample_size=True),
    n_test=Param(5_000, Interval(int, 2, 1_000_000), "test samples for explicitness_test", sample_size=True),
    n_bins=Param(20, Interval(int, 1, 1000), "equal-width histogram bins per latent for the mutual information"),
    solver=Param("lbfgs", Options(SOLVERS), "'lbfgs': scikit-learn's iterates, vectorised; 'sklearn': the estimator"),
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


_FITS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {"lbfgs": exact_logistic_regression, "sklearn": _sklearn_fit}


def explicitness(
    codes_train: Any,
    factors_train: Any,
    codes_test: Any,
    factors_test: Any,
    *,
    solver: str = PARAMS["solver"].default,
) -> tuple[float, float]:
    """Mean over factors of the macro one-vs-rest ROC AUC of a logistic regression: ``(train, test)``.

    ``solver="lbfgs"`` (default) fits with :func:`exact_logistic_regression`, ``"sklearn"`` with
    scikit-learn's estimator; both give dlib's ``LogisticRegression()`` to rounding error.
    """
    SPEC.validate({"solver": solver})
    # The optimiser (scipy's L-BFGS-B, or scikit-learn) runs on the host: convert once here.
    x_train, x_test = _standardise(to_numpy(codes_train).astype(np.float64), to_numpy(codes_test).astype(np.float64))
    y_train_all, y_test_all = to_numpy(factors_train), to_numpy(factors_test)
    train_scores, test_scores = [], []
    # The products here are (n x D) by (D x K) with D, K small: one BLAS thread is fastest, and on a busy
    # machine OpenBLAS's thread team makes them up to ~100x slower. (Threads across factors did not pay
    # on a loaded 2-core machine: the many small NumPy calls keep handing the GIL back and forth.)
    with single_blas_thread():
        for k in range(y_train_all.shape[1]):
            y_train, y_test = y_train_all[:, k], y_test_all[:, k]
            classes = np.unique(y_train)
            if classes.size < 2:
                warn_degenerate("explicitness: a factor takes a single value; it is perfectly explicit (AUC 1)")
                train_scores.append(1.0)
                test_scores.append(1.0)
                continue
            model = _FITS[solver](x_train, y_train)
            # Binary: dlib's one-hot has two columns, scored on predict_proba's two columns.
            train_scores.append(macro_roc_auc(y_train, classes, model.predict_proba(x_train)))
            test_scores.append(macro_roc_auc(y_test, classes, model.predict_proba(x_test)))
    return float(np.mean(train_scores)), float(np.mean(test_scores))


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
    solver : {"lbfgs", "sklearn"}
        How dlib's ``LogisticRegression()`` is fitted: ``"lbfgs"`` runs scikit-learn's optimiser on a
        vectorised objective (:func:`exact_logistic_regression`, same result, much faster);
        ``"sklearn"`` runs scikit-learn's estimator itself.

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
    xp = check_train_test(codes_train, factors_train, codes_test, factors_test)
    SPEC.validate({"n_bins": n_bins, "solver": solver})
    warn_if_constant_codes(xp, codes_train, "modularity_explicitness")
    mi, _ = mutual_information_codes_factors(codes_train, factors_train, n_bins)
    explicit_train, explicit_test = explicitness(
        codes_train, factors_train, codes_test, factors_test, solver=solver
    )
    return {
        "modularity": modularity_from_mutual_information(mi),
        "explicitness_train": explicit_train,
        "explicitness_test": explicit_test,
    }


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": params["n_train"], "test": params["n_test"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    (train_codes, train_factors), (test_codes, test_factors) = split_codes(plan, codes, ("train", "test"))
    return Scored(
        modularity_explicitness(
            train_codes, train_factors, test_codes, test_factors, n_bins=params["n_bins"], solver=params["solver"]
        )
    )


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
