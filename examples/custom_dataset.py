"""Define your own ground-truth dataset for dbench: a bar on a 64x64 canvas with two factors.

Run: python examples/custom_dataset.py

A dataset is any object with the attributes and methods of ``dbench.datasets.GroundTruthDataset``;
no base class is needed. The grid's flat index is row-major over ``factor_sizes`` (last factor fastest)
and ``images(indices)`` must return the same image for the same index every time.
"""

from __future__ import annotations

import numpy as np

from dbench.datasets import GroundTruthDataset, num_observations, sample_factors, sample_observations_from_factors


class Bars:
    """A vertical white bar: factor 0 is its width (1..4 px), factor 1 its column position (16 values)."""

    name = "bars"
    factor_names = ("width", "pos_x")
    factor_sizes = (4, 16)
    observation_shape = (1, 64, 64)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack([factors[:, 0] + 1.0, factors[:, 1] / 15.0], axis=1)

    def images(self, indices: np.ndarray) -> np.ndarray:
        width, pos = np.unravel_index(np.asarray(indices, dtype=np.int64), self.factor_sizes)
        left = 8 + 3 * pos  # first column of the bar
        cols = np.arange(64)
        on = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + width + 1)[:, None])  # (n, 64)
        out = np.zeros((len(width),) + self.observation_shape, dtype=np.float32)
        out[:, 0, 16:48, :] = on[:, None, :]
        return out


def main() -> None:
    bars = Bars()
    assert isinstance(bars, GroundTruthDataset), "Bars does not satisfy the dataset protocol"
    factors = sample_factors(bars, 5, np.random.default_rng(0))
    images = sample_observations_from_factors(bars, factors)
    print(f"{bars.name}: {num_observations(bars)} observations, factors {bars.factor_names} sizes {bars.factor_sizes}")
    print(f"sampled factors:\n{factors}")
    print(f"values:\n{bars.factor_values(factors)}")
    print(f"images {images.shape} {images.dtype}, lit pixels per image {images.sum(axis=(1, 2, 3)).tolist()}")


if __name__ == "__main__":
    main()
