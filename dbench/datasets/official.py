"""The official dSprites file (``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``) as a ground-truth dataset.

The file (https://github.com/deepmind/dsprites-dataset) holds ``imgs`` uint8 ``(737280, 64, 64)``,
``latents_classes`` int64 ``(737280, 6)`` and ``latents_values`` float64 ``(737280, 6)``; the first latent
is colour (one value), the other five are the dSprites factors in grid order with y position fastest.
The loader checks every key, shape and dtype, and that the classes enumerate the grid in that order, so
flat indices mean the same thing here as in the procedural ``dsprites``.

Memory: the official file is compressed, so its images are streamed out of the archive once and kept
bit-packed (737,280 x 512 bytes = 377 MB instead of 3 GB); a file saved uncompressed (``numpy.savez``)
is memory-mapped instead and costs no resident memory up front.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dbench.datasets._files import NpzFile, check_array, find_data_file
from dbench.datasets.dsprites import FACTOR_NAMES, FACTOR_SIZES, IMAGE_SIZE, _check_indices
from dbench.errors import DatasetError

OFFICIAL_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
OFFICIAL_SOURCE = "https://github.com/deepmind/dsprites-dataset"
_ROWS_PER_CHUNK = 8192


class OfficialDSprites:
    """dSprites read from the official ``.npz`` file.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file.
    factor_sizes : tuple of int
        Expected grid ``(shape, scale, orientation, pos_x, pos_y)``; the official one by default. Tests
        pass a smaller grid to check the loader on a small file with the official layout.
    name : str
        Registry name reported by the dataset.
    """

    factor_names = FACTOR_NAMES
    observation_shape = (1, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(
        self, path: str | os.PathLike, *, factor_sizes: tuple[int, ...] = FACTOR_SIZES, name: str = "dsprites_official"
    ) -> None:
        self.name = name
        self.factor_sizes = tuple(int(n) for n in factor_sizes)
        self.path = Path(path)
        n = int(np.prod(self.factor_sizes))
        npz = NpzFile(name, self.path)
        try:
            npz.require("imgs", "latents_classes", "latents_values")
            shape, dtype, _ = npz.header("imgs")
            check_array(name, self.path, "imgs", shape, dtype, (n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            for key, dt in (("latents_classes", np.int64), ("latents_values", np.float64)):
                shape, dtype, _ = npz.header(key)
                check_array(name, self.path, key, shape, dtype, (n, 1 + len(self.factor_sizes)), dt)
            classes = npz.load("latents_classes")
            values = npz.load("latents_values")
            self._value_tables = _value_tables(name, self.path, classes, values, self.factor_sizes)
            self._imgs = npz.memmap("imgs")
            self._packed = None if self._imgs is not None else _packed_images(npz, n)
        finally:
            npz.close()

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """The file's own ``latents_values`` (shape 1/2/3, scale, orientation, pos_x, pos_y), float64 ``(n, 5)``."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack([table[factors[:, k]] for k, table in enumerate(self._value_tables)], axis=1)

    def binary_images(self, indices: np.ndarray) -> np.ndarray:
        """Binary uint8 images ``(n, 64, 64)`` (1 where the file's pixel is non-zero)."""
        indices = _check_indices(indices, self.factor_sizes)
        if self._packed is not None:
            return np.unpackbits(self._packed[indices], axis=-1)
        assert self._imgs is not None  # __init__ sets one of the two
        return (self._imgs[indices] != 0).astype(np.uint8)

    def images(self, indices: np.ndarray) -> np.ndarray:
        """Float32 images ``(n, 1, 64, 64)`` with values 0 and 1."""
        return self.binary_images(indices).astype(np.float32)[:, None]

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Images for integer factor vectors ``(n, 5)``; no observation noise, so ``rng`` is unused."""
        factors = np.asarray(factors, dtype=np.int64)
        return self.images(np.ravel_multi_index(tuple(factors.T), self.factor_sizes))


def load_official_dsprites(data_dir: str | os.PathLike | None = None) -> OfficialDSprites:
    """The official dSprites file from ``data_dir`` (or ``$DBENCH_DATA_DIR``), directly or in ``dsprites/``."""
    path = find_data_file("dsprites_official", OFFICIAL_FILENAME, data_dir, subdir="dsprites", source=OFFICIAL_SOURCE,
                          download="dsprites")
    return OfficialDSprites(path)


def _value_tables(
    name: str, path: Path, classes: np.ndarray, values: np.ndarray, factor_sizes: tuple[int, ...]
) -> tuple[np.ndarray, ...]:
    """Per-factor value lookup tables, after checking that the rows enumerate the grid in official order."""
    n = classes.shape[0]
    expected = np.stack(np.unravel_index(np.arange(n), factor_sizes), axis=1)
    if np.any(classes[:, 0] != 0) or not np.array_equal(classes[:, 1:], expected):
        raise DatasetError(
            f"{name}: {path.name} latents_classes do not enumerate the grid {factor_sizes} in the official order "
            "(colour column 0, then shape..pos_y with pos_y fastest)"
        )
    tables = []
    for k, size in enumerate(factor_sizes):
        table = np.full(size, np.nan)
        table[classes[:, k + 1]] = values[:, k + 1]
        # Every row with the same class must carry the same value.
        if not np.array_equal(table[classes[:, k + 1]], values[:, k + 1]):
            raise DatasetError(f"{name}: {path.name} latents_values disagree with latents_classes for factor {FACTOR_NAMES[k]!r}")
        tables.append(table)
    return tuple(tables)


def _packed_images(npz: NpzFile, n: int) -> np.ndarray:
    """Bit-packed binary images ``(n, 64, 8)`` streamed from a compressed member."""
    packed = np.empty((n, IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
    start = 0
    for block in npz.iter_rows("imgs", _ROWS_PER_CHUNK):
        packed[start : start + block.shape[0]] = np.packbits(block != 0, axis=-1)
        start += block.shape[0]
    return packed
