"""Higgins et al.'s beta-VAE disentanglement score, as implemented in disentanglement_lib.

Higgins et al. (2017), "beta-VAE: Learning basic visual concepts with a constrained variational
framework", ICLR. One labelled point per draw: pick a factor ``k`` uniformly, draw ``batch_size`` pairs
of factor vectors that agree on factor ``k`` (and are independent elsewhere), encode both halves, and
take the feature ``mean_b |z_a[b] - z_b[b]|`` (one value per latent). A linear classifier (logistic
regression) learns to predict ``k`` from the feature; the score is its accuracy on ``n_train`` training
points and on ``n_eval`` fresh points. A latent that captures factor ``k`` alone is zero in the feature
exactly when ``k`` is the fixed factor, which makes ``k`` linearly readable.

Faithful to ``disentanglement_lib/evaluation/metrics/beta_vae.py`` (``compute_beta_vae_sklearn``) with
the defaults of its ``unsupervised_study_v1`` config: ``batch_size=64``, ``num_train=10000``,
``num_eval=5000``; classifier ``sklearn.linear_model.LogisticRegression`` with scikit-learn's defaults.

Where the classifier runs: on NumPy codes, scikit-learn's own lbfgs iterates on the host
(:mod:`dbench.estimators.exact_logistic`); on codes of another namespace (torch, CuPy,
array_api_strict) the same objective solved to its optimum on their device
(:mod:`dbench.estimators.device_logistic`). The result records which one ran (docs/gpu.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from dbench._array import device_name, is_host_numpy
from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.metrics._constraints import Interval
from dbench.metrics._plans import check_dataset_factors, plan_codes
from dbench.metrics._sampling import run_standalone
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Rule, Scored, ScoreKey
from dbench.metrics._validation import warn_degenerate

PARAMS = Params(
    # batch_size 1 is legal in dlib (the feature is then one |z_a - z_b|).
    batch_size=Param(64, Interval(int, 1, 100_000), "pairs of observations averaged into one point's feature"),
    n_train=Param(10_000, Interval(int, 1, 1_000_000), "training points of the logistic regression", sample_size=True),
    n_eval=Param(5_000, Interval(int, 1, 1_000_000), "evaluation points", sample_size=True),
)
# Each pair row of the plan holds two flat indices and two factor vectors, and two codes once encoded.
RULES = (Rule("batch_size * (n_train + n_eval) <= 20_000_000", "pair rows the plan holds"),)


def _plan_pairs(
    dataset: GroundTruthDataset, rng: np.random.Generator, n_points: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat indices ``(n_points, batch_size)`` of both halves of each pair batch, and the fixed factors.

    Drawn in three vectorised blocks: every point's fixed factor, every first half, every second half;
    then each second half takes its point's fixed factor from the first. (Each draw has dlib's
    distribution; dlib draws point by point, which dbench did up to protocol ``dlib`` v1.)
    """
    n_factors = len(dataset.factor_sizes)
    labels = rng.integers(n_factors, size=n_points, dtype=np.int64)
    factors_a = sample_factors(dataset, n_points * batch_size, rng).reshape(n_points, batch_size, n_factors)
    factors_b = sample_factors(dataset, n_points * batch_size, rng).reshape(n_points, batch_size, n_factors)
    fixed = labels[:, None, None]
    np.put_along_axis(factors_b, fixed, np.take_along_axis(factors_a, fixed, axis=2), axis=2)
    shape = (n_points, batch_size)
    index_a = factors_to_indices(dataset, factors_a.reshape(-1, n_factors)).reshape(shape)
    index_b = factors_to_indices(dataset, factors_b.reshape(-1, n_factors)).reshape(shape)
    return index_a, index_b, labels


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    """Draw the training pairs, then the evaluation pairs (dlib's order).

    Requests ``train_a``/``train_b`` ``(n_train, batch_size)`` and ``eval_a``/``eval_b``
    ``(n_eval, batch_size)`` flat indices; extra ``train_labels``/``eval_labels`` (the fixed factor of
    each point) and ``n_factors``.
    """
    batch_size, n_train, n_eval = params["batch_size"], params["n_train"], params["n_eval"]
    n_factors = check_dataset_factors(dataset)
    train_a, train_b, train_labels = _plan_pairs(dataset, rng, n_train, batch_size)
    eval_a, eval_b, eval_labels = _plan_pairs(dataset, rng, n_eval, batch_size)
    return Plan(
        requests={"train_a": train_a, "train_b": train_b, "eval_a": eval_a, "eval_b": eval_b},
        extra={"train_labels": train_labels, "eval_labels": eval_labels, "n_factors": n_factors},
    )


