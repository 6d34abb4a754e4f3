"""One-number summaries of a downstream learning curve (accuracy against the number of labels).

* **Sample efficiency** (Locatello et al., 2019, "Challenging Common Assumptions in the Unsupervised
  Learning of Disentangled Representations", Sec. 6: "statistical efficiency"): the mean test accuracy
  of the downstream classifier trained on 100 samples divided by the one trained on 10 000 samples.
  disentanglement_lib stores only the per-size accuracies (``"100:mean_test_accuracy"`` ...); the
  ratio is computed from them in the study's analysis, so we compute it the same way.
* **Area under the curve**: the trapezoidal area under accuracy against ``log10(n)``, divided by the
  log-range, so it is the average accuracy over the decades of training-set size and lies in [0, 1].

The downstream metric's keys are ``"{predictor}:{n}:{dlib key}"``, e.g.
``"logistic_regression_cv:100:mean_test_accuracy"``; these helpers read them back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

_KEY = re.compile(r"^(?P<predictor>[^:]+):(?P<n>\d+):(?P<what>.+)$")


def sample_efficiency(accuracy_small: float, accuracy_large: float) -> float:
    """``accuracy_small / accuracy_large`` (Locatello et al. 2019 use n = 100 over n = 10 000)."""
    if not accuracy_large > 0:
        raise ValueError(f"accuracy at the large training size must be positive; got {accuracy_large}")
    return float(accuracy_small / accuracy_large)


def log_curve_area(sizes: Sequence[int] | np.ndarray, accuracies: Sequence[float] | np.ndarray) -> float:
    """Trapezoidal area under ``accuracy`` against ``log10(size)``, normalised by the log-range.

    A constant curve ``a`` gives ``a``; needs at least two distinct sizes.
    """
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    acc = np.asarray(accuracies, dtype=np.float64)
    if sizes_arr.shape != acc.shape or sizes_arr.ndim != 1:
        raise ValueError(f"sizes and accuracies must be 1-D of equal length; got {sizes_arr.shape} and {acc.shape}")
    if np.any(sizes_arr <= 0):
        raise ValueError("sizes must be positive")
    order = np.argsort(sizes_arr)
    x, y = np.log10(sizes_arr[order]), acc[order]
    if x[-1] - x[0] <= 0:
        raise ValueError("need at least two distinct training sizes for the area under the curve")
    area = np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0)
    return float(area / (x[-1] - x[0]))


def learning_curves(scores: Mapping[str, float], what: str = "test") -> dict[str, dict[str, np.ndarray]]:
    """Per predictor: ``{"sizes": (S,), "mean": (S,), "factors": (S, F)}`` read from the metric's keys.

    ``what`` is ``"test"`` or ``"train"``.
    """
    found: dict[str, dict[int, dict[str, float]]] = {}
    for key, value in scores.items():
        match = _KEY.match(key)
        if match:
            found.setdefault(match["predictor"], {}).setdefault(int(match["n"]), {})[match["what"]] = float(value)
    curves = {}
    for predictor, per_size in found.items():
        sizes = sorted(per_size)
        if not all(f"mean_{what}_accuracy" in per_size[n] for n in sizes):
            continue
        n_factors = sum(1 for k in per_size[sizes[0]] if k.startswith(f"{what}_accuracy_factor_"))
        factors = np.array([[per_size[n][f"{what}_accuracy_factor_{i}"] for i in range(n_factors)] for n in sizes])
        curves[predictor] = {
            "sizes": np.array(sizes),
            "mean": np.array([per_size[n][f"mean_{what}_accuracy"] for n in sizes]),
            "factors": factors.reshape(len(sizes), n_factors),
        }
    return curves


def summarize(scores: Mapping[str, float], *, small: int = 100, large: int = 10000) -> dict[str, float]:
    """``"{predictor}:sample_efficiency"`` (when both sizes were run) and ``"{predictor}:log_n_auc"``."""
    out: dict[str, float] = {}
    for predictor, curve in learning_curves(scores).items():
        sizes = list(curve["sizes"])
        if small in sizes and large in sizes:
            out[f"{predictor}:sample_efficiency"] = sample_efficiency(
                curve["mean"][sizes.index(small)], curve["mean"][sizes.index(large)]
            )
        if len(set(sizes)) >= 2:
            out[f"{predictor}:log_n_auc"] = log_curve_area(sizes, curve["mean"])
    return out


def dlib_keys(scores: Mapping[str, float], predictor: str) -> dict[str, float]:
    """The scores of one predictor under disentanglement_lib's exact key names (``"100:mean_test_accuracy"``)."""
    prefix = predictor + ":"
    return {key[len(prefix) :]: value for key, value in scores.items() if key.startswith(prefix) and _KEY.match(key)}
