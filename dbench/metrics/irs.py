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

from typing import Any, Mapping

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._discretize import compact_labels, histogram_discretize
from dbench.metrics._sampling import check_int_param
from dbench.metrics._validation import check_pair, warn_degenerate
from dbench.metrics.mig import plan_factor_samples, split_codes
from dbench.metrics.spec import MetricSpec, Plan


def _grouped_quantiles(xp: Any, values: Any, labels: Any, n_groups: int, q: float) -> Any:
    """``np.quantile(values[labels == g], q, axis=0)`` (linear interpolation) for every group: ``(G, D)``.

    One sort per call: each column is sorted by ``(group, value)`` by adding a per-group offset larger
    than the column's range (non-negative ``values``), then each group's quantile is read from its slice.
    """
    counts = np.bincount(to_numpy(labels), minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    span = xp.max(values, axis=0) + 1.0
    offsets = xp.astype(labels, values.dtype)[:, None] * span[None, :]
    ordered = xp.sort(values + offsets, axis=0)
    position = q * (counts - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, counts - 1)
    device = device_of(values)
    group_offsets = xp.asarray(np.arange(n_groups), dtype=values.dtype, device=device)[:, None] * span[None, :]
    low_values = xp.take(ordered, xp.asarray(starts + low, device=device), axis=0) - group_offsets
    high_values = xp.take(ordered, xp.asarray(starts + high, device=device), axis=0) - group_offsets
    fraction = xp.asarray(position - low, dtype=values.dtype, device=device)[:, None]
    return low_values + (high_values - low_values) * fraction


def irs_matrix(codes: Any, factor_labels: Any, levels: tuple[int, ...], diff_quantile: float) -> tuple[Any, Any]:
    """IRS matrix ``(D, K)`` (``1 - normalised deviation``) and each latent's largest deviation ``(D,)``.

    ``codes`` must have no constant column; ``factor_labels`` is a level array (see
    :func:`dbench.metrics._discretize.compact_labels`), every level observed.
    """
    xp = array_namespace(codes)
    device = device_of(codes)
    max_deviations = xp.max(xp.abs(codes - xp.mean(codes, axis=0)[None, :]), axis=0)
    columns = []
    for i, n_values in enumerate(levels):
        labels = factor_labels[:, i]
        one_hot = xp.astype(labels[:, None] == xp.arange(n_values, device=device)[None, :], codes.dtype)
        # E[z | v_i = g] for every group g at once.
        centres = xp.matmul(xp.matrix_transpose(one_hot), codes) / xp.sum(one_hot, axis=0)[:, None]
        deviations = xp.abs(codes - xp.matmul(one_hot, centres))
        quantiles = _grouped_quantiles(xp, deviations, labels, n_values, diff_quantile)
        columns.append(xp.mean(quantiles, axis=0))
    cumulative = xp.stack(columns, axis=1)
    return 1.0 - cumulative / max_deviations[:, None], max_deviations


def irs(codes: Any, factors: Any, *, diff_quantile: float = 0.99, n_bins: int = 20) -> dict[str, float]:
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
    """
    xp = check_pair(codes, factors)
    n_bins = check_int_param({"n_bins": n_bins}, "n_bins", 1)
    if isinstance(diff_quantile, bool) or not 0.0 < float(diff_quantile) <= 1.0:
        raise ValueError(f"diff_quantile must be in (0, 1]; got {diff_quantile!r}")
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
    return plan_factor_samples(dataset, rng, {"train": check_int_param(params, "n_train", 2)})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, float]:
    ((train_codes, train_factors),) = split_codes(plan, codes, ("train",))
    return irs(train_codes, train_factors, diff_quantile=params["diff_quantile"], n_bins=params["n_bins"])


SPEC = MetricSpec(
    name="irs",
    # disentanglement_lib study defaults: irs.num_train = 10000, irs.diff_quantile = 0.99, 20 bins.
    defaults={"n_train": 10_000, "diff_quantile": 0.99, "n_bins": 20},
    plan=_plan,
    score=_score,
    description="Interventional Robustness Score (Suter et al. 2019), dlib's 0.99-quantile variant",
)
