"""What the dlib protocol costs in disentanglement_lib, against dbench, for one encoder, in one run.

disentanglement_lib's cost = its **encoder calls** (counted from its published defaults:
:func:`dlib_encoder_calls`) times this encoder's measured cost per image (rendering included, in
dlib's batches of 64), plus its **metric time** on codes of the same encoder: every metric's
published algorithm run as dlib runs it (scikit-learn's ``LogisticRegression``,
``GradientBoostingClassifier``, ``LinearSVC``, ``LogisticRegressionCV`` and NumPy loops, one estimator
per factor / latent / size: :data:`DLIB_METRICS`). dbench's cost is ``dbench.evaluate(encoder,
protocol="dlib", representation="mean")`` in the same run, with its stage breakdown.

    PYTHONPATH=$PWD python benchmarks/dlib_cost.py examples/torch_cnn_encoder.py
    PYTHONPATH=$PWD python benchmarks/dlib_cost.py examples/numpy_encoder.py --limit 0.1   # a quick look

``--limit`` scales every sample size on both sides (as ``dbench evaluate --limit``); the issue's
numbers are at ``--limit 1`` (the default): tens of minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

FACTOR_BATCH = 64  # dlib's batch_size of the Higgins and FactorVAE scores (unsupervised_study_v1)


def dlib_encoder_calls(limit: float = 1.0) -> dict[str, int]:
    """Images disentanglement_lib encodes per metric at its published defaults (scaled by ``limit``).

    At ``limit=1``: 1,920,000 (Higgins), 970,000 (FactorVAE), 62,220 (downstream), 75,000 for the six
    array metrics: 3,027,220 in all.

    dlib encodes every sampled observation, duplicates included; the downstream task runs once per
    predictor config (two), each drawing its own training and test sets.
    """

    def n(x: int) -> int:
        return max(1, round(x * limit))

    downstream_one = sum(n(s) for s in (10, 100, 1000, 10000)) + 4 * n(5000)
    return {
        "beta_vae": (n(10000) + n(5000)) * 2 * FACTOR_BATCH,
        "factor_vae": n(10000) + (n(10000) + n(5000)) * FACTOR_BATCH,
        "mig": n(10000),
        "dci": n(10000) + n(5000),
        "sap": n(10000) + n(5000),
        "modularity_explicitness": n(10000) + n(5000),
        "irs": n(10000),
        "unsupervised": n(10000),
        "downstream_task": 2 * downstream_one,
    }


# --- disentanglement_lib's metric algorithms on given codes (the work it does, its estimators) ---
def _discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        out[:, j] = np.digitize(codes[:, j], np.histogram(codes[:, j], bins)[1][:-1])
    return out


def _mutual_info(discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    from sklearn.metrics import mutual_info_score

    n_codes, n_factors = discrete.shape[1], factors.shape[1]
    return np.array([[mutual_info_score(factors[:, k], discrete[:, j]) for k in range(n_factors)] for j in range(n_codes)])


def dlib_beta_vae(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    from sklearn.linear_model import LogisticRegression

    def points(count: int) -> tuple[np.ndarray, np.ndarray]:
        feats, labels = [], []
        for _ in range(count):  # dlib: one point at a time
            k = int(pool.rng.integers(n_factors))
            a, b = pool(FACTOR_BATCH, fixed=k, pair=True)
            feats.append(np.mean(np.abs(a - b), axis=0))
            labels.append(k)
        return np.array(feats), np.array(labels)

    x, y = points(s(10000))
    xe, ye = points(s(5000))
    model = LogisticRegression().fit(x, y)
    model.score(x, y), model.score(xe, ye)


def dlib_factor_vae(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    codes, _ = pool(s(10000))
    global_var = np.var(codes, axis=0, ddof=1)
    active = np.sqrt(global_var) >= 0.05
    if not active.any():
        return
    for count in (s(10000), s(5000)):
        votes = np.zeros((n_factors, codes.shape[1]), dtype=np.int64)
        for _ in range(count):
            k = int(pool.rng.integers(n_factors))
            batch, _ = pool(FACTOR_BATCH, fixed=k)
            local = np.var(batch, axis=0, ddof=1)
            votes[k, np.argmin(local[active] / global_var[active])] += 1
        np.argmax(votes, axis=0)


def dlib_mig(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    codes, factors = pool(s(10000))
    m = _mutual_info(_discretize(codes), factors)
    entropy = np.array([_mutual_info(factors[:, [k]], factors[:, [k]])[0, 0] for k in range(n_factors)])
    sorted_m = np.sort(m, axis=0)[::-1]
    np.mean((sorted_m[0] - sorted_m[1]) / entropy)


def dlib_dci(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    x, y = pool(s(10000))
    xt, yt = pool(s(5000))
    for k in range(n_factors):
        model = GradientBoostingClassifier().fit(x, y[:, k])
        model.feature_importances_, np.mean(model.predict(x) == y[:, k]), np.mean(model.predict(xt) == yt[:, k])


def dlib_sap(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    from sklearn.svm import LinearSVC

    x, y = pool(s(10000))
    xt, yt = pool(s(5000))
    for j in range(x.shape[1]):
        for k in range(n_factors):
            model = LinearSVC(C=0.01, class_weight="balanced").fit(x[:, [j]], y[:, k])
            np.mean(model.predict(xt[:, [j]]) == yt[:, k])


def dlib_modularity_explicitness(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MultiLabelBinarizer

    x, y = pool(s(10000))
    xt, yt = pool(s(5000))
    _mutual_info(_discretize(x), y)
    for k in range(n_factors):
        model = LogisticRegression().fit(x, y[:, k])
        binarizer = MultiLabelBinarizer().fit([[v] for v in np.unique(y[:, k])])
        for xs, ys in ((x, y[:, k]), (xt, yt[:, k])):
            roc_auc_score(binarizer.transform([[v] for v in ys]), model.predict_proba(xs))


def dlib_irs(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    codes, factors = pool(s(10000))
    for k in range(n_factors):
        for value in np.unique(factors[:, k]):
            sub = codes[factors[:, k] == value]
            np.max(np.abs(sub - np.mean(sub, axis=0)), axis=0)


def dlib_unsupervised(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    import scipy.linalg

    codes, _ = pool(s(10000))
    cov = np.cov(codes.T)
    np.linalg.slogdet(cov)
    scipy.linalg.sqrtm(cov)


def dlib_downstream_task(pool: Callable[..., Any], n_factors: int, s: Callable[[int], int]) -> None:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    makers = (lambda: LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)), GradientBoostingClassifier)
    for make in makers:  # dlib's two predictor configs, each its own run
        for size in (10, 100, 1000, 10000):
            x, y = pool(max(5, s(size)))
            xt, yt = pool(s(5000))
            for k in range(n_factors):
                if np.unique(y[:, k]).size < 2:
                    continue
                model = make().fit(x, y[:, k])
                np.mean(model.predict(x) == y[:, k]), np.mean(model.predict(xt) == yt[:, k])


DLIB_METRICS = {
    "beta_vae": dlib_beta_vae,
    "factor_vae": dlib_factor_vae,
    "mig": dlib_mig,
    "dci": dlib_dci,
    "sap": dlib_sap,
    "modularity_explicitness": dlib_modularity_explicitness,
    "irs": dlib_irs,
    "unsupervised": dlib_unsupervised,
    "downstream_task": dlib_downstream_task,
}


class CodePool:
    """Codes of the encoder for a pool of observations; draws rows like dlib's factor sampler would."""

    def __init__(self, dataset: Any, codes: np.ndarray, indices: np.ndarray, *, seed: int = 0) -> None:
        from dbench.datasets.base import indices_to_factors

        self.rng = np.random.default_rng(seed)  # dlib draws from a RandomState; the cost is the same
        self.codes, self.factors = codes, indices_to_factors(dataset, indices)
        columns = self.factors.T
        self.by_value = [{v: np.nonzero(column == v)[0] for v in np.unique(column)} for column in columns]

    def __call__(self, count: int, *, fixed: int | None = None, pair: bool = False) -> Any:
        if fixed is None:
            rows = self.rng.integers(0, len(self.codes), size=count)
            return self.codes[rows], self.factors[rows]
        groups = self.by_value[fixed]
        value = list(groups)[int(self.rng.integers(len(groups)))]
        rows = groups[value][self.rng.integers(0, len(groups[value]), size=count)]
        if pair:
            other = groups[value][self.rng.integers(0, len(groups[value]), size=count)]
            return self.codes[rows], self.codes[other]
        return self.codes[rows], self.factors[rows]


