"""Ground-truth datasets by name: ``get_dataset("dsprites")``.

=====================  ===================================================================================
name                   what it is
=====================  ===================================================================================
``dsprites``           procedural dSprites on the official 737,280-image grid (no download)
``tiny_dsprites``      1,536-image sub-grid of ``dsprites`` for tests and ``dbench check``
``dsprites_official``  the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from a data folder
``color_dsprites``     dSprites with a random sprite colour (options ``seed``, ``source``)
``noisy_dsprites``     dSprites on a uniform-noise background (options ``seed``, ``source``)
``mpi3d_toy``          MPI3D files ``mpi3d_{toy,realistic,real,complex}.npz`` from a data folder
``mpi3d_realistic``
``mpi3d_real``
``mpi3d_complex``
``shapes3d``           Shapes3D ``3dshapes.h5`` from a data folder (needs ``h5py``)
=====================  ===================================================================================

Files are looked up in ``data_dir`` or, when it is not given, in ``$DBENCH_DATA_DIR``.
See docs/datasets.md for factor grids and for defining your own dataset.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dbench.datasets.base import (
    GroundTruthDataset,
    factors_to_indices,
    indices_to_factors,
    num_observations,
    sample_factors,
    sample_observations_from_factors,
)
from dbench.errors import DatasetError

_SOURCES = ("procedural", "official")


def _dsprites(data_dir: Any) -> GroundTruthDataset:
    from dbench.datasets.dsprites import dsprites

    return dsprites()


def _tiny_dsprites(data_dir: Any) -> GroundTruthDataset:
    from dbench.datasets.dsprites import tiny_dsprites

    return tiny_dsprites()


def _dsprites_official(data_dir: Any) -> GroundTruthDataset:
    from dbench.datasets.official import load_official_dsprites

    return load_official_dsprites(data_dir)


def _binary_base(dataset: str, data_dir: Any, source: str) -> Any:
    if source not in _SOURCES:
        raise DatasetError(f"{dataset}: option source must be one of {list(_SOURCES)}; got {source!r}")
    return _dsprites(data_dir) if source == "procedural" else _dsprites_official(data_dir)


def _color_dsprites(data_dir: Any, seed: int = 0, source: str = "procedural") -> GroundTruthDataset:
    from dbench.datasets.variants import ColorDSprites

    return ColorDSprites(_binary_base("color_dsprites", data_dir, source), seed=seed)


def _noisy_dsprites(data_dir: Any, seed: int = 0, source: str = "procedural") -> GroundTruthDataset:
    from dbench.datasets.variants import NoisyDSprites

    return NoisyDSprites(_binary_base("noisy_dsprites", data_dir, source), seed=seed)


def _mpi3d(variant: str) -> Callable[[Any], GroundTruthDataset]:
    def factory(data_dir: Any) -> GroundTruthDataset:
        from dbench.datasets.image_files import load_mpi3d

        return load_mpi3d(variant, data_dir)

    return factory


def _shapes3d(data_dir: Any) -> GroundTruthDataset:
    from dbench.datasets.image_files import load_shapes3d

    return load_shapes3d(data_dir)


_FACTORIES: dict[str, Callable[..., GroundTruthDataset]] = {
    "dsprites": _dsprites,
    "tiny_dsprites": _tiny_dsprites,
    "dsprites_official": _dsprites_official,
    "color_dsprites": _color_dsprites,
    "noisy_dsprites": _noisy_dsprites,
    "mpi3d_toy": _mpi3d("toy"),
    "mpi3d_realistic": _mpi3d("realistic"),
    "mpi3d_real": _mpi3d("real"),
    "mpi3d_complex": _mpi3d("complex"),
    "shapes3d": _shapes3d,
}

#: Names accepted by :func:`get_dataset`.
DATASETS: tuple[str, ...] = tuple(_FACTORIES)

#: Procedurally rendered datasets -> (what to use instead to compare with published numbers, how to get it).
OFFICIAL_EQUIVALENT: dict[str, tuple[str, str]] = {
    "dsprites": ("dsprites_official", "dbench download dsprites"),
    "tiny_dsprites": ("dsprites_official", "dbench download dsprites"),
    "color_dsprites": ("color_dsprites with option source='official'", "dbench download dsprites"),
    "noisy_dsprites": ("noisy_dsprites with option source='official'", "dbench download dsprites"),
}

#: Options each dataset accepts besides ``data_dir``.
DATASET_OPTIONS: dict[str, tuple[str, ...]] = {
    "color_dsprites": ("seed", "source"),
    "noisy_dsprites": ("seed", "source"),
}


def get_dataset(name: str, *, data_dir: str | os.PathLike | None = None, **options: Any) -> GroundTruthDataset:
    """The dataset registered as ``name``; DatasetError (one line) for an unknown name, option or missing file."""
    if name not in _FACTORIES:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    allowed = DATASET_OPTIONS.get(name, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = f"its options are {', '.join(allowed)}" if allowed else "it takes no options"
        raise DatasetError(f"dataset {name!r} got unknown option(s) {', '.join(unknown)}; {takes}")
    return _FACTORIES[name](data_dir, **options)


__all__ = [
    "DATASETS",
    "DATASET_OPTIONS",
    "OFFICIAL_EQUIVALENT",
    "GroundTruthDataset",
    "factors_to_indices",
    "get_dataset",
    "indices_to_factors",
    "num_observations",
    "sample_factors",
    "sample_observations_from_factors",
]
