"""Colour-image datasets read from their published files: MPI3D (Gondal et al. 2019) and Shapes3D
(Kim & Mnih 2018), with the factor orders of disentanglement_lib's ``mpi3d.py`` and ``shapes3d.py``.

* MPI3D ``mpi3d_{toy,realistic,real}.npz``: key ``images`` uint8 ``(460800, 64, 64, 3)``, grid
  object_color 4, object_shape 4, object_size 2, camera_height 3, background_color 3, first_dof 40,
  second_dof 40 (last fastest). ``mpi3d_complex`` has 6 colours and 6 shapes (1,036,800 images). The file has no factor
  values, so ``factor_values`` returns the factor indices as floats.
* Shapes3D ``3dshapes.h5``: ``images`` uint8 ``(480000, 64, 64, 3)`` and ``labels`` float64
  ``(480000, 6)``; grid floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4, orientation 15.
  ``factor_values`` returns the file's labels. Reading it needs ``h5py`` (``pip install h5py``).

Images come back channels-first float32 ``(n, 3, 64, 64)`` in [0, 1] (pixel / 255). An uncompressed
``.npz`` member is memory-mapped; a compressed one is decompressed once into ``<file>.<key>.npy`` next to
it and memory-mapped from there (MPI3D toy's images are 5.7 GB uncompressed: too big to hold in memory).
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from dbench.datasets._files import NpzFile, check_array, find_data_file, reading_file
from dbench.datasets.dsprites import _check_indices
from dbench.errors import DatasetError

MPI3D_FACTOR_NAMES = (
    "object_color", "object_shape", "object_size", "camera_height", "background_color", "first_dof", "second_dof"
)
MPI3D_FACTOR_SIZES = {
    "toy": (4, 4, 2, 3, 3, 40, 40),
    "realistic": (4, 4, 2, 3, 3, 40, 40),
    "real": (4, 4, 2, 3, 3, 40, 40),
    "complex": (6, 6, 2, 3, 3, 40, 40),
}
MPI3D_SOURCE = "https://github.com/rr-learning/disentanglement_dataset"

SHAPES3D_FILENAME = "3dshapes.h5"
SHAPES3D_FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SHAPES3D_SOURCE = "https://github.com/deepmind/3d-shapes"

_IMAGE_SHAPE = (64, 64, 3)
_ROWS_PER_CHUNK = 4096


def _to_observations(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``(n, H, W, C)`` -> float32 ``(n, C, H, W)`` in [0, 1]."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


class MPI3D:
    """An MPI3D ``.npz`` file (``variant`` toy, realistic, real or complex) as a ground-truth dataset."""

    factor_names = MPI3D_FACTOR_NAMES
    observation_shape = (3, 64, 64)

    def __init__(self, path: str | os.PathLike, *, variant: str = "toy", factor_sizes: tuple[int, ...] | None = None) -> None:
        if variant not in MPI3D_FACTOR_SIZES:
            raise DatasetError(f"mpi3d: variant must be one of {list(MPI3D_FACTOR_SIZES)}; got {variant!r}")
        self.name = f"mpi3d_{variant}"
        self.factor_sizes = tuple(factor_sizes or MPI3D_FACTOR_SIZES[variant])
        self.path = Path(path)
        npz = NpzFile(self.name, self.path)
        try:
            shape, dtype = check_mpi3d_layout(npz, self.factor_sizes)
            mapped = npz.memmap("images")
            self._images = mapped if mapped is not None else _decompressed_copy(npz, "images", shape, dtype)
        finally:
            npz.close()

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """The factor indices as float64 (the file carries no physical values)."""
        return np.asarray(factors, dtype=np.float64)

    def images(self, indices: np.ndarray) -> np.ndarray:
        return _to_observations(self._images[_check_indices(indices, self.factor_sizes)])


def check_mpi3d_layout(npz: NpzFile, factor_sizes: tuple[int, ...]) -> tuple[tuple[int, ...], np.dtype]:
    """The layout checks of an MPI3D file (key ``images``, uint8 ``(n, 64, 64, 3)``); its shape and dtype.

    Reads the array header only, so a downloaded file is checked without decompressing its images.
    """
    npz.require("images")
    shape, dtype, _ = npz.header("images")
    check_array(npz.dataset, npz.path, "images", shape, dtype, (int(np.prod(factor_sizes)),) + _IMAGE_SHAPE, np.uint8)
    return shape, dtype


class Shapes3D:
    """The Shapes3D ``3dshapes.h5`` file as a ground-truth dataset (needs ``h5py``)."""

    name = "shapes3d"
    factor_names = SHAPES3D_FACTOR_NAMES
    observation_shape = (3, 64, 64)

    def __init__(self, path: str | os.PathLike, *, factor_sizes: tuple[int, ...] = SHAPES3D_FACTOR_SIZES) -> None:
        h5py = _import_h5py()
        self.factor_sizes = tuple(factor_sizes)
        self.path = Path(path)
        n = int(np.prod(self.factor_sizes))
        # Every read is guarded: a damaged HDF5 file (truncated, flipped bytes in a compressed chunk)
        # is one DatasetError naming the file, never h5py's "filter returned failure during read".
        with self._reading("its superblock"):
            self._file = h5py.File(self.path, "r")
        with self._reading("its keys"):
            missing = [k for k in ("images", "labels") if k not in self._file]
            if missing:
                raise DatasetError(f"shapes3d: {self.path.name} lacks key(s) {missing}; it has {sorted(self._file)}")
            images, labels = self._file["images"], self._file["labels"]
            check_array(self.name, self.path, "images", images.shape, images.dtype, (n,) + _IMAGE_SHAPE, np.uint8)
            check_array(self.name, self.path, "labels", labels.shape, labels.dtype, (n, len(self.factor_sizes)),
                        np.float64)
        self._images = images
        with self._reading("dataset 'labels'"):
            label_values = labels[()]
        self._value_tables = _values_in_grid_order(self.path, label_values, self.factor_sizes)

    def _reading(self, what: str) -> AbstractContextManager[None]:
        return reading_file(self.name, self.path, what, kind="HDF5")

    def close(self) -> None:
        """Close the HDF5 file (the dataset cannot read images afterwards)."""
        self._file.close()

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """The file's labels: hues in [0, 1), scale, shape index, orientation in degrees."""
        factors = np.asarray(factors, dtype=np.int64)
        return np.stack([table[factors[:, k]] for k, table in enumerate(self._value_tables)], axis=1)

    def images(self, indices: np.ndarray) -> np.ndarray:
        indices = _check_indices(indices, self.factor_sizes)
        # h5py reads only increasing, unique indices; read those, then restore the requested order.
        unique, inverse = np.unique(indices, return_inverse=True)
        with self._reading("dataset 'images'"):
            pixels = self._images[unique]
        return _to_observations(pixels)[inverse]


