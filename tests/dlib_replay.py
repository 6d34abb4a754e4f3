"""disentanglement_lib's Higgins and FactorVAE scoring, replayed on dbench's planned samples.

The ``exact`` rows of ``tests/fixtures/dlib_golden_beta_vae.json`` and ``..._factor_vae.json`` are
disentanglement_lib's numbers on the samples dbench's plan draws for a seed. They were first made by
running dlib's own ``beta_vae.py`` / ``factor_vae.py`` with their sampling replaced by a replay of the
plan. This module restates those two functions' scoring, step for step as dlib's source does it
(NumPy loops over points, scikit-learn's ``LogisticRegression()``), on a plan and a code table, so the
rows can be regenerated when the plans' seeded draws change::

    PYTHONPATH=$PWD python tests/dlib_replay.py          # rewrite the exact rows
    PYTHONPATH=$PWD python tests/dlib_replay.py --check  # compare with the stored rows

It reproduced the rows made with dlib's own code (for the plans of protocol versions ``dlib`` v1,
``quick`` v2) to the last bit before the vectorised plans replaced them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from sampling_metric_data import FIXTURES, GridDataset, mixed_table


def beta_vae_scores(plan: Any, table: np.ndarray) -> dict[str, float]:
    """dlib's ``compute_beta_vae_sklearn`` on the plan's pairs: one feature per point, then the classifier."""
    from sklearn.linear_model import LogisticRegression

    def points(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        index_a, index_b = plan.requests[f"{prefix}_a"], plan.requests[f"{prefix}_b"]
        labels = plan.extra[f"{prefix}_labels"]
        features = np.zeros((len(labels), table.shape[1]))
        for i in range(len(labels)):  # dlib's _generate_training_batch
            features[i] = np.mean(np.abs(table[index_a[i]] - table[index_b[i]]), axis=0)
        return features, labels

    train_points, train_labels = points("train")
    eval_points, eval_labels = points("eval")
    model = LogisticRegression()  # dlib passes its RandomState; lbfgs does not use it
    model.fit(train_points, train_labels)
    return {
        "train_accuracy": float(np.mean(model.predict(train_points) == train_labels)),
        "eval_accuracy": float(np.mean(model.predict(eval_points) == eval_labels)),
    }


def factor_vae_scores(plan: Any, table: np.ndarray, prune_threshold: float) -> dict[str, float]:
    """dlib's ``compute_factor_vae`` on the plan's batches: votes of the lowest normalised variance."""
    global_variances = np.var(table[plan.requests["variance"]], axis=0, ddof=1)
    active_dims = np.sqrt(global_variances) >= prune_threshold
    n_factors = plan.extra["n_factors"]

    def votes(key: str) -> np.ndarray:
        out = np.zeros((n_factors, global_variances.shape[0]), dtype=np.int64)
        for batch, factor_index in zip(plan.requests[key], plan.extra[f"{key}_labels"], strict=True):
            local_variances = np.var(table[batch], axis=0, ddof=1)
            # dlib's argmin runs over the active latents only and votes for that position
            argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
            out[factor_index, argmin] += 1
        return out

    training_votes, eval_votes = votes("train"), votes("eval")
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    return {
        "train_accuracy": float(np.sum(training_votes[classifier, other_index]) / np.sum(training_votes)),
        "eval_accuracy": float(np.sum(eval_votes[classifier, other_index]) / np.sum(eval_votes)),
        "num_active_dims": float(len(active_dims)),  # dlib's len() of the boolean mask: every latent
    }


def replay_case(spec: Any, golden: dict[str, Any], row: dict[str, Any]) -> dict[str, float]:
    """dlib's numbers for one exact row: the fixture's table and dbench's plan for the row's seed."""
    config = golden["exact_config"]
    dataset = GridDataset(tuple(config["factor_sizes"]))
    table = mixed_table(dataset, row["noise_scale"], seed=config["table_seed"])
    table = np.concatenate([table, config["collapsed_scale"] * table[:, :1]], axis=1)  # a collapsed latent
    params = spec.resolve(config["params"])
    plan = spec.plan(dataset, np.random.default_rng(row["seed"]), params)
    if spec.name == "beta_vae":
        return beta_vae_scores(plan, table)
    return factor_vae_scores(plan, table, params["prune_threshold"])


def main(check: bool) -> int:
    from dbench.metrics import get_metric

    differ = 0
    for name in ("beta_vae", "factor_vae"):
        path = FIXTURES / f"dlib_golden_{name}.json"
        golden = json.loads(path.read_text())
        for row in golden["exact"]:
            dlib = replay_case(get_metric(name), golden, row)
            if dlib != row["dlib"]:
                differ += 1
                print(f"{name} noise {row['noise_scale']} seed {row['seed']}: stored {row['dlib']}, replay {dlib}")
            row["dlib"] = dlib
        if not check:
            path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"{differ} row(s) differ from the stored ones" + ("" if check else "; rewritten"))
    return 1 if check and differ else 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))
