"""Kim & Mnih's FactorVAE disentanglement score, as implemented in disentanglement_lib.

Kim & Mnih (2018), "Disentangling by Factorising", ICML. Codes are first normalised by their global
standard deviation (estimated on ``n_variance_estimate`` random observations); latents whose standard
deviation is below ``prune_threshold`` count as collapsed and are left out. One vote per draw: pick a
factor ``k`` uniformly, draw ``batch_size`` observations that share a random value of factor ``k``, and
vote for the active latent with the smallest normalised variance over the batch. A majority-vote
classifier maps each latent to the factor it received most votes from; the score is its accuracy on
the ``n_train`` training votes and on ``n_eval`` fresh votes.

Faithful to ``disentanglement_lib/evaluation/metrics/factor_vae.py`` (``compute_factor_vae``) with
the defaults of its ``unsupervised_study_v1`` config: ``batch_size=64``, ``num_train=10000``,
``num_eval=5000``, ``num_variance_estimate=10000``, ``prune_dims.threshold=0.05``. Variances use
``ddof=1``; the pruning threshold applies to the *absolute* standard deviation (not relative to the
largest); ties go to the first latent (argmin) and the first factor (argmax), as NumPy breaks them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.metrics._constraints import Interval
from dbench.metrics._plans import check_dataset_factors, plan_codes
from dbench.metrics._sampling import run_standalone
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey
from dbench.metrics._validation import warn_degenerate

PARAMS = Params(
    # A variance over the batch needs two rows.
    batch_size=Param(64, Interval(int, 2, 100_000), "observations sharing the fixed factor's value, per vote"),
    n_train=Param(10_000, Interval(int, 1, 1_000_000), "training votes of the majority-vote classifier", sample_size=True),
    n_eval=Param(5_000, Interval(int, 1, 1_000_000), "evaluation votes", sample_size=True),
    n_variance_estimate=Param(10_000, Interval(int, 2, 10_000_000), "observations for the global variances", sample_size=True),
    prune_threshold=Param(0.05, Interval(float, 0.0, 1e12), "latents whose standard deviation is below this get no vote"),
)
# Each row of the plan's batches holds a flat index and a factor vector, and a code once encoded.
RULES = (Rule("batch_size * (n_train + n_eval) <= 20_000_000", "batch rows the plan holds"),)


def _plan_fixed_factor_batches(
    dataset: GroundTruthDataset, rng: np.random.Generator, n_points: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(n_points, batch_size)`` of batches sharing one factor value, and that factor.

    Per point, in dlib's order: the fixed factor, a batch of factor vectors, then the fixed factor of
    every row set to the first row's value.
    """
    n_factors = len(dataset.factor_sizes)
    labels = np.empty(n_points, dtype=np.int64)
    factors = np.empty((n_points, batch_size, n_factors), dtype=np.int64)
    for i in range(n_points):
        labels[i] = rng.integers(n_factors)
        factors[i] = sample_factors(dataset, batch_size, rng)
        factors[i, :, labels[i]] = factors[i, 0, labels[i]]
    indices = factors_to_indices(dataset, factors.reshape(-1, n_factors)).reshape(n_points, batch_size)
    return indices, labels


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    """Draw the variance sample, then the training batches, then the evaluation batches (dlib's order).

    Requests ``variance`` ``(n_variance_estimate,)``, ``train`` ``(n_train, batch_size)`` and ``eval``
    ``(n_eval, batch_size)`` flat indices; extra ``train_labels``/``eval_labels`` (the fixed factor of
    each batch) and ``n_factors``. dlib skips the batches when no latent is active; a plan cannot know
    that before encoding, so it always draws them (the score is the same).
    """
    batch_size, n_train, n_eval = params["batch_size"], params["n_train"], params["n_eval"]
    n_variance = params["n_variance_estimate"]
    n_factors = check_dataset_factors(dataset)
    variance = factors_to_indices(dataset, sample_factors(dataset, n_variance, rng))
    train, train_labels = _plan_fixed_factor_batches(dataset, rng, n_train, batch_size)
    eval_, eval_labels = _plan_fixed_factor_batches(dataset, rng, n_eval, batch_size)
    return Plan(
        requests={"variance": variance, "train": train, "eval": eval_},
        extra={"train_labels": train_labels, "eval_labels": eval_labels, "n_factors": n_factors},
    )


def active_latents(global_variances: Any, prune_threshold: float) -> Any:
    """Mask of latents whose standard deviation is ``>= prune_threshold`` (dlib's ``_prune_dims``).

    A latent with zero variance is never active, even at threshold 0, where dlib would divide 0 by 0.
    """
    xp = array_namespace(global_variances)
    return (xp.sqrt(global_variances) >= prune_threshold) & (global_variances > 0)


def vote_latents(batch_codes: Any, global_variances: Any, active: Any) -> Any:
    """Per batch, the active latent with the smallest variance relative to its global variance.

    ``batch_codes`` ``(n_points, batch_size, D)`` -> latent indices ``(n_points,)`` (first on ties).
    """
    xp = array_namespace(batch_codes, global_variances)
    local_variances = xp.var(batch_codes, axis=1, correction=1)
    # Inactive latents get +inf so argmin over all latents equals dlib's argmin over the active ones.
    safe_global = xp.where(active, global_variances, xp.ones_like(global_variances))
    ratios = xp.where(active, local_variances / safe_global, xp.full_like(local_variances, xp.inf))
    return xp.argmin(ratios, axis=1)


