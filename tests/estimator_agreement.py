"""How closely the device estimators reproduce the host ones, measured on the test fixtures.

Shared by ``tests/test_array_trees.py``, ``tests/test_gpu_estimators.py`` and
``benchmarks/gpu_agreement.py`` (which writes the numbers docs/gpu.md quotes):

* :func:`tree_agreement`: the array-API trees on a backend against the compiled trees, factor by
  factor: trees with a split that differs (feature or threshold), trees whose output on a training
  sample differs (a different split between samples whose gradients are all equal changes none), the
  first stage where a split differs, importances, training and test predictions, and the four DCI
  scores computed from both;
* :func:`higgins_agreement` / :func:`explicitness_agreement`: the logistic fits of the beta-VAE score
  and of explicitness on a backend against scikit-learn's ``LogisticRegression()``.

Backends are named as in :data:`BACKENDS`; :func:`converter` returns None where one is unavailable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from dci_cases import GOLDEN_CASES, golden_inputs, golden_scores
from metric_cases import dlib_case
from sampling_metric_data import GridDataset, dlib_golden, mixed_table, plan_codes_from_table

BACKENDS = ("numpy", "array_api_strict", "torch", "cupy", "torch-cuda")
CPU_BACKENDS = ("numpy", "array_api_strict", "torch")
GPU_BACKENDS = ("cupy", "torch-cuda")


def converter(name: str) -> Callable[[np.ndarray], Any] | None:
    """A function moving a host array into backend ``name``, or None where it cannot run here."""
    if name == "numpy":
        return np.asarray
    try:
        if name == "array_api_strict":
            import array_api_strict

            return array_api_strict.asarray
        if name == "torch":
            import torch

            return torch.from_numpy
        if name == "torch-cuda":
            import torch

            if not torch.cuda.is_available():
                return None
            return lambda a: torch.from_numpy(np.ascontiguousarray(a)).to("cuda")
        if name == "cupy":
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                return None
            return cupy.asarray
    except Exception:  # noqa: BLE001 - ImportError or any of CUDA's driver errors: the backend is not usable here
        return None
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


def tree_cases() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The DCI test fixtures: the four dlib golden cases and the three shared golden-metric cases."""
    cases = {f"golden_{case}": golden_inputs(case) for case in GOLDEN_CASES}
    cases.update({f"dlib_case_{case}": dlib_case(case) for case in ("ground_truth", "noisy_mixed", "constant_dim")})
    return cases


def tree_agreement(
    arrays: tuple[np.ndarray, ...], convert: Callable[[np.ndarray], Any], *, golden: str | None = None
) -> dict[str, Any]:
    """The array-API trees (on ``convert``'s backend) against the compiled trees on one DCI input."""
    from dbench._array import to_numpy
    from dbench.estimators.array_trees import fit_array_trees_multi
    from dbench.estimators.boosted_trees import fit_boosted_trees
    from dbench.metrics._dci import completeness_score, disentanglement_score

    x_train, f_train, x_test, f_test = arrays
    compiled = [fit_boosted_trees(x_train, f_train[:, j]) for j in range(f_train.shape[1])]
    on_backend = fit_array_trees_multi(convert(x_train), f_train)
    x_test_backend = convert(x_test)
    report: dict[str, Any] = {"factors": [], "trees": 0, "trees_with_a_different_split": 0, "trees_with_different_outputs": 0}
    importances, accuracies = {"compiled": [], "array": []}, {"compiled": [], "array": []}
    for j, (a, b) in enumerate(zip(compiled, on_backend, strict=True)):
        differs = (a.feature != b.feature) | (a.threshold != b.threshold)  # (stages, T, 15)
        per_tree = differs.any(axis=2)
        first = int(np.argmax(per_tree.any(axis=1))) if per_tree.any() else None
        output_diff = np.abs(tree_outputs(a, x_train) - tree_outputs(b, x_train)).max(axis=2)  # (stages, T)
        outputs_differ = output_diff > 1e-9 * max(1.0, float(np.abs(a.value).max()))
        train_b, test_b = to_numpy(b.predict_train()), to_numpy(b.predict(x_test_backend))
        train_a, test_a = a.predict_train(), a.predict(x_test)
        report["factors"].append({
            "trees": int(per_tree.size),
            "trees_with_a_different_split": int(per_tree.sum()),
            "trees_with_different_outputs": int(outputs_differ.sum()),
            "tree_output_max_abs_diff": float(output_diff.max()),
            "first_stage_differing": first,
            "importance_max_abs_diff": float(np.max(np.abs(a.feature_importances - b.feature_importances))),
            "train_predictions_differing": int(np.sum(train_a != train_b)),
            "test_predictions_differing": int(np.sum(test_a != test_b)),
        })
        report["trees"] += int(per_tree.size)
        report["trees_with_a_different_split"] += int(per_tree.sum())
        report["trees_with_different_outputs"] += int(outputs_differ.sum())
        importances["compiled"].append(a.feature_importances)
        importances["array"].append(b.feature_importances)
        for key, (train, test) in (("compiled", (train_a, test_a)), ("array", (train_b, test_b))):
            accuracies[key].append((np.mean(train == f_train[:, j]), np.mean(test == f_test[:, j])))
    scores = {}
    for key in ("compiled", "array"):
        matrix = np.stack(importances[key], axis=1)
        acc = np.asarray(accuracies[key])
        scores[key] = {
            "disentanglement": disentanglement_score(matrix),
            "completeness": completeness_score(matrix),
            "informativeness_train": float(np.mean(acc[:, 0])),
            "informativeness_test": float(np.mean(acc[:, 1])),
        }
    report["scores"] = scores
    report["dci_max_abs_diff"] = max(abs(scores["array"][k] - scores["compiled"][k]) for k in scores["array"])
    if golden is not None:
        expected = golden_scores()[golden]
        report["dlib_max_abs_diff"] = max(abs(scores["array"][k] - expected[k]) for k in scores["array"])
    return report


