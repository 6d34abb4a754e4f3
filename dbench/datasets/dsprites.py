"""dSprites (Matthey et al. 2017), rendered procedurally on the official factor grid.

The official file holds 737,280 binary 64x64 images: every combination of shape (square, ellipse,
heart), scale (6 values in [0.5, 1]), orientation (40 values in [0, 2*pi], endpoints included), and x and
y position (32 values each in [0, 1]), stored with y position varying fastest, then x, orientation,
scale, shape. :class:`DSprites` reproduces that grid and index order exactly and draws the images on
demand, so no download is needed and a request for n images costs n images of memory.

Rendering choices (the generator of the official file is not published, so these are inferred):

* Position: a step of one position index moves the sprite by exactly one pixel (the official README says
  the values were chosen "to have the smallest step changes while ensuring that all pixel outputs were
  different"). ``pos_x`` moves it right along the image columns, ``pos_y`` down along the rows; the
  centroid goes from pixel centre 16 (value 0) to pixel centre 47 (value 1), symmetric about the
  canvas centre, i.e. the central ~[0.26, 0.74] of the canvas.
* Size: a scale-1 square has side :data:`SPRITE_SIZE_PX` pixels; the ellipse is as long as the square and
  half as wide; the heart's larger bounding-box side equals the square's. The size was chosen so that
  the mean pixel value over the full grid is 0.042, the figure commonly quoted for the official file
  (not verified here against the file itself). Every sprite stays inside the canvas at every position.
* Orientation rotates counter-clockwise (as displayed) about the shape's area centroid; orientation 0
  and 2*pi give identical images, as in the official file.

Pixels are therefore close to, but not byte-identical with, the official images. Use
``dsprites_official`` (:mod:`dbench.datasets.official`) to evaluate on the official file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dbench.datasets._sprites import SHAPE_NAMES, render_rotations

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
IMAGE_SIZE = 64

#: Official factor values, as in the file's ``latents_values`` (shape coded 1, 2, 3).
SHAPE_VALUES = np.array([1.0, 2.0, 3.0])
SCALE_VALUES = np.linspace(0.5, 1.0, 6)
ORIENTATION_VALUES = np.linspace(0.0, 2.0 * np.pi, 40)
POSITION_VALUES = np.linspace(0.0, 1.0, 32)
FACTOR_VALUES = (SHAPE_VALUES, SCALE_VALUES, ORIENTATION_VALUES, POSITION_VALUES, POSITION_VALUES)

#: Side in pixels of a scale-1 square (see the module docstring for how it was chosen).
SPRITE_SIZE_PX = 20.25
#: Pixel-centre coordinate of the sprite centroid at position index 0 (index k sits k pixels further).
FIRST_CENTRE = 16.5

#: Index subsets of the full grid that make up ``tiny_dsprites``: every shape, the smallest and largest
#: scale, four orientations spanning the square's quarter turn, and every 4th-5th position including both
#: ends. 3 * 2 * 4 * 8 * 8 = 1,536 observations.
TINY_FACTOR_INDICES = (
    (0, 1, 2),
    (0, 5),
    (0, 3, 6, 9),
    (0, 4, 9, 13, 18, 22, 27, 31),
    (0, 4, 9, 13, 18, 22, 27, 31),
)

# Images are windows into a larger canvas holding the sprite at its centre: shifting the window by one
# pixel is the same as moving the sprite by one position index, so a batch of images is one gather.
_N_POS = FACTOR_SIZES[3]
_BIG = IMAGE_SIZE + _N_POS - 1
_BIG_CENTRE = FIRST_CENTRE + _N_POS - 1


class _MaskBank:
    """Lazily rendered, shared masks: one big-canvas sprite per (shape, scale, orientation) index.

    720 masks of 95x95 bytes (6.5 MB) when all are rendered; each (shape, scale) row of 40 orientations
    is rendered on first use, under a lock so concurrent callers do not duplicate work.
    """

    def __init__(self) -> None:
        self._masks = np.zeros(FACTOR_SIZES[:3] + (_BIG, _BIG), dtype=np.uint8)
        self._ready = np.zeros(FACTOR_SIZES[:2], dtype=bool)
        self._lock = threading.Lock()
        # Axes: shape, scale, orientation, window row, window col, 64, 64.
        self._windows = sliding_window_view(self._masks, (IMAGE_SIZE, IMAGE_SIZE), axis=(3, 4))

    def ensure(self, shape_idx: np.ndarray, scale_idx: np.ndarray) -> None:
        """Render the (shape, scale) rows that the given factor indices need and that are missing."""
        needed = np.zeros_like(self._ready)
        needed[shape_idx, scale_idx] = True
        if not np.any(needed & ~self._ready):
            return
        with self._lock:
            for s, c in zip(*np.nonzero(needed & ~self._ready), strict=True):
                self._masks[s, c] = render_rotations(
                    SHAPE_NAMES[s], SPRITE_SIZE_PX * SCALE_VALUES[c], ORIENTATION_VALUES, _BIG, _BIG_CENTRE
                )
                self._ready[s, c] = True

    def gather(self, full_factors: np.ndarray) -> np.ndarray:
        """Binary uint8 images ``(n, 64, 64)`` for full-grid factor index vectors ``(n, 5)``."""
        s, c, o, x, y = full_factors.T
        self.ensure(s, c)
        # Window offset (N_POS - 1 - k) puts the centroid k pixels after FIRST_CENTRE.
        return self._windows[s, c, o, _N_POS - 1 - y, _N_POS - 1 - x]


_BANK = _MaskBank()


@dataclass(frozen=True, eq=False)
class DSprites:
    """Procedural dSprites on the official grid, or on a sub-grid of it (``tiny_dsprites``).

    Parameters
    ----------
    factor_indices : tuple of index tuples, optional
        For a sub-grid: for each factor, which indices of the official grid to keep (ascending). The
        sub-grid's flat index is again row-major with ``pos_y`` fastest. ``None`` keeps the full grid.
    name : str
        Registry name reported by the dataset.
    chunk_size : int
        Images are produced this many at a time (bounds temporary memory).
    """

    factor_indices: tuple[tuple[int, ...], ...] | None = None
    name: str = "dsprites"
    chunk_size: int = 4096
    factor_names: tuple[str, ...] = FACTOR_NAMES
    observation_shape: tuple[int, int, int] = (1, IMAGE_SIZE, IMAGE_SIZE)
    factor_sizes: tuple[int, ...] = field(init=False)
    _lookup: tuple[np.ndarray, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.factor_indices is None:
            lookup = tuple(np.arange(n, dtype=np.int64) for n in FACTOR_SIZES)
        else:
            if len(self.factor_indices) != len(FACTOR_SIZES):
                raise ValueError(f"factor_indices must give one index tuple per factor {FACTOR_NAMES}")
            lookup = tuple(np.asarray(ix, dtype=np.int64) for ix in self.factor_indices)
            for name, ix, n in zip(FACTOR_NAMES, lookup, FACTOR_SIZES, strict=True):
                if ix.ndim != 1 or ix.size == 0 or np.any(ix < 0) or np.any(ix >= n) or np.any(np.diff(ix) <= 0):
                    raise ValueError(f"factor_indices for {name!r} must be ascending indices in [0, {n}); got {ix.tolist()}")
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "factor_sizes", tuple(int(ix.size) for ix in lookup))

    def full_grid_factors(self, factors: np.ndarray) -> np.ndarray:
        """Map factor indices of this (sub-)grid to indices of the official grid, int64 ``(n, 5)``."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack([lk[factors[:, k]] for k, lk in enumerate(self._lookup)], axis=1)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Official real values float64 ``(n, 5)``: shape 1/2/3, scale, orientation (rad), pos_x, pos_y."""
        full = self.full_grid_factors(factors)
        return np.stack([vals[full[:, k]] for k, vals in enumerate(FACTOR_VALUES)], axis=1)

    def binary_images(self, indices: np.ndarray) -> np.ndarray:
        """Binary uint8 images ``(n, 64, 64)`` for flat indices (no channel axis)."""
        return self._gather(_check_indices(indices, self.factor_sizes))

    def images(self, indices: np.ndarray) -> np.ndarray:
        """Float32 images ``(n, 1, 64, 64)`` with values 0 and 1 for flat indices ``(n,)``."""
        indices = _check_indices(indices, self.factor_sizes)
        out = np.empty((indices.size,) + self.observation_shape, dtype=np.float32)
        for start in range(0, indices.size, self.chunk_size):
            stop = start + self.chunk_size
            out[start:stop, 0] = self._gather(indices[start:stop])
        return out

    def _gather(self, indices: np.ndarray) -> np.ndarray:
        factors = np.stack(np.unravel_index(indices, self.factor_sizes), axis=1)
        return _BANK.gather(self.full_grid_factors(factors))

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Images for integer factor vectors ``(n, 5)``; dSprites has no observation noise, so ``rng`` is unused."""
        factors = np.asarray(factors, dtype=np.int64)
        return self.images(np.ravel_multi_index(tuple(factors.T), self.factor_sizes))


def _check_indices(indices: np.ndarray, factor_sizes: tuple[int, ...]) -> np.ndarray:
    """Flat indices as int64 ``(n,)``; ValueError naming the valid range otherwise."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be integers; got dtype {indices.dtype}")
    indices = indices.astype(np.int64).reshape(-1)
    total = int(np.prod(factor_sizes))
    if indices.size and (indices.min() < 0 or indices.max() >= total):
        raise ValueError(f"indices must lie in [0, {total}); got values in [{indices.min()}, {indices.max()}]")
    return indices


def dsprites() -> DSprites:
    """The full procedural dSprites grid (737,280 observations)."""
    return DSprites()


def tiny_dsprites() -> DSprites:
    """A 1,536-observation sub-grid for tests and ``dbench check`` (factor sizes (3, 2, 4, 8, 8))."""
    return DSprites(factor_indices=TINY_FACTOR_INDICES, name="tiny_dsprites")