def pair_features(codes_a: Any, codes_b: Any) -> Any:
    """``mean over the batch of |codes_a - codes_b|``: ``(n_points, batch_size, D) -> (n_points, D)``."""
    xp = array_namespace(codes_a, codes_b)
    return xp.mean(xp.abs(codes_a - codes_b), axis=1)


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    """Train/eval accuracy of a logistic regression predicting the fixed factor from pair features."""
    _, arrays = plan_codes(plan, codes, ("train_a", "train_b", "eval_a", "eval_b"))
    # float64 as in dlib, which stores the features in a float64 array before fitting.
    train_x = pair_features(arrays["train_a"], arrays["train_b"])
    eval_x = pair_features(arrays["eval_a"], arrays["eval_b"])
    xp = array_namespace(train_x)
    train_x, eval_x = xp.astype(train_x, xp.float64), xp.astype(eval_x, xp.float64)
    train_y = np.asarray(plan.extra["train_labels"])
    eval_y = np.asarray(plan.extra["eval_labels"])
    estimator = "exact_logistic" if is_host_numpy(train_x) else "batched_logistic"
    ran: dict[str, str] | None = {"estimator": estimator, "device": device_name(train_x)}

    if np.unique(train_y).size < 2:
        # LogisticRegression needs two classes; with one, the only sensible classifier predicts it.
        warn_degenerate("beta_vae: every training point fixed the same factor; the classifier predicts it always")
        train_pred = np.full_like(train_y, train_y[0])
        eval_pred = np.full_like(eval_y, train_y[0])
        ran = None
    else:
        if float(xp.max(xp.max(train_x, axis=0) - xp.min(train_x, axis=0))) == 0.0:
            warn_degenerate("beta_vae: the pair features do not vary (constant codes?); the classifier can only "
                            "predict one factor, so the accuracy is about 1 / n_factors")
        train_pred, eval_pred = _fit_predict(train_x, train_y, eval_x)
    return Scored(
        {
            "train_accuracy": float(np.mean(train_pred == train_y)),
            "eval_accuracy": float(np.mean(eval_pred == eval_y)),
        },
        estimator=ran,
    )


def _fit_predict(train_x: Any, train_y: np.ndarray, eval_x: Any) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``LogisticRegression()`` fitted on the pair features; host predictions on both sets.

    NumPy features: scikit-learn's iterates on the host (the same scipy L-BFGS-B call, objective,
    options and start, on a cheaper loss; dbench/estimators/exact_logistic/). Features on a device
    (torch, CuPy, array_api_strict): the same objective solved to its optimum there
    (dbench/estimators/device_logistic.py; agreement in docs/gpu.md).
    """
    if is_host_numpy(train_x):
        from dbench.estimators.exact_logistic import exact_logistic_regression
        from dbench.estimators.threads import single_blas_thread

        with single_blas_thread():
            model = exact_logistic_regression(train_x, train_y)
            return model.predict(train_x), model.predict(eval_x)
    from dbench.estimators.device_logistic import fit_logistic_on_backend

    on_device = fit_logistic_on_backend(train_x, train_y)
    return on_device.predict(train_x)[:, 0], on_device.predict(eval_x)[:, 0]


SPEC = MetricSpec(
    name="beta_vae",
    description="Higgins et al. (2017) beta-VAE score: logistic-regression accuracy at naming the fixed factor",
    params=PARAMS,
    scores=(
        ScoreKey("train_accuracy", 0.0, 1.0, True, "accuracy at naming the fixed factor on the training points"),
        ScoreKey("eval_accuracy", 0.0, 1.0, True, "accuracy at naming the fixed factor on fresh points"),
    ),
    plan_fn=_plan,
    score_fn=_score,
    rules=RULES,
)


def beta_vae(
    dataset: GroundTruthDataset | str,
    encoder: Any,
    *,
    seed: int,
    batch_size: int = PARAMS["batch_size"].default,
    n_train: int = PARAMS["n_train"].default,
    n_eval: int = PARAMS["n_eval"].default,
) -> dict[str, float]:
    """Higgins et al.'s beta-VAE score of ``encoder`` on ``dataset``.

    Parameters
    ----------
    dataset : GroundTruthDataset or str
        The dataset, or its registry name.
    encoder : Encoder or anything the encoder loader accepts
        Maps float32 ``(N, C, H, W)`` images to ``(N, D)`` codes (the mean, when it also returns a
        log-variance).
    seed : int
        Seed of the ``numpy.random.Generator`` that draws every sample.
    batch_size, n_train, n_eval : int
        Pairs per point, training points, evaluation points (dlib's defaults).

    Returns
    -------
    dict
        ``{"train_accuracy": float, "eval_accuracy": float}``, each in [0, 1]; chance is about
        ``1 / n_factors``.

    References
    ----------
    Higgins et al. (2017), "beta-VAE: Learning basic visual concepts with a constrained variational
    framework", ICLR.

    Examples
    --------
    A hand-made encoder that codes the sprite's position and area knows three of tiny dSprites' five
    factors (pos_x, pos_y, scale), not shape or orientation; chance is 1/5:

    >>> import numpy as np
    >>> from dbench.metrics import beta_vae
    >>> def sprite_position_and_size(images):
    ...     mass = images.sum(axis=(1, 2, 3))
    ...     rows, cols = np.indices(images.shape[-2:])
    ...     x = (images[:, 0] * cols).sum(axis=(1, 2)) / mass
    ...     y = (images[:, 0] * rows).sum(axis=(1, 2)) / mass
    ...     return np.stack([x, y, mass], axis=1)
    >>> scores = beta_vae("tiny_dsprites", sprite_position_and_size, seed=0, batch_size=16, n_train=300, n_eval=150)
    >>> round(scores["eval_accuracy"], 2)
    0.79
    """
    overrides = {"batch_size": batch_size, "n_train": n_train, "n_eval": n_eval}
    return run_standalone(SPEC, dataset, encoder, seed, overrides)