def per_image_seconds(dataset: Any, encoder: Any, n_images: int) -> float:
    """Rendering plus encoding one image in dlib's batches of 64 (dlib renders, then encodes)."""
    indices = np.random.default_rng(1).integers(0, 737_280, size=n_images)
    start = time.perf_counter()
    for i in range(0, n_images, FACTOR_BATCH):
        encoder.encode_arrays(dataset.images(indices[i : i + FACTOR_BATCH]))
    return (time.perf_counter() - start) / n_images


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder", help="encoder file, as for dbench evaluate")
    parser.add_argument("--limit", type=float, default=1.0, help="scale every sample size (default 1: published sizes)")
    parser.add_argument("--pool", type=int, default=50_000, help="observations encoded for dlib's metric-time codes")
    parser.add_argument("--cost-images", type=int, default=5_120, help="images timed for the per-image cost")
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args(argv)

    import dbench
    from dbench.codes import CodeTable
    from dbench.datasets import get_dataset
    from dbench.encoders import load_encoder

    dataset = get_dataset("dsprites")
    encoder = load_encoder(args.encoder)
    n_factors = len(dataset.factor_sizes)

    # dbench: the whole protocol, its own stage times
    start = time.perf_counter()
    result = dbench.evaluate(encoder, protocol="dlib", representation="mean", limit=None if args.limit >= 1 else args.limit)
    dbench_seconds = time.perf_counter() - start

    # dlib: encoder calls x per-image cost, plus its metric time on codes of the same encoder
    per_image = per_image_seconds(dataset, encoder, args.cost_images)
    calls = dlib_encoder_calls(args.limit)
    indices = np.random.default_rng(2).choice(737_280, size=args.pool, replace=False)
    table = CodeTable(dataset, encoder.encode_arrays, batch_size=256)
    table.ensure(indices)
    pool = CodePool(dataset, table.lookup(indices), indices)

    def scaled(x: int) -> int:
        return max(2, round(x * args.limit))

    dlib_metric_seconds = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, run in DLIB_METRICS.items():
            t0 = time.perf_counter()
            run(pool, n_factors, scaled)
            dlib_metric_seconds[name] = time.perf_counter() - t0
            print(f"dlib {name}: {dlib_metric_seconds[name]:.1f} s metric time, {calls[name]:,} encoder calls", flush=True)
    dlib_encode = sum(calls.values()) * per_image
    dlib_total = dlib_encode + sum(dlib_metric_seconds.values())
    out = {
        "encoder": args.encoder,
        "limit": args.limit,
        "dbench_seconds": dbench_seconds,
        "dbench_stages": dict(result.seconds),
        "dbench_n_encoded": int(result.n_encoded),
        "per_image_seconds": per_image,
        "dlib_encoder_calls": calls,
        "dlib_encode_seconds": dlib_encode,
        "dlib_metric_seconds": dlib_metric_seconds,
        "dlib_seconds": dlib_total,
        "ratio": dlib_total / dbench_seconds,
    }
    print(
        f"\ndbench: {dbench_seconds:.1f} s ({result.n_encoded:,} images encoded); stages "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
        + f"\ndlib:   {dlib_total:.1f} s = {sum(calls.values()):,} encoder calls x {per_image * 1e3:.3f} ms "
        f"({dlib_encode:.1f} s) + metric time {sum(dlib_metric_seconds.values()):.1f} s"
        f"\nratio:  dbench is {out['ratio']:.1f}x faster"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
