"""scikit-learn's model-selection conventions shared by both logistic solvers: folds and the ``C`` grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def kfold_masks(n_samples: int, n_folds: int) -> np.ndarray:
    """Held-out masks ``(n_folds, n_samples)`` of scikit-learn's ``KFold(n_folds)`` without shuffling.

    Consecutive blocks; the first ``n_samples % n_folds`` folds hold one extra sample.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2; got {n_folds}")
    if n_samples < n_folds:
        raise ValueError(f"cannot split {n_samples} samples into {n_folds} folds; use more samples or fewer folds")
    sizes = np.full(n_folds, n_samples // n_folds)
    sizes[: n_samples % n_folds] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    masks = np.zeros((n_folds, n_samples), dtype=bool)
    for j in range(n_folds):
        masks[j, bounds[j] : bounds[j + 1]] = True
    return masks


def c_grid(Cs: int | Sequence[float]) -> np.ndarray:
    """scikit-learn's ``Cs``: an int means ``np.logspace(-4, 4, Cs)``."""
    if isinstance(Cs, (int, np.integer)):
        if Cs < 1:
            raise ValueError(f"Cs must be a positive int or a list of positive floats; got {Cs}")
        return np.logspace(-4, 4, int(Cs))
    grid = np.asarray(Cs, dtype=np.float64).ravel()
    if grid.size == 0 or np.any(grid <= 0):
        raise ValueError("Cs must be a positive int or a non-empty list of positive floats")
    return grid
