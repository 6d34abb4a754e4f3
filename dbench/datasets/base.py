"""The ground-truth dataset contract and the index arithmetic shared by every dataset.

A ground-truth dataset is a full grid of factor combinations (as in disentanglement_lib's
``GroundTruthData``, Locatello et al. 2019). Every observation has a *flat index*: its position in the
grid in row-major order, the last factor varying fastest. Flat indices are what the encode-once code
table is keyed by, so ``images(indices)`` must be a pure function of the indices.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class GroundTruthDataset(Protocol):
    """What dbench needs from a dataset with known generative factors.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"dsprites"``.
    factor_names : tuple[str, ...]
        One name per factor, in grid order (the last one varies fastest in the flat index).
    factor_sizes : tuple[int, ...]
        Number of values of each factor.
    observation_shape : tuple[int, int, int]
        ``(C, H, W)`` of one image.
    """

    # Read-only (properties for type checkers): a dataset may store them as attributes or properties.
    @property
    def name(self) -> str: ...
    @property
    def factor_names(self) -> tuple[str, ...]: ...
    @property
    def factor_sizes(self) -> tuple[int, ...]: ...
    @property
    def observation_shape(self) -> tuple[int, int, int]: ...

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Real-valued factor values, float64 ``(n, n_factors)``, for integer factor indices ``(n, n_factors)``."""
        ...

    def images(self, indices: np.ndarray) -> np.ndarray:
        """Observations for flat indices ``(n,)``: float32 ``(n, C, H, W)`` in [0, 1], deterministic per index."""
        ...


def num_observations(dataset: GroundTruthDataset) -> int:
    """Number of factor combinations (the size of the grid)."""
    return int(np.prod(np.asarray(dataset.factor_sizes, dtype=np.int64)))


def factors_to_indices(dataset: GroundTruthDataset, factors: np.ndarray) -> np.ndarray:
    """Flat indices ``(n,)`` int64 of integer factor vectors ``(n, n_factors)`` (last factor fastest)."""
    factors = np.asarray(factors, dtype=np.int64)
    sizes = np.asarray(dataset.factor_sizes, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != sizes.size:
        raise ValueError(f"factors must have shape (n, {sizes.size}); got {factors.shape}")
    if np.any(factors < 0) or np.any(factors >= sizes):
        raise ValueError(f"factor indices out of range for factor sizes {tuple(sizes.tolist())}")
    return np.ravel_multi_index(tuple(factors.T), tuple(sizes.tolist())).astype(np.int64)


def indices_to_factors(dataset: GroundTruthDataset, indices: np.ndarray) -> np.ndarray:
    """Integer factor vectors ``(n, n_factors)`` int64 of flat indices ``(n,)``."""
    indices = np.asarray(indices, dtype=np.int64)
    return np.stack(np.unravel_index(indices, tuple(dataset.factor_sizes)), axis=-1).astype(np.int64)


def sample_factors(dataset: GroundTruthDataset, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` factor vectors, each factor uniform over its values independently (int64 ``(n, K)``)."""
    sizes = np.asarray(dataset.factor_sizes, dtype=np.int64)
    return rng.integers(0, sizes, size=(n, sizes.size), dtype=np.int64)


def sample_observations_from_factors(dataset: GroundTruthDataset, factors: np.ndarray) -> np.ndarray:
    """Images for integer factor vectors (float32 ``(n, C, H, W)``)."""
    return dataset.images(factors_to_indices(dataset, factors))
