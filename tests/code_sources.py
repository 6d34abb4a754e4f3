"""Test helpers shared by the code-table, cache and pipeline tests: a checkable grid and simple encoders.

* :class:`GridDataset` -- a 2-factor grid whose image for index ``i`` is filled with ``i``, so codes
  computed from it say which observation they are for.
* :func:`centroid_mass_codes` -- centroid and mass of each dSprites image: cheap, deterministic codes
  that score well above noise.
"""

from __future__ import annotations

import numpy as np


class GridDataset:
    """A 2-factor grid (10 x 20) whose image for index i is a 1x2x2 array filled with i."""

    factor_names = ("a", "b")
    factor_sizes = (10, 20)
    observation_shape = (1, 2, 2)

    def __init__(self, name: str = "grid") -> None:
        self.name = name

    def factor_values(self, factors):
        return np.asarray(factors, dtype=np.float64)

    def images(self, indices):
        idx = np.asarray(indices, dtype=np.float32)
        return np.broadcast_to(idx[:, None, None, None], (idx.size, 1, 2, 2)).copy()


def centroid_mass_codes(images: np.ndarray) -> np.ndarray:
    """``(N, 3)`` float64: x and y centroid (pixels) and mass of each 64x64 image (channels averaged)."""
    n = images.shape[0]
    img = images.reshape(n, -1, 64, 64).mean(axis=1)
    ys, xs = np.mgrid[0:64, 0:64]
    mass = img.sum(axis=(1, 2)) + 1e-6
    return np.stack([(img * xs).sum(axis=(1, 2)) / mass, (img * ys).sum(axis=(1, 2)) / mass, mass], axis=1)