def tree_outputs(model: Any, x: np.ndarray) -> np.ndarray:
    """Every tree's (unshrunk) leaf value for every sample ``(stages, T, n)``, from a model's heap arrays."""
    from dbench.estimators.array_trees._model import _leaf_values
    from dbench.estimators.boosted_trees._model import complete_trees

    trees = complete_trees(model.feature, model.threshold, model.value)
    rows = np.ascontiguousarray(x.T.astype(np.float32))
    return _leaf_values(np, rows, trees.feature.astype(np.int64), trees.threshold, trees.leaf_value)


def higgins_cases() -> list[dict[str, Any]]:
    """The beta-VAE score's exact fixture cases: pair features and labels, as its score computes them."""
    from dbench.metrics._beta_vae import SPEC, pair_features

    golden = dlib_golden("beta_vae")
    config = golden["exact_config"]
    dataset = GridDataset(tuple(config["factor_sizes"]))
    cases = []
    for row in golden["exact"]:
        table = mixed_table(dataset, row["noise_scale"], seed=config["table_seed"])
        table = np.concatenate([table, config["collapsed_scale"] * table[:, :1]], axis=1)
        params = SPEC.resolve(config["params"])
        plan = SPEC.plan(dataset, np.random.default_rng(row["seed"]), params)
        codes = plan_codes_from_table(plan, table)
        cases.append({
            "name": f"noise_{row['noise_scale']}_seed_{row['seed']}",
            "train_x": pair_features(codes["train_a"], codes["train_b"]).astype(np.float64),
            "eval_x": pair_features(codes["eval_a"], codes["eval_b"]).astype(np.float64),
            "train_y": np.asarray(plan.extra["train_labels"]),
            "eval_y": np.asarray(plan.extra["eval_labels"]),
            "dlib": row["dlib"],
        })
    return cases


