"""Unsupervised scores of a representation (disentanglement_lib ``unsupervised_metrics.py``).

Need no factor labels, only codes ``(n_samples, n_latents)``:

* ``gaussian_total_correlation``: KL divergence between the Gaussian ``N(0, S)`` fitted to the codes
  (``S`` the sample covariance, ``ddof=1``) and the product of its marginals,
  ``1/2 (sum_i log S_ii - log det S)``.
* ``gaussian_wasserstein_correlation``: squared 2-Wasserstein distance between the same two Gaussians,
  ``2 tr S - 2 tr sqrt(diag(S) S)``; ``..._norm`` divides it by ``tr S``.
* ``mutual_info_score``: mean discrete mutual information (nats, 20-bin histograms) over all ordered
  pairs of distinct latents.

As used by Locatello et al. (2019), "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", ICML 2019.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from dbench._array import to_numpy
from dbench.datasets.base import GroundTruthDataset
from dbench.metrics._constraints import Interval
from dbench.metrics._discretize import histogram_discretize, mutual_info_matrix
from dbench.metrics._plans import plan_factor_samples, split_codes
from dbench.metrics._spec import MetricSpec, Param, Params, Plan, Scored, ScoreKey
from dbench.metrics._validation import check_codes, warn_degenerate

# disentanglement_lib study defaults: unsupervised_metrics.num_train = 10000, 20 histogram bins.
PARAMS = Params(
    n_train=Param(
        10_000, Interval(int, 2, 10_000_000), "codes of i.i.d. observations the scores are computed on", sample_size=True
    ),
    n_bins=Param(20, Interval(int, 1, 1000), "equal-width histogram bins per latent for the pairwise mutual information"),
)


def _covariance(xp: Any, codes: Any) -> Any:
    """Sample covariance ``(D, D)`` with ``ddof=1`` (``np.cov`` of dlib's transposed codes)."""
    centred = codes - xp.mean(codes, axis=0)[None, :]
    return xp.matmul(xp.matrix_transpose(centred), centred) / (codes.shape[0] - 1)


def gaussian_total_correlation(cov: Any) -> Any:
    """Total correlation ``1/2 (sum log diag(cov) - log det cov)`` of ``N(0, cov)`` (nats)."""
    xp = array_namespace(cov)
    _, logdet = xp.linalg.slogdet(cov)
    return 0.5 * (xp.sum(xp.log(xp.linalg.diagonal(cov))) - logdet)


def gaussian_wasserstein_correlation(cov: Any) -> Any:
    """``2 tr(cov) - 2 tr(sqrtm(diag(cov)[:, None] * cov))``.

    ``diag(v) cov`` is similar to the symmetric ``diag(v)^(1/2) cov diag(v)^(1/2)``, so the trace of its
    principal square root (what dlib takes with ``scipy.linalg.sqrtm``) is the sum of the square roots
    of that symmetric matrix's eigenvalues: same value, no complex arithmetic, any backend.
    """
    xp = array_namespace(cov)
    root_var = xp.sqrt(xp.linalg.diagonal(cov))
    symmetric = root_var[:, None] * cov * root_var[None, :]
    eigenvalues = xp.clip(xp.linalg.eigvalsh(symmetric), min=0.0)
    return 2.0 * xp.sum(xp.linalg.diagonal(cov)) - 2.0 * xp.sum(xp.sqrt(eigenvalues))


def unsupervised(codes: Any, *, n_bins: int = PARAMS["n_bins"].default) -> dict[str, float]:
    """Gaussian total correlation, Gaussian Wasserstein correlation (raw and normalised) and mean pairwise MI.

    Parameters
    ----------
    codes : array (n_samples, n_latents)
    n_bins : int
        Histogram bins per latent for the mutual-information score (dlib: 20).

    Returns
    -------
    dict
        ``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``,
        ``gaussian_wasserstein_correlation_norm``, ``mutual_info_score``.

    Degenerate input (warned with :class:`~dbench.metrics.DegenerateInputWarning`, where
    dlib returns NaN): constant latents are left out of the total correlation (a constant is
    independent of everything, so it adds no correlation); all-constant codes give 0 for the
    normalised Wasserstein score; a single latent has no pairs, so its mutual-information score is 0.

    Examples
    --------
    Independent latents have (up to sampling noise) no total correlation; a near copy of a latent
    has a lot:

    >>> import numpy as np
    >>> from dbench.metrics import unsupervised
    >>> z = np.random.default_rng(0).normal(size=(2000, 2))
    >>> round(unsupervised(z)["gaussian_total_correlation"], 3)
    0.001
    >>> copied = np.stack([z[:, 0], z[:, 0] + 0.1 * z[:, 1]], axis=1)
    >>> round(unsupervised(copied)["gaussian_total_correlation"], 2)
    2.31
    """
    check_codes(codes)
    SPEC.validate({"n_bins": n_bins})
    xp = array_namespace(codes)
    if codes.shape[0] < 2:
        raise ValueError(f"codes needs at least 2 samples; got {codes.shape[0]}")
    if not xp.isdtype(codes.dtype, "real floating"):
        codes = xp.astype(codes, xp.float64)
    n_latents = codes.shape[1]
    cov = _covariance(xp, codes)
    variances = xp.linalg.diagonal(cov)
    active = variances > 0
    n_active = int(xp.sum(xp.astype(active, xp.int64)))
    if n_active < n_latents:
        warn_degenerate(f"unsupervised: {n_latents - n_active} constant latent(s) left out of the total correlation")
    if n_active == n_latents:
        total_correlation = gaussian_total_correlation(cov)
    elif n_active > 0:
        keep = np.flatnonzero(to_numpy(active))
        index = xp.asarray(keep, device=device_of(cov))
        total_correlation = gaussian_total_correlation(xp.take(xp.take(cov, index, axis=0), index, axis=1))
    else:
        total_correlation = xp.asarray(0.0)
    wasserstein = gaussian_wasserstein_correlation(cov)
    trace = float(xp.sum(variances))
    if trace > 0:
        wasserstein_norm = float(wasserstein) / trace
    else:
        warn_degenerate("unsupervised: all latents are constant; gaussian_wasserstein_correlation_norm is 0")
        wasserstein_norm = 0.0

    if n_latents > 1:
        labels = histogram_discretize(codes, n_bins)
        levels = (n_bins,) * n_latents
        mi = mutual_info_matrix(labels, levels, labels, levels)
        off_diagonal = xp.sum(mi) - xp.sum(xp.linalg.diagonal(mi))
        mutual_info = float(off_diagonal) / (n_latents**2 - n_latents)
    else:
        warn_degenerate("unsupervised: a single latent has no pairs; mutual_info_score is 0")
        mutual_info = 0.0
    return {
        "gaussian_total_correlation": float(total_correlation),
        "gaussian_wasserstein_correlation": float(wasserstein),
        "gaussian_wasserstein_correlation_norm": wasserstein_norm,
        "mutual_info_score": mutual_info,
    }


def _plan(dataset: GroundTruthDataset, rng: np.random.Generator, params: Mapping[str, Any]) -> Plan:
    # dlib samples (factor, observation) pairs and ignores the factors; so do we.
    return plan_factor_samples(dataset, rng, {"train": params["n_train"]})


def _score(plan: Plan, codes: Mapping[str, Any], params: Mapping[str, Any]) -> Scored:
    ((train_codes, _),) = split_codes(plan, codes, ("train",))
    return Scored(unsupervised(train_codes, n_bins=params["n_bins"]))


SPEC = MetricSpec(
    name="unsupervised",
    description="Gaussian total correlation, Gaussian Wasserstein correlation, mean pairwise discrete MI",
    params=PARAMS,
    scores=(
        ScoreKey("gaussian_total_correlation", 0.0, math.inf, False, "KL of the fitted Gaussian from its marginals (nats)"),
        ScoreKey("gaussian_wasserstein_correlation", 0.0, math.inf, False, "squared 2-Wasserstein distance to the marginals"),
        # 2 tr S - 2 tr sqrt(diag(S) S) over tr S: below 2 since the square root's trace is >= 0 (it
        # exceeds 1 for many strongly correlated latents: 2 - 2 / sqrt(D) for D copies of one latent).
        ScoreKey("gaussian_wasserstein_correlation_norm", 0.0, 2.0, False, "the Wasserstein correlation over tr S"),
        ScoreKey("mutual_info_score", 0.0, math.inf, False, "mean discrete MI over ordered pairs of latents (nats)"),
    ),
    plan_fn=_plan,
    score_fn=_score,
)