def load_mpi3d(variant: str, data_dir: str | os.PathLike | None = None) -> MPI3D:
    filename = f"mpi3d_{variant}.npz"
    path = find_data_file(f"mpi3d_{variant}", filename, data_dir, subdir=f"mpi3d_{variant}", source=MPI3D_SOURCE,
                          download=f"mpi3d_{variant}" + (" --url URL" if variant in ("real", "complex") else ""))
    return MPI3D(path, variant=variant)


def load_shapes3d(data_dir: str | os.PathLike | None = None) -> Shapes3D:
    _import_h5py()
    path = find_data_file("shapes3d", SHAPES3D_FILENAME, data_dir, subdir="3dshapes", source=SHAPES3D_SOURCE,
                          download="shapes3d")
    return Shapes3D(path)


def _import_h5py():
    try:
        import h5py
    except ImportError:
        raise DatasetError("shapes3d needs h5py to read 3dshapes.h5; install it with `pip install h5py`") from None
    return h5py


def _values_in_grid_order(path: Path, labels: np.ndarray, factor_sizes: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Sorted distinct values per factor, after checking the rows enumerate the grid (last factor fastest)."""
    expected = np.stack(np.unravel_index(np.arange(labels.shape[0]), factor_sizes), axis=1)
    tables = []
    for k, size in enumerate(factor_sizes):
        table, classes = np.unique(labels[:, k], return_inverse=True)
        if table.size != size or not np.array_equal(classes.reshape(-1), expected[:, k]):
            raise DatasetError(
                f"shapes3d: {path.name} labels do not enumerate the grid {factor_sizes} in order "
                f"(factor {SHAPES3D_FACTOR_NAMES[k]!r} has {table.size} values or is out of order)"
            )
        tables.append(table)
    return tuple(tables)


def _decompressed_copy(npz: NpzFile, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Memory map of a compressed member, decompressed once into ``<file>.<key>.npy`` beside the archive."""
    cache = npz.path.with_name(f"{npz.path.name}.{key}.npy")
    if cache.is_file():
        cached = np.load(cache, mmap_mode="r")
        if cached.shape == shape and cached.dtype == dtype:
            return cached
    partial = cache.with_name(cache.name + ".partial")
    try:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
    except OSError as exc:
        raise DatasetError(
            f"{npz.dataset}: cannot write the decompressed copy {cache} ({(exc.strerror or type(exc).__name__).lower()}); "
            "free space there or re-save the file uncompressed with numpy.savez"
        ) from None
    start = 0
    for block in npz.iter_rows(key, _ROWS_PER_CHUNK):
        out[start : start + block.shape[0]] = block
        start += block.shape[0]
    out.flush()
    del out
    os.replace(partial, cache)
    return np.load(cache, mmap_mode="r")
