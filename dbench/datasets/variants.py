"""Colour-dSprites and Noisy-dSprites (Locatello et al. 2019, disentanglement_lib's ``ColorDSprites`` and
``NoisyDSprites``): the dSprites grid and factors with random, non-factor appearance.

* Colour: the white sprite is multiplied by a colour drawn per observation, each RGB channel uniform in
  [0.5, 1]; the background stays black.
* Noisy: the background is uniform noise in [0, 1), drawn independently per pixel and channel; sprite
  pixels are white (``min(sprite + noise, 1)``).

Both have 3 channels, ``(3, 64, 64)``. The colour and the noise are not factors: they are nuisance.

Randomness comes two ways:

* ``images(indices)`` must be a pure function of the flat index (dbench encodes each observation once
  and keys its code by flat index), so it draws the colour/noise of observation ``i`` from a
  counter-based generator keyed by ``(seed, i)``: same seed and index, same image, whatever the batch.
* ``sample_observations_from_factors(factors, rng)`` draws fresh colour/noise from the given NumPy
  Generator at every call, as disentanglement_lib does.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from dbench.datasets._counter_random import counter_uniform
from dbench.datasets.dsprites import IMAGE_SIZE


class BinarySprites(Protocol):
    """A single-channel binary dataset the variants wrap (procedural or official dSprites)."""

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observation_shape: tuple[int, int, int]

    def factor_values(self, factors: np.ndarray) -> np.ndarray: ...

    def binary_images(self, indices: np.ndarray) -> np.ndarray: ...


class _SpriteVariant:
    """Shared plumbing: delegate the grid to the wrapped binary dataset, add 3-channel appearance."""

    prefix: str
    #: Random numbers drawn per observation by :meth:`_appearance`.
    draws_per_observation: int
    #: Observations per chunk, bounding the temporary hash arrays.
    chunk_size: int

    def __init__(self, base: BinarySprites, *, seed: int = 0) -> None:
        self.base = base
        self.seed = int(seed)
        # The name identifies the images: a different seed gives different images, so a different name.
        self.name = f"{self.prefix}_{base.name}" + (f"_seed{self.seed}" if self.seed else "")
        self.factor_names = base.factor_names
        self.factor_sizes = base.factor_sizes
        _, height, width = base.observation_shape
        self.observation_shape = (3, height, width)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        return self.base.factor_values(factors)

    def images(self, indices: np.ndarray) -> np.ndarray:
        """Float32 ``(n, 3, 64, 64)`` in [0, 1]; the random appearance is a pure function of ``(seed, index)``."""
        indices = np.asarray(indices)
        sprites = self.base.binary_images(indices)
        flat = indices.astype(np.int64).reshape(-1)
        out = np.empty((flat.size,) + self.observation_shape, dtype=np.float32)
        for start in range(0, flat.size, self.chunk_size):
            stop = start + self.chunk_size
            uniforms = counter_uniform(self.seed, flat[start:stop], self.draws_per_observation)
            self._appearance(sprites[start:stop], uniforms, out=out[start:stop])
        return out

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Images for integer factor vectors ``(n, K)`` with colour/noise drawn from ``rng`` (as in disentanglement_lib)."""
        factors = np.asarray(factors, dtype=np.int64)
        sprites = self.base.binary_images(np.ravel_multi_index(tuple(factors.T), self.factor_sizes))
        uniforms = rng.random((sprites.shape[0], self.draws_per_observation), dtype=np.float32)
        out = np.empty((sprites.shape[0],) + self.observation_shape, dtype=np.float32)
        self._appearance(sprites, uniforms, out=out)
        return out

    def _appearance(self, sprites: np.ndarray, uniforms: np.ndarray, *, out: np.ndarray) -> None:
        """Write images ``(n, 3, H, W)`` made from binary sprites ``(n, H, W)`` and uniforms in [0, 1) into ``out``."""
        raise NotImplementedError


class ColorDSprites(_SpriteVariant):
    """dSprites with the sprite painted in a random colour, each channel uniform in [0.5, 1]."""

    prefix = "color"
    draws_per_observation = 3
    chunk_size = 4096

    def _appearance(self, sprites: np.ndarray, uniforms: np.ndarray, *, out: np.ndarray) -> None:
        colour = np.float32(0.5) + np.float32(0.5) * uniforms  # (n, 3) in [0.5, 1)
        np.multiply(sprites[:, None, :, :], colour[:, :, None, None], out=out)


class NoisyDSprites(_SpriteVariant):
    """dSprites on a uniform-noise background (independent per pixel and channel); the sprite is white."""

    prefix = "noisy"
    draws_per_observation = 3 * IMAGE_SIZE * IMAGE_SIZE
    chunk_size = 256

    def _appearance(self, sprites: np.ndarray, uniforms: np.ndarray, *, out: np.ndarray) -> None:
        n, height, width = sprites.shape
        noise = uniforms.reshape(n, 3, height, width)
        # A sprite pixel is 1 + noise >= 1, so the maximum of sprite and noise equals min(sprite + noise, 1).
        np.maximum(sprites[:, None, :, :], noise, out=out)
