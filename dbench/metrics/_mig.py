"""Mutual Information Gap (Chen et al. 2018), as computed by disentanglement_lib.

MIG asks, for each factor, how much more the most informative latent knows about it than the runner-up:

    MIG = mean_k  (I(z_(1); v_k) - I(z_(2); v_k)) / H(v_k)

with ``z_(1), z_(2)`` the latents with the largest and second-largest mutual information with factor
``v_k``. As in disentanglement_lib (``evaluation/metrics/mig.py``), each latent is discretised into 20
equal-width histogram bins and the information is the plug-in discrete estimate in nats
(``sklearn.metrics.mutual_info_score``).

References
----------
Chen, Li, Grosse, Duvenaud. Isolating Sources of Disentanglement in Variational Autoencoders.
NeurIPS 2018. https://arxiv.org/abs/1802.04942
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._aggregate import top_two_gap
from dbench.metrics._constraints import Interval
from dbench.metrics._discretize import mutual_information_codes_factors
from dbench.metrics._plans import plan_factor_samples, split_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import (
    check_pair,
    warn_degenerate,
    warn_if_constant_codes,
)

# disentanglement_lib study defaults: mig.num_train = 10000, discretizer.num_bins = 20.
PARAMS = Params(
    n_train=Param(
        10_000, Interval(int, 2, 10_000_000), "i.i.d. (code, factor) samples the score is computed on", sample_size=True
    ),
    n_bins=Param(20, Interval(int, 1, 1000), "equal-width histogram bins per latent"),
)


def mig(codes: Any, factors: Any, *, n_bins: int = PARAMS["n_bins"].default) -> dict[str, float]:
    """Mutual Information Gap of ``codes`` ``(n_samples, n_latents)`` w.r.t. integer ``factors`` ``(n_samples, n_factors)``.

    Each latent is binned into ``n_bins`` equal-width bins (dlib's ``_histogram_discretize``), the
    discrete mutual information with every factor is computed in nats, and per factor the gap between
    the two most informative latents is divided by the factor's entropy; MIG is the mean over factors.
    With a single latent the gap is its information (the runner-up counts as 0).

    A factor with one value has zero entropy: dlib returns NaN; here its gap counts as 0 and a
    :class:`~dbench.metrics.DegenerateInputWarning` is issued.

    Returns
    -------
    dict
        ``{"mig": float}`` in ``[0, 1]``.

    Examples
    --------
    The factors themselves as codes: each latent knows its factor fully, the runner-up knows a little
    by chance (the plug-in estimate of an independent pair's information is positive on a finite
    sample), so MIG is just below 1:

    >>> import numpy as np
    >>> from dbench.metrics import mig
    >>> factors = np.random.default_rng(0).integers(0, 5, size=(1000, 2))
    >>> round(mig(factors.astype(float), factors)["mig"], 3)
    0.995

    Codes that ignore the factors score about 0:

    >>> noise = np.random.default_rng(1).normal(size=(1000, 2))
    >>> round(mig(noise, factors)["mig"], 3)
    0.004
    """
    xp = check_pair(codes, factors)
    SPEC.validate({"n_bins": n_bins})
    warn_if_constant_codes(xp, codes, "mig")
    mi, entropy = mutual_information_codes_factors(codes, factors, n_bins)
    gaps = top_two_gap(mi)
    constant = entropy <= 0
    if bool(xp.any(constant)):
        warn_degenerate("mig: a factor takes a single value (zero entropy); its gap counts as 0")
    normalised = xp.where(constant, xp.zeros_like(gaps), gaps / xp.where(constant, 1.0, entropy))
    return {"mig": float(xp.mean(normalised))}


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": params["n_train"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    ((train_codes, train_factors),) = split_codes(plan, codes, ("train",))
    return Scored(mig(train_codes, train_factors, n_bins=params["n_bins"]))


SPEC = MetricSpec(
    name="mig",
    description="Mutual Information Gap (Chen et al. 2018), 20-bin histogram MI normalised by factor entropy",
    params=PARAMS,
    scores=(ScoreKey("mig", 0.0, 1.0, True, "mean over factors of the top-two latent MI gap / factor entropy"),),
    plan_fn=_plan,
    score_fn=_score,
)
