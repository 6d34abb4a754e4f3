"""A rough cost model of every metric: seconds of scoring from its parameters and the code width.

Each metric's model is ``seconds = SECONDS_PER_UNIT * work(params, n_latents, n_factors)``, where
``work`` counts the metric's dominant inner loop (for DCI the boosted trees scan every latent for
every factor over the training samples; for the unsupervised scores every pair of latents over the
samples) and the constant was measured with ``tests/benchmarks/test_cost_model.py`` on a 2-core CPU.
Estimates are good to a factor of about 3: enough to say, before a run starts, that 2,000 latents
make DCI take minutes instead of seconds (:func:`dbench.evaluation.pipeline.large_run_warning`), not
to schedule jobs.

A metric without a model here (one added later) is estimated at 0 s; ``tests/test_faults_pipeline.py``
fails until every registered metric has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The code width the metrics' default sizes are judged at (dlib's models have 10 latents).
REFERENCE_LATENTS = 10
#: A run warns when its estimate exceeds both this many seconds ...
LARGE_RUN_SECONDS = 120.0
#: ... and this multiple of the same metrics at their default sizes on REFERENCE_LATENTS latents.
LARGE_RUN_FACTOR = 10.0

Work = Callable[[Mapping[str, Any], int, int], float]


@dataclass(frozen=True)
class CostModel:
    """``seconds = seconds_per_unit * work(params, n_latents, n_factors)``; ``units`` says what is counted."""

    work: Work
    seconds_per_unit: float
    units: str

    def seconds(self, params: Mapping[str, Any], n_latents: int, n_factors: int) -> float:
        return self.seconds_per_unit * float(self.work(params, n_latents, n_factors))


def _sizes(params: Mapping[str, Any]) -> tuple[int, int]:
    """``(sum of training sizes, number of sizes)`` of the downstream task."""
    sizes = [int(n) for n in params["n_train_sizes"]]
    return sum(sizes), len(sizes)


def _downstream(params: Mapping[str, Any], d: int, k: int) -> float:
    total, count = _sizes(params)
    rows = total + count * int(params["n_test"])
    work = 0.0
    if "logistic_regression_cv" in params["predictors"]:
        work += int(params["Cs"]) * int(params["n_folds"]) * total * d * k
    if "gradient_boosting" in params["predictors"]:
        work += _GBT_PER_LOGISTIC * rows * d * k
    return work


def _few_shot(params: Mapping[str, Any], d: int, k: int) -> float:
    draws = int(params["n_draws"]) * len(params["shots"])
    # k-NN distances from every test point to the training set, per draw and factor; the logistic
    # probe is cheaper than the distances of the 'all' shot.
    return draws * k * int(params["n_test"]) * d + int(params["n_pool"]) * int(params["n_test"]) * d


# Boosted trees cost this many logistic-regression units per (row, latent, factor) (measured).
_GBT_PER_LOGISTIC = 60.0

MODELS: dict[str, CostModel] = {
    "beta_vae": CostModel(
        lambda p, d, k: (p["batch_size"] * (p["n_train"] + p["n_eval"]) + p["n_train"] * k) * d,
        4.0e-8, "observation pairs and logistic-regression rows, times latents"),
    "factor_vae": CostModel(
        lambda p, d, k: (p["batch_size"] * (p["n_train"] + p["n_eval"]) + p["n_variance_estimate"]) * d,
        2.0e-8, "observations, times latents"),
    "mig": CostModel(lambda p, d, k: p["n_train"] * d, 2.5e-7, "samples times latents"),
    "dci": CostModel(lambda p, d, k: p["n_train"] * d * k, 2.0e-5, "training samples times latents times factors"),
    "sap": CostModel(lambda p, d, k: (p["n_train"] + p["n_test"]) * d * k, 5.0e-7, "samples times latent-factor pairs"),
    "modularity_explicitness": CostModel(lambda p, d, k: (p["n_train"] + p["n_test"]) * d * k, 4.0e-6,
                                         "samples times latents times factors"),
    "irs": CostModel(lambda p, d, k: p["n_train"] * d * k, 5.0e-8, "samples times latents times factors"),
    "unsupervised": CostModel(lambda p, d, k: p["n_train"] * d * d, 2.0e-8, "samples times pairs of latents"),
    "downstream_task": CostModel(_downstream, 2.0e-9, "logistic-regression fits' rows times latents times factors"),
    "few_shot": CostModel(_few_shot, 5.0e-9, "distances' test points times training points times latents"),
}


def estimate_seconds(metric: str, params: Mapping[str, Any], *, n_latents: int, n_factors: int) -> float:
    """Estimated seconds of scoring ``metric`` with ``params`` (complete) once; 0 for a metric without a model."""
    model = MODELS.get(metric)
    return 0.0 if model is None else model.seconds(params, n_latents, n_factors)


def estimate_run(params: Mapping[str, Mapping[str, Any]], *, n_latents: int, n_factors: int) -> dict[str, float]:
    """Estimated seconds of each metric of a run (one seed), by metric name."""
    return {name: estimate_seconds(name, p, n_latents=n_latents, n_factors=n_factors) for name, p in params.items()}


def reference_run(params: Mapping[str, Mapping[str, Any]], *, n_factors: int) -> dict[str, float]:
    """The same metrics at their declared default sizes on :data:`REFERENCE_LATENTS` latents."""
    from dbench.metrics import get_metric

    return {
        name: estimate_seconds(name, get_metric(name).defaults, n_latents=REFERENCE_LATENTS, n_factors=n_factors)
        for name in params
    }


__all__ = [
    "LARGE_RUN_FACTOR",
    "LARGE_RUN_SECONDS",
    "MODELS",
    "REFERENCE_LATENTS",
    "CostModel",
    "estimate_run",
    "estimate_seconds",
    "reference_run",
]
