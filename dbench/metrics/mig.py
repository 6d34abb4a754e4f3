"""Mutual Information Gap (Chen et al. 2018), as computed by disentanglement_lib.

MIG asks, for each factor, how much more the most informative latent knows about it than the runner-up:

    MIG = mean_k  (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)

with ``z_(1), z_(2)`` the latents with the largest and second-largest mutual information with factor
``v_k``. As in disentanglement_lib (``evaluation/metrics/mig.py``), each latent is discretised into 20
equal-width histogram bins and the information is the plug-in discrete estimate in nats
(``sklearn.metrics.mutual_info_score``).

This module also holds :func:`plan_factor_samples` / :func:`split_codes`, the sampling plan shared by
the array-level metrics that only need i.i.d. ``(code, factor)`` pairs (MIG, SAP, modularity, IRS,
unsupervised scores).

References
----------
Chen, Li, Grosse, Duvenaud. Isolating Sources of Disentanglement in Variational Autoencoders.
NeurIPS 2018. https://arxiv.org/abs/1802.04942
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench.datasets.base import GroundTruthDataset, factors_to_indices, sample_factors
from dbench.metrics._discretize import compact_labels, discrete_entropy, histogram_discretize, mutual_info_matrix
from dbench.metrics._sampling import check_int_param, plan_codes
from dbench.metrics._validation import check_pair, warn_degenerate
from dbench.metrics.spec import MetricSpec, Plan


def plan_factor_samples(dataset: GroundTruthDataset, rng: np.random.Generator, sizes: Mapping[str, int]) -> Plan:
    """Draw i.i.d. factor vectors for each split (in the order given, as dlib draws train then test).

    ``requests[split]`` holds their flat indices and ``extra[split]`` the int64 factor indices.
    """
    requests, extra = {}, {}
    for split, n in sizes.items():
        factors = sample_factors(dataset, n, rng)
        requests[split] = factors_to_indices(dataset, factors)
        extra[split] = factors
    return Plan(requests=requests, extra=extra)


def split_codes(plan: Plan, codes: Mapping[str, Any], splits: tuple[str, ...]) -> list[tuple[Any, Any]]:
    """``(codes, factors)`` per split, the factors moved into the codes' namespace and device."""
    xp, checked = plan_codes(plan, codes, splits)
    pairs = []
    for split in splits:
        array = checked[split]
        pairs.append((array, xp.asarray(np.asarray(plan.extra[split]), device=device_of(array))))
    return pairs


def check_train_test(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any) -> Any:
    """Validate a train and a test ``(codes, factors)`` pair with matching widths; return the namespace."""
    xp = check_pair(codes_train, factors_train, codes_name="codes_train", factors_name="factors_train")
    check_pair(codes_test, factors_test, codes_name="codes_test", factors_name="factors_test")
    if codes_train.shape[1] != codes_test.shape[1]:
        raise ValueError(f"codes_test has {codes_test.shape[1]} latents but codes_train has {codes_train.shape[1]}")
    if factors_train.shape[1] != factors_test.shape[1]:
        raise ValueError(f"factors_test has {factors_test.shape[1]} factors but factors_train has {factors_train.shape[1]}")
    return xp


def mutual_information_codes_factors(codes: Any, factors: Any, n_bins: int) -> tuple[Any, Any]:
    """dlib's ``discrete_mutual_info`` and ``discrete_entropy``: ``(MI (D, K), H(factors) (K,))`` in nats."""
    code_labels = histogram_discretize(codes, n_bins)
    factor_labels, factor_levels = compact_labels(factors)
    mi = mutual_info_matrix(code_labels, (n_bins,) * codes.shape[1], factor_labels, factor_levels)
    return mi, discrete_entropy(factor_labels, factor_levels)


def warn_if_constant_codes(xp: Any, codes: Any, metric: str) -> None:
    """Warn (degenerate input) when every latent is constant: no latent can carry information."""
    if bool(xp.all(xp.max(codes, axis=0) == xp.min(codes, axis=0))):
        warn_degenerate(f"{metric}: every latent is constant; the codes carry no information")


def top_two_gap(scores: Any) -> Any:
    """Per column of ``scores`` ``(D, K)``: largest minus second largest over rows (0 with one row)."""
    xp = array_namespace(scores)
    if scores.shape[0] < 2:
        # A single latent has no runner-up; dlib would index out of bounds. Its gap is itself minus 0.
        return scores[0, :]
    ordered = xp.sort(scores, axis=0)
    return ordered[-1, :] - ordered[-2, :]


def mig(codes: Any, factors: Any, *, n_bins: int = 20) -> dict[str, float]:
    """Mutual Information Gap of ``codes`` ``(n_samples, n_latents)`` w.r.t. integer ``factors`` ``(n_samples, n_factors)``.

    Each latent is binned into ``n_bins`` equal-width bins (dlib's ``_histogram_discretize``), the
    discrete mutual information with every factor is computed in nats, and per factor the gap between
    the two most informative latents is divided by the factor's entropy; MIG is the mean over factors.
    With a single latent the gap is its information (the runner-up counts as 0).

    A factor with one value has zero entropy: dlib returns NaN; here its gap counts as 0 and a
    :class:`~dbench.metrics._validation.DegenerateInputWarning` is issued.

    Returns
    -------
    dict
        ``{"mig": float}`` in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> factors = np.random.default_rng(0).integers(0, 5, size=(1000, 2))
    >>> round(mig(factors.astype(float), factors)["mig"], 3)
    1.0
    """
    xp = check_pair(codes, factors)
    n_bins = check_int_param({"n_bins": n_bins}, "n_bins", 1)
    warn_if_constant_codes(xp, codes, "mig")
    mi, entropy = mutual_information_codes_factors(codes, factors, n_bins)
    gaps = top_two_gap(mi)
    constant = entropy <= 0
    if bool(xp.any(constant)):
        warn_degenerate("mig: a factor takes a single value (zero entropy); its gap counts as 0")
    normalised = xp.where(constant, xp.zeros_like(gaps), gaps / xp.where(constant, 1.0, entropy))
    return {"mig": float(xp.mean(normalised))}


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": check_int_param(params, "n_train", 2)})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, float]:
    ((train_codes, train_factors),) = split_codes(plan, codes, ("train",))
    return mig(train_codes, train_factors, n_bins=params["n_bins"])


SPEC = MetricSpec(
    name="mig",
    # disentanglement_lib study defaults: mig.num_train = 10000, discretizer.num_bins = 20.
    defaults={"n_train": 10_000, "n_bins": 20},
    plan=_plan,
    score=_score,
    description="Mutual Information Gap (Chen et al. 2018), 20-bin histogram MI normalised by factor entropy",
)
