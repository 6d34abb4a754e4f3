"""Reductions of a ``(n_latents, n_factors)`` score matrix shared by several metrics."""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace


def top_two_gap(scores: Any) -> Any:
    """Per column of ``scores`` ``(D, K)``: largest minus second largest over rows (0 with one row).

    MIG's and SAP's gap between the best and the runner-up latent of each factor.
    """
    xp = array_namespace(scores)
    if scores.shape[0] < 2:
        # A single latent has no runner-up; dlib would index out of bounds. Its gap is itself minus 0.
        return scores[0, :]
    ordered = xp.sort(scores, axis=0)
    return ordered[-1, :] - ordered[-2, :]
