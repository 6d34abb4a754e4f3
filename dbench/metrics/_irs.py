"""Interventional Robustness Score (Suter et al. 2019), as computed by disentanglement_lib ``irs.py``.

For latent ``j`` and factor ``i``, IRS measures how little ``z_j`` moves when every factor except
``v_i`` varies: over the groups of samples sharing one value of ``v_i``, the ``diff_quantile``
quantile of ``|z_j - E[z_j | v_i]|`` is averaged, divided by the latent's largest deviation from its
mean ``max |z_j - E[z_j]|``, and subtracted from 1. Each latent scores its best factor; the IRS is the
average of those scores weighted by the latents' largest deviations. Constant latents are dropped first.

disentanglement_lib details kept here:

* the *factors* are histogram-discretised into ``n_bins`` (20) bins before grouping, so a factor with
  more than ~20 values (dSprites' 32 positions, 40 orientations) is grouped into coarser bins;
* quantiles use linear interpolation (``np.quantile``'s default);
* ``diff_quantile=0.99`` (the paper's version is ``1.0``).

References
----------
Suter, Miladinović, Schölkopf, Bauer. Robustly Disentangled Causal Mechanisms: Validating Deep
Representations for Interventional Robustness. ICML 2019. https://arxiv.org/abs/1811.00007
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace
from array_api_compat import device as device_of

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._constraints import Interval
from dbench.metrics._discretize import compact_labels, histogram_discretize
from dbench.metrics._plans import plan_factor_samples, split_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import check_pair, warn_degenerate

# disentanglement_lib study defaults: irs.num_train = 10000, irs.diff_quantile = 0.99, 20 bins.
PARAMS = Params(
    n_train=Param(
        10_000, Interval(int, 2, 10_000_000), "i.i.d. (code, factor) samples the score is computed on", sample_size=True
    ),
    diff_quantile=Param(0.99, Interval(float, 0.0, 1.0, closed="right"), "quantile of within-group deviations (paper: 1.0)"),
    n_bins=Param(20, Interval(int, 1, 1000), "histogram bins the factors are discretised into before grouping"),
)


def _quantile(xp: Any, values: Any, q: float) -> Any:
    """Column-wise ``np.quantile(values, q, axis=0)`` with linear interpolation (the default method)."""
    position = q * (values.shape[0] - 1)
    low = int(np.floor(position))
    high = min(low + 1, values.shape[0] - 1)
    if is_numpy_namespace(xp):
        # NumPy fast path: a partial sort (as np.quantile does) puts the two order statistics in place.
        ordered = np.partition(values, [low, high], axis=0)
    else:
        ordered = xp.sort(values, axis=0)
    return ordered[low, :] + (ordered[high, :] - ordered[low, :]) * (position - low)


def irs_matrix(codes: Any, factor_labels: Any, levels: tuple[int, ...], diff_quantile: float) -> tuple[Any, Any]:
    """IRS matrix ``(D, K)`` (``1 - normalised deviation``) and each latent's largest deviation ``(D,)``.

    ``codes`` must have no constant column; ``factor_labels`` is a level array (see
    :func:`dbench.metrics._discretize.compact_labels`), every level observed.
    """
    xp = array_namespace(codes)
    max_deviations = xp.max(xp.abs(codes - xp.mean(codes, axis=0)[None, :]), axis=0)
    columns = []
    for i, n_values in enumerate(levels):
        labels = factor_labels[:, i]
        # Put each group's rows next to each other once; then every group is a contiguous slice.
        order = xp.argsort(labels, stable=True)
        grouped = xp.take(codes, order, axis=0)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(to_numpy(labels), minlength=n_values))])
        total = xp.zeros_like(max_deviations)
        for g in range(n_values):
            group = grouped[int(bounds[g]) : int(bounds[g + 1]), :]
            deviations = xp.abs(group - xp.mean(group, axis=0)[None, :])  # |z - E[z | v_i = g]|
            total = total + _quantile(xp, deviations, diff_quantile)
        columns.append(total / n_values)
    cumulative = xp.stack(columns, axis=1)
    return 1.0 - cumulative / max_deviations[:, None], max_deviations


def irs(
    codes: Any,
    factors: Any,
    *,
    diff_quantile: float = PARAMS["diff_quantile"].default,
    n_bins: int = PARAMS["n_bins"].default,
) -> dict[str, float]:
    """Interventional Robustness Score of ``codes`` ``(n_samples, n_latents)`` w.r.t. integer ``factors``.

    Parameters
    ----------
    codes : array (n_samples, n_latents)
    factors : integer array (n_samples, n_factors)
    diff_quantile : float in (0, 1]
        Quantile of within-group deviations (dlib 0.99; the paper uses 1.0).
    n_bins : int
        Histogram bins the factors are discretised into before grouping (dlib: 20).

    Returns
    -------
    dict
        ``irs`` (at most 1; 0 when every latent is constant) and ``num_active_dims``, the number of
        non-constant latents. disentanglement_lib's ``num_active_dims`` is ``np.sum(active_mus)``,
        the sum of the active codes' *values* (a bug); we report the count its name promises.

    Examples
    --------
    Latents that each follow one factor move little when the other factors vary:

    >>> import numpy as np
    >>> from dbench.metrics import irs
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(1000, 2))
    >>> scores = irs(factors + 0.05 * rng.normal(size=(1000, 2)), factors)
    >>> round(scores["irs"], 3), scores["num_active_dims"]
    (0.929, 2.0)
    """
    xp = check_pair(codes, factors)
    SPEC.validate({"diff_quantile": diff_quantile, "n_bins": n_bins})
    if not xp.isdtype(codes.dtype, "real floating"):
        codes = xp.astype(codes, xp.float64)
    active = xp.var(codes, axis=0) > 0
    n_active = int(xp.sum(xp.astype(active, xp.int64)))
    if n_active == 0:
        warn_degenerate("irs: every latent is constant; IRS is 0")
        return {"irs": 0.0, "num_active_dims": 0.0}
    if n_active < codes.shape[1]:
        keep = np.flatnonzero(to_numpy(active))
        codes = xp.take(codes, xp.asarray(keep, device=device_of(codes)), axis=1)
    factor_labels, levels = compact_labels(histogram_discretize(factors, n_bins))
    if min(levels) < 2:
        warn_degenerate("irs: a factor takes a single value; its column of the IRS matrix is vacuous")
    matrix, max_deviations = irs_matrix(codes, factor_labels, levels, float(diff_quantile))
    per_latent = xp.max(matrix, axis=1)
    score = xp.sum(per_latent * max_deviations) / xp.sum(max_deviations)
    return {"irs": float(score), "num_active_dims": float(n_active)}


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    return plan_factor_samples(dataset, rng, {"train": params["n_train"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    ((train_codes, train_factors),) = split_codes(plan, codes, ("train",))
    return Scored(irs(train_codes, train_factors, diff_quantile=params["diff_quantile"], n_bins=params["n_bins"]))


SPEC = MetricSpec(
    name="irs",
    description="Interventional Robustness Score (Suter et al. 2019), dlib's 0.99-quantile variant",
    params=PARAMS,
    scores=(
        ScoreKey("irs", -math.inf, 1.0, True, "deviation-weighted mean over latents of 1 - normalised deviation"),
        ScoreKey("num_active_dims", 0.0, math.inf, None, "latents that are not constant"),
    ),
    plan_fn=_plan,
    score_fn=_score,
)