def higgins_agreement(case: dict[str, Any], convert: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    """scikit-learn's ``LogisticRegression()`` against the backend fit the beta-VAE score runs on device
    codes (:func:`~dbench.estimators.device_logistic.fit_logistic_on_backend`; on NumPy arrays too, so
    that the ``numpy`` row measures the estimator apart from any device arithmetic)."""
    from sklearn.linear_model import LogisticRegression

    from dbench.estimators.device_logistic import fit_logistic_on_backend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = LogisticRegression().fit(case["train_x"], case["train_y"])
    ref_train, ref_eval = reference.predict(case["train_x"]), reference.predict(case["eval_x"])
    model = fit_logistic_on_backend(convert(case["train_x"]), case["train_y"])
    train, evaluated = model.predict(convert(case["train_x"]))[:, 0], model.predict(convert(case["eval_x"]))[:, 0]
    accuracy = {
        "train_accuracy": float(np.mean(train == case["train_y"])),
        "eval_accuracy": float(np.mean(evaluated == case["eval_y"])),
    }
    return {
        "name": case["name"],
        "predictions": int(train.size + evaluated.size),
        "predictions_differing": int(np.sum(train != ref_train) + np.sum(evaluated != ref_eval)),
        "accuracy_max_abs_diff_vs_sklearn": max(
            abs(accuracy["train_accuracy"] - float(np.mean(ref_train == case["train_y"]))),
            abs(accuracy["eval_accuracy"] - float(np.mean(ref_eval == case["eval_y"]))),
        ),
        "accuracy_max_abs_diff_vs_dlib": max(abs(accuracy[k] - case["dlib"][k]) for k in accuracy),
        "sklearn_n_iter": int(np.max(reference.n_iter_)),
    }


def explicitness_cases() -> dict[str, tuple[np.ndarray, ...]]:
    """Explicitness's fixture cases (tests/fixtures/dlib_golden_modularity.json's inputs with a defined AUC)."""
    return {case: dlib_case(case) for case in ("ground_truth", "noisy_mixed")}


def explicitness_agreement(arrays: tuple[np.ndarray, ...], convert: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    """scikit-learn's per-factor ``LogisticRegression()`` against the backend's batched fits, as explicitness runs them."""
    from sklearn.linear_model import LogisticRegression

    from dbench._array import to_numpy
    from dbench.estimators.device_logistic import fit_logistic_on_backend
    from dbench.metrics._modularity import _standardise, explicitness

    x_train, f_train, x_test, _ = arrays
    z_train, z_test = _standardise(x_train, x_test)
    model = fit_logistic_on_backend(convert(z_train), f_train)
    predicted = {"train": model.predict(convert(z_train)), "test": model.predict(convert(z_test))}
    proba = {"train": to_numpy(model.predict_proba(convert(z_train))), "test": to_numpy(model.predict_proba(convert(z_test)))}
    differing, total, proba_diff, n_iter = 0, 0, 0.0, 0
    for k in range(f_train.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = LogisticRegression().fit(z_train, f_train[:, k])
        n_iter = max(n_iter, int(np.max(reference.n_iter_)))
        for split, z in (("train", z_train), ("test", z_test)):
            differing += int(np.sum(reference.predict(z) != predicted[split][:, k]))
            total += z.shape[0]
            width = reference.classes_.size
            proba_diff = max(proba_diff, float(np.max(np.abs(reference.predict_proba(z) - proba[split][k, :, :width]))))
    on_backend = explicitness(*(convert(a) for a in arrays), solver="batched")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_auc = explicitness(*arrays, solver="sklearn")
    return {
        "predictions": total,
        "predictions_differing": differing,
        "probability_max_abs_diff": proba_diff,
        "auc_max_abs_diff_vs_sklearn": max(abs(a - b) for a, b in zip(on_backend, reference_auc, strict=True)),
        "sklearn_n_iter": n_iter,
    }


def sampling_score_agreement(metric: str, convert: Callable[[np.ndarray], Any]) -> tuple[Any, Any]:
    """A sampling metric's :class:`~dbench.metrics._spec.Scored` on host codes and on ``convert``'s
    backend, for one small plan on mixed grid codes (the same plan and codes for both)."""
    from dbench.metrics import get_metric

    spec = get_metric(metric)
    dataset = GridDataset((4, 6, 8))
    sizes = {"beta_vae": {"batch_size": 16, "n_train": 300, "n_eval": 200},
             "factor_vae": {"batch_size": 16, "n_train": 300, "n_eval": 200, "n_variance_estimate": 1000}}
    params = spec.resolve(sizes[metric])
    plan = spec.plan(dataset, np.random.default_rng(0), params)
    codes = plan_codes_from_table(plan, mixed_table(dataset, 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.score(plan, codes, params), spec.score(plan, {k: convert(v) for k, v in codes.items()}, params)
