"""Few-shot probes: can a simple model learn each factor from ``k`` labelled examples per class?

Protocol (after the linear-probe / k-NN few-shot evaluations used for self-supervised representations,
applied per ground-truth factor):

* A labelled **pool** of ``n_pool`` observations and a **test** set of ``n_test`` are drawn uniformly.
* For each ``k`` in ``shots`` (default 1, 5, 10, 50 and ``"all"``) and each of ``n_draws`` draws, a
  balanced training set of exactly ``k`` pool examples per value of the factor is drawn without
  replacement. ``"all"`` trains on the whole pool (one draw: it is not random given the pool).
* Probes, fitted on the codes standardised with the pool's mean and standard deviation (unlabelled
  statistics, so every ``k`` sees the same geometry):

  - ``linear``: multinomial (binomial for two values) L2 logistic regression with fixed ``C`` (default
    1.0, scikit-learn's default; cross-validation is impossible with one example per class);
  - ``knn``: k-nearest-neighbour majority vote with ``min(k, 5)`` neighbours (1-NN for k = 1, the only
    choice that does not outvote the single example of the true class; 5 otherwise and for ``"all"``);
    ties go to the lowest factor value, as in scikit-learn.

* Factors listed in ``continuous_factors`` (indices or names) are regressed instead: ``linear`` is
  ridge regression (``ridge_alpha``), ``knn`` the neighbours' mean; the score is R² on the test set,
  with the dataset's real factor values as targets.

Reported per probe, ``k`` and factor: the mean over draws, the standard deviation (ddof = 1) and a 95%
Student-t confidence interval of the mean; plus the mean over classification factors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.estimators.batched_logistic import batched_logistic_regression, encode_labels
from dbench.metrics._constraints import AnyOf, Interval, ListOf, Options, Text
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey
from dbench.metrics._validation import check_codes

# The declaration (the metric's MetricSpec is SPEC, at the end of this module; the registry reaches it
# through dbench.metrics._few_shot). Keyword defaults below are read from PARAMS.
PROBES = ("linear", "knn")

PARAMS = Params(
    shots=Param(
        [1, 5, 10, 50, "all"],
        ListOf(AnyOf(Interval(int, 1, 100_000), Options(("all",))), min_length=1, max_length=10, unique=True),
        "labelled examples per factor value ('all': the whole pool)",
    ),
    n_draws=Param(5, Interval(int, 1, 1000), "balanced training sets drawn per shot count and factor"),
    # Not a sample size for --limit: every shot count needs that many examples of each class in the pool,
    # and "all" is the whole pool, so its size is part of what the probe measures.
    n_pool=Param(10000, Interval(int, 2, 1_000_000), "labelled pool the training sets are drawn from"),
    n_test=Param(5000, Interval(int, 2, 1_000_000), "test observations", sample_size=True),
    probes=Param(
        list(PROBES), ListOf(Options(PROBES), min_length=1, max_length=len(PROBES), unique=True), "probes fitted per factor"
    ),
    C=Param(1.0, Interval(float, 0.0, 1e10, closed="right"), "inverse L2 strength of the linear probe (logistic regression)"),
    ridge_alpha=Param(
        1.0, Interval(float, 0.0, 1e10, closed="right"), "L2 strength of the ridge regression (continuous factors)"
    ),
    continuous_factors=Param(
        [],
        ListOf(AnyOf(Interval(int, 0, 1000), Text()), max_length=100),
        "factors (indices or names) regressed with R² instead of classified",
    ),
)
# Each shot count and factor keeps n_draws training sets of at most n_pool rows.
RULES = (Rule("n_draws * n_pool <= 2_000_000", "training rows drawn per shot count and factor"),)


MAX_NEIGHBOURS = 5
# The k-NN distance block of one chunk of test rows holds at most this many entries (512 rows while
# the training sets are small, fewer for large pools, so memory stays bounded at any legal size).
_KNN_BLOCK_ELEMENTS = 1 << 24
_KNN_CHUNK_ROWS = 512


def n_neighbours(shots: int | str) -> int:
    """Neighbour count of the k-NN probe for ``shots`` examples per class (1-NN for one shot)."""
    return MAX_NEIGHBOURS if shots == "all" else max(1, min(int(shots), MAX_NEIGHBOURS))


def balanced_subsets(labels: np.ndarray, shots: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``n_draws`` balanced samples of positions in ``labels``: ``shots`` per distinct value, without replacement.

    Returns int64 ``(n_draws, shots * n_values)``, grouped by value in increasing order. ValueError when
    the factor has one value or a value occurs fewer than ``shots`` times.

    Examples
    --------
    >>> import numpy as np
    >>> from dbench.probes.few_shot import balanced_subsets
    >>> labels = np.array([0, 1, 0, 1, 1, 0])
    >>> subsets = balanced_subsets(labels, 2, 3, np.random.default_rng(0))
    >>> subsets.shape, labels[subsets[0]].tolist()
    ((3, 4), [0, 0, 1, 1])
    """
    labels = np.asarray(labels)
    values, counts = np.unique(labels, return_counts=True)
    if values.size < 2:
        raise ValueError(f"the factor takes a single value ({values[0] if values.size else 'none'}); a probe cannot learn it")
    SPEC.validate({"shots": [shots], "n_draws": n_draws})
    if counts.min() < shots:
        raise ValueError(
            f"shots={shots} exceeds the smallest class (value {values[np.argmin(counts)]} occurs {counts.min()} times); "
            "lower shots or enlarge the pool (n_pool)"
        )
    members = [np.nonzero(labels == v)[0] for v in values]
    out = np.empty((n_draws, shots * values.size), dtype=np.int64)
    for d in range(n_draws):
        out[d] = np.concatenate([rng.choice(m, size=shots, replace=False) for m in members])
    return out