def vote_matrix(labels: np.ndarray, latents: np.ndarray, n_factors: int, n_latents: int) -> np.ndarray:
    """Counts ``(n_factors, n_latents)``: how often fixing factor ``k`` made latent ``j`` the least variable."""
    flat = np.asarray(labels, dtype=np.int64) * n_latents + np.asarray(latents, dtype=np.int64)
    return np.bincount(flat, minlength=n_factors * n_latents).reshape(n_factors, n_latents)


def majority_vote_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Fraction of votes whose latent's majority factor (``classifier[j]``) is the factor that was fixed."""
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    """Majority-vote accuracy of the least-variable normalised latent at naming the fixed factor."""
    prune_threshold = float(params["prune_threshold"])
    xp, arrays = plan_codes(plan, codes, ("variance", "train", "eval"))
    n_latents = arrays["variance"].shape[-1]
    global_variances = xp.var(arrays["variance"], axis=0, correction=1)
    active = active_latents(global_variances, prune_threshold)
    n_active = int(xp.sum(xp.astype(active, xp.int64)))
    if n_active == 0:
        # dlib returns exactly these values when every latent is pruned.
        warn_degenerate(f"factor_vae: no latent has a standard deviation >= prune_threshold={prune_threshold}; "
                        "train and eval accuracy are 0 by definition")
        return Scored({"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0})

    n_factors = int(plan.extra["n_factors"])
    # The heavy part (variances over every batch) stays in the codes' namespace; only the (n_points,)
    # winning latent indices cross to the host, where tallying votes is a bincount.
    train_latents = to_numpy(vote_latents(arrays["train"], global_variances, active))
    eval_latents = to_numpy(vote_latents(arrays["eval"], global_variances, active))
    train_votes = vote_matrix(plan.extra["train_labels"], train_latents, n_factors, n_latents)
    eval_votes = vote_matrix(plan.extra["eval_labels"], eval_latents, n_factors, n_latents)
    classifier = np.argmax(train_votes, axis=0)  # per latent, its majority factor (first on ties)
    return Scored(
        {
            "train_accuracy": majority_vote_accuracy(train_votes, classifier),
            "eval_accuracy": majority_vote_accuracy(eval_votes, classifier),
            # dlib reports len(active_dims), the length of the boolean mask (always D); this is the count.
            "num_active_dims": n_active,
        }
    )


SPEC = MetricSpec(
    name="factor_vae",
    description="Kim & Mnih (2018) FactorVAE score: majority-vote accuracy of the least-variable latent",
    params=PARAMS,
    scores=(
        ScoreKey("train_accuracy", 0.0, 1.0, True, "majority-vote accuracy on the training votes"),
        ScoreKey("eval_accuracy", 0.0, 1.0, True, "majority-vote accuracy on fresh votes"),
        ScoreKey("num_active_dims", 0.0, math.inf, None, "latents with a standard deviation >= prune_threshold"),
    ),
    plan_fn=_plan,
    score_fn=_score,
    rules=RULES,
)


def factor_vae(
    dataset: GroundTruthDataset | str,
    encoder: Any,
    *,
    seed: int,
    batch_size: int = PARAMS["batch_size"].default,
    n_train: int = PARAMS["n_train"].default,
    n_eval: int = PARAMS["n_eval"].default,
    n_variance_estimate: int = PARAMS["n_variance_estimate"].default,
    prune_threshold: float = PARAMS["prune_threshold"].default,
) -> dict[str, float]:
    """Kim & Mnih's FactorVAE score of ``encoder`` on ``dataset``.

    Parameters
    ----------
    dataset : GroundTruthDataset or str
        The dataset, or its registry name.
    encoder : Encoder or anything the encoder loader accepts
        Maps float32 ``(N, C, H, W)`` images to ``(N, D)`` codes (the mean, when it also returns a
        log-variance).
    seed : int
        Seed of the ``numpy.random.Generator`` that draws every sample.
    batch_size, n_train, n_eval, n_variance_estimate : int
        Observations per vote, training votes, evaluation votes, observations for the global variances.
    prune_threshold : float
        Latents with a global standard deviation below this are collapsed and get no votes.

    Returns
    -------
    dict
        ``{"train_accuracy": float, "eval_accuracy": float, "num_active_dims": int}``; accuracies in
        [0, 1] (chance is about ``1 / n_factors``), both 0 when no latent is active.

    References
    ----------
    Kim & Mnih (2018), "Disentangling by Factorising", ICML.

    Examples
    --------
    A hand-made encoder that codes the sprite's position and area knows three of tiny dSprites' five
    factors (pos_x, pos_y, scale), not shape or orientation; chance is 1/5:

    >>> import numpy as np
    >>> from dbench.metrics import factor_vae
    >>> def sprite_position_and_size(images):
    ...     mass = images.sum(axis=(1, 2, 3))
    ...     rows, cols = np.indices(images.shape[-2:])
    ...     x = (images[:, 0] * cols).sum(axis=(1, 2)) / mass
    ...     y = (images[:, 0] * rows).sum(axis=(1, 2)) / mass
    ...     return np.stack([x, y, mass], axis=1)
    >>> scores = factor_vae("tiny_dsprites", sprite_position_and_size, seed=0, batch_size=16, n_train=300,
    ...                     n_eval=150, n_variance_estimate=500)
    >>> round(scores["eval_accuracy"], 2), scores["num_active_dims"]
    (0.59, 3)
    """
    overrides = {
        "batch_size": batch_size,
        "n_train": n_train,
        "n_eval": n_eval,
        "n_variance_estimate": n_variance_estimate,
        "prune_threshold": prune_threshold,
    }
    return run_standalone(SPEC, dataset, encoder, seed, overrides)