def _standardise(xp: Any, pool: Any, *others: Any) -> list[Any]:
    mean = xp.mean(pool, axis=0)
    std = xp.std(pool, axis=0)
    std = xp.where(std > 0, std, xp.ones_like(std))  # a constant latent stays constant (zero)
    return [(x - mean) / std for x in (pool, *others)]


def _knn_neighbours(xp: Any, train: Any, test: Any, n_nb: int, chunk: int | None = None) -> Any:
    """Indices ``(B, m, n_nb)`` of the nearest training rows (Euclidean) for each test row; ``train`` is ``(B, n, D)``.

    Neighbours come nearest first, ties to the lower training index (what a stable argsort's first
    ``n_nb`` columns give). With ``n_nb`` at most a few, ``n_nb`` rounds of argmin-and-mask replace
    the full sort of every distance row (the array API has no partial sort). Test rows are taken in
    chunks of ``chunk`` rows (by default as many as keep the ``(B, chunk, n)`` distance block below
    ``_KNN_BLOCK_ELEMENTS`` entries, at most 512).
    """
    n_nb = min(n_nb, train.shape[1])
    if chunk is None:
        chunk = max(1, min(_KNN_CHUNK_ROWS, _KNN_BLOCK_ELEMENTS // max(1, train.shape[0] * train.shape[1])))
    sq_train = xp.sum(train * train, axis=-1)  # (B, n)
    columns = xp.arange(train.shape[1], device=getattr(train, "device", None))
    parts = []
    for start in range(0, test.shape[0], chunk):
        block = test[start : min(start + chunk, test.shape[0]), ...]
        d2 = sq_train[:, None, :] - 2.0 * (block @ xp.matrix_transpose(train))  # |a|^2 is constant per row
        nearest = []
        for _ in range(n_nb):
            index = xp.argmin(d2, axis=-1)  # first occurrence of the minimum: the lower index on ties
            nearest.append(index)
            d2 = xp.where(columns == index[..., None], xp.inf, d2)
        parts.append(xp.stack(nearest, axis=-1))
    return xp.concat(parts, axis=1)


def _knn_classify(xp: Any, train: Any, labels: Any, test: Any, n_nb: int, n_classes: int) -> Any:
    """Majority vote of the ``n_nb`` nearest neighbours; ties go to the lowest label. Returns ``(B, m)``."""
    idx = _knn_neighbours(xp, train, test, n_nb)
    batch, m, _ = idx.shape
    flat = xp.reshape(idx, (batch, m * n_nb))
    votes = xp.reshape(xp.take_along_axis(labels, flat, axis=1), (batch, m, n_nb))
    classes = xp.arange(n_classes, device=getattr(train, "device", None))
    counts = xp.sum(xp.astype(votes[..., None] == classes, xp.int64), axis=2)  # (B, m, K)
    return xp.argmax(counts, axis=-1)


def _knn_regress(xp: Any, train: Any, targets: Any, test: Any, n_nb: int) -> Any:
    idx = _knn_neighbours(xp, train, test, n_nb)
    batch, m, _ = idx.shape
    values = xp.take_along_axis(targets, xp.reshape(idx, (batch, m * n_nb)), axis=1)
    return xp.mean(xp.reshape(values, (batch, m, n_nb)), axis=-1)


def _ridge_predict(xp: Any, train: Any, targets: Any, test: Any, alpha: float) -> Any:
    """Ridge regression with an unpenalised intercept (centred closed form), batched over ``B``."""
    x_mean = xp.mean(train, axis=1, keepdims=True)
    y_mean = xp.mean(targets, axis=1, keepdims=True)
    Xc, yc = train - x_mean, targets - y_mean
    d = train.shape[-1]
    eye = xp.eye(d, dtype=train.dtype, device=getattr(train, "device", None))
    gram = xp.matrix_transpose(Xc) @ Xc + alpha * eye
    w = xp.linalg.solve(gram, (xp.matrix_transpose(Xc) @ yc[..., None]))  # (B, D, 1)
    return (test @ w)[..., 0] - (x_mean @ w)[..., 0] + y_mean


def _r2(xp: Any, predicted: Any, truth: Any) -> Any:
    ss_res = xp.sum((predicted - truth[None, :]) ** 2, axis=-1)
    ss_tot = xp.sum((truth - xp.mean(truth)) ** 2)
    return 1.0 - ss_res / ss_tot


def probe_scores(
    pool_codes: Any,
    pool_labels: np.ndarray,
    test_codes: Any,
    test_labels: np.ndarray,
    subsets: np.ndarray | None,
    *,
    probe: str,
    n_nb: int,
    C: float = PARAMS["C"].default,
    continuous: bool = False,
    ridge_alpha: float = PARAMS["ridge_alpha"].default,
) -> np.ndarray:
    """Test score per draw ``(n_draws,)`` of one probe on one factor (pure maths, any backend).

    ``pool_codes``/``test_codes`` are standardised codes; ``subsets`` ``(n_draws, m)`` are pool rows
    (``None``: the whole pool, one draw); labels are integer factor indices, or real factor values
    when ``continuous``. Classification returns accuracy, regression R².

    Examples
    --------
    One shot per class, two draws, a 1-NN probe on codes that are the factor plus a little noise:

    >>> import numpy as np
    >>> from dbench.probes.few_shot import balanced_subsets, probe_scores
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, size=300)
    >>> codes = labels[:, None] + 0.1 * rng.normal(size=(300, 1))
    >>> subsets = balanced_subsets(labels[:200], 1, 2, rng)
    >>> probe_scores(codes[:200], labels[:200], codes[200:], labels[200:], subsets, probe="knn", n_nb=1).tolist()
    [1.0, 1.0]
    """
    SPEC.validate({"probes": [probe], "C": C, "ridge_alpha": ridge_alpha})
    xp = array_namespace(pool_codes, test_codes)
    device = getattr(pool_codes, "device", None)
    if subsets is None:
        subsets = np.arange(pool_codes.shape[0])[None, :]
    n_draws, m = subsets.shape
    rows = xp.asarray(subsets.ravel(), device=device)
    train = xp.reshape(xp.take(pool_codes, rows, axis=0), (n_draws, m, pool_codes.shape[1]))
    labels = np.asarray(pool_labels)[subsets]  # (n_draws, m)
    if continuous:
        targets = xp.asarray(labels, dtype=pool_codes.dtype, device=device)
        truth = xp.asarray(np.asarray(test_labels, dtype=np.float64), dtype=pool_codes.dtype, device=device)
        if probe == "linear":
            predicted = _ridge_predict(xp, train, targets, test_codes, ridge_alpha)
        else:
            predicted = _knn_regress(xp, train, targets, test_codes, n_nb)
        return np.asarray(_to_host(_r2(xp, predicted, truth)), dtype=np.float64)

    per_column, _ = encode_labels(labels.reshape(-1, 1))
    classes = per_column[0]
    encoded = np.searchsorted(classes, labels)
    y = xp.asarray(encoded, device=device)
    if probe == "linear":
        fit = batched_logistic_regression(train, y, C=C, n_classes=classes.size)
        predicted = _to_host(fit.predict(test_codes))
    else:
        predicted = _to_host(_knn_classify(xp, train, y, test_codes, n_nb, classes.size))
    return np.mean(classes[predicted] == np.asarray(test_labels)[None, :], axis=1)


def _to_host(x: Any) -> np.ndarray:
    from dbench._array import to_numpy

    return np.asarray(to_numpy(x))


def spread(values: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Mean, standard deviation (ddof = 1) and Student-t confidence interval of the mean over draws.

    Examples
    --------
    >>> from dbench.probes.few_shot import spread
    >>> {key: round(value, 3) for key, value in spread([0.5, 0.7, 0.6]).items()}
    {'mean': 0.6, 'std': 0.1, 'ci95_low': 0.352, 'ci95_high': 0.848}
    """
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(np.mean(values))
    if values.size < 2:
        return {"mean": mean, "std": 0.0, "ci95_low": mean, "ci95_high": mean}
    std = float(np.std(values, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * std / np.sqrt(values.size))
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}


def _resolve_continuous(continuous: Sequence[Any], factor_names: Sequence[str]) -> set[int]:
    out = set()
    for item in continuous:
        if isinstance(item, str):
            if item not in factor_names:
                raise ValueError(f"continuous_factors names unknown factor {item!r}; factors: {', '.join(factor_names)}")
            out.add(list(factor_names).index(item))
        else:
            if not 0 <= int(item) < len(factor_names):
                raise ValueError(f"continuous_factors index {item} out of range for {len(factor_names)} factors")
            out.add(int(item))
    return out


def plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    """Draw the pool and the test set, then every balanced training subset (all randomness is here).

    ``params`` are validated and complete (the spec's ``plan`` resolves them).
    """
    for i, size in enumerate(dataset.factor_sizes):
        if size < 2:
            raise ValueError(
                f"factor {dataset.factor_names[i]!r} has a single value; a probe cannot learn it "
                "(use a dataset view without constant factors)"
            )
    continuous = _resolve_continuous(params["continuous_factors"], dataset.factor_names)
    pool = sample_factors(dataset, int(params["n_pool"]), rng)
    test = sample_factors(dataset, int(params["n_test"]), rng)
    subsets: dict[str, np.ndarray] = {}
    for k in params["shots"]:
        if k == "all":
            continue
        for i in range(pool.shape[1]):
            subsets[f"{k}:{i}"] = balanced_subsets(pool[:, i], int(k), int(params["n_draws"]), rng)
    extra = {"pool_factors": pool, "test_factors": test, "subsets": subsets, "continuous": sorted(continuous),
             "factor_names": list(dataset.factor_names)}
    if continuous:
        extra["pool_values"] = np.asarray(dataset.factor_values(pool), dtype=np.float64)
        extra["test_values"] = np.asarray(dataset.factor_values(test), dtype=np.float64)
    return Plan(requests={"pool": factors_to_indices(dataset, pool), "test": factors_to_indices(dataset, test)}, extra=extra)


def score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, float]:
    """Per probe, shots and factor: mean / std / 95% CI over draws of test accuracy (R² if continuous)."""
    pool_codes = check_codes(codes["pool"], name="codes['pool']")
    test_codes = check_codes(codes["test"], name="codes['test']")
    xp = array_namespace(pool_codes, test_codes)
    if not xp.isdtype(pool_codes.dtype, "real floating"):
        pool_codes, test_codes = xp.astype(pool_codes, xp.float64), xp.astype(test_codes, xp.float64)
    pool_codes, test_codes = _standardise(xp, pool_codes, test_codes)
    pool_f, test_f = plan.extra["pool_factors"], plan.extra["test_factors"]
    continuous = set(plan.extra["continuous"])
    out: dict[str, float] = {}
    for probe in params["probes"]:
        for k in params["shots"]:
            per_draw_class = []
            for i in range(pool_f.shape[1]):
                is_cont = i in continuous
                pool_y = plan.extra["pool_values"][:, i] if is_cont else pool_f[:, i]
                test_y = plan.extra["test_values"][:, i] if is_cont else test_f[:, i]
                subsets = None if k == "all" else plan.extra["subsets"][f"{k}:{i}"]
                values = probe_scores(
                    pool_codes, pool_y, test_codes, test_y, subsets,
                    probe=probe, n_nb=n_neighbours(k), C=params["C"], continuous=is_cont, ridge_alpha=params["ridge_alpha"],
                )
                name = "r2" if is_cont else "accuracy"
                for stat, value in spread(values).items():
                    suffix = "" if stat == "mean" else f":{stat}"
                    out[f"{probe}:{k}:{name}_factor_{i}{suffix}"] = value
                if not is_cont:
                    per_draw_class.append(values)
            if per_draw_class:
                mean_per_draw = np.mean(np.stack(per_draw_class), axis=0)
                for stat, value in spread(mean_per_draw).items():
                    suffix = "" if stat == "mean" else f":{stat}"
                    out[f"{probe}:{k}:mean_accuracy{suffix}"] = value
    return out


def _scored(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    artifacts = {"factor_names": plan.extra.get("factor_names"), "n_pool": int(params["n_pool"])}
    return Scored(score(plan, codes, params), artifacts=artifacts)


def _plot(scored: Scored, folder: Path) -> Path | None:
    from dbench.probes.plots import plot_few_shot  # lazy: matplotlib only when plotting

    return plot_few_shot(scored, folder)


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
    plan_fn=plan,
    score_fn=_scored,
    rules=RULES,
    plot=_plot,
)
