"""MPI3D and Shapes3D loaders, checked on small files with the official layouts written here."""

from __future__ import annotations

import numpy as np
import pytest

from dbench.datasets import GroundTruthDataset, get_dataset, indices_to_factors
from dbench.datasets.image_files import MPI3D, Shapes3D
from dbench.errors import DatasetError

SMALL_MPI3D = (2, 1, 2, 1, 1, 3, 4)  # 48 observations
SMALL_SHAPES3D = (2, 1, 1, 2, 3, 2)  # 24 observations


def pixels(n: int) -> np.ndarray:
    """Distinct uint8 images (n, 64, 64, 3): image i is filled with value i in channel 0."""
    out = np.zeros((n, 64, 64, 3), dtype=np.uint8)
    out[:, :, :, 0] = np.arange(n, dtype=np.uint8)[:, None, None]
    out[:, 10, 20, 2] = 255
    return out


@pytest.mark.parametrize("compressed", [False, True], ids=["stored-mmap", "compressed-cached"])
def test_mpi3d_file_with_official_layout(tmp_path, compressed):
    path = tmp_path / "mpi3d_toy.npz"
    (np.savez_compressed if compressed else np.savez)(path, images=pixels(48))
    data = MPI3D(path, factor_sizes=SMALL_MPI3D)
    assert isinstance(data, GroundTruthDataset) and data.name == "mpi3d_toy"
    assert data.factor_names[0] == "object_color" and data.factor_names[-1] == "second_dof"
    imgs = data.images(np.array([47, 3, 3]))
    assert imgs.shape == (3, 3, 64, 64) and imgs.dtype == np.float32
    np.testing.assert_allclose(imgs[:, 0, 0, 0], np.array([47, 3, 3]) / 255.0, rtol=1e-6)
    assert imgs[0, 2, 10, 20] == 1.0 and imgs[0, 1].max() == 0.0  # channels-first, scaled to [0, 1]
    factors = indices_to_factors(data, np.array([47]))
    np.testing.assert_array_equal(data.factor_values(factors), factors.astype(float))
    if compressed:
        assert (tmp_path / "mpi3d_toy.npz.images.npy").is_file()
        np.testing.assert_array_equal(MPI3D(path, factor_sizes=SMALL_MPI3D).images(np.array([5])), data.images(np.array([5])))


def test_mpi3d_errors(tmp_path, monkeypatch):
    path = tmp_path / "mpi3d_toy.npz"
    np.savez(path, imgs=pixels(48))
    with pytest.raises(DatasetError, match=r"lacks key\(s\) \['images'\]"):
        MPI3D(path, factor_sizes=SMALL_MPI3D)
    np.savez(path, images=pixels(48)[:, :, :, :1])
    with pytest.raises(DatasetError, match=r"shape \(48, 64, 64, 1\); expected \(48, 64, 64, 3\)"):
        MPI3D(path, factor_sizes=SMALL_MPI3D)
    np.savez(path, images=pixels(48))
    with pytest.raises(DatasetError, match=r"expected \(460800, 64, 64, 3\)"):
        get_dataset("mpi3d_toy", data_dir=tmp_path)  # the registry checks the official grid
    with pytest.raises(DatasetError, match=r"expected \(1036800, 64, 64, 3\)"):
        MPI3D(path, variant="complex")
    monkeypatch.delenv("DBENCH_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match=r"mpi3d_real.npz not found.*--data-dir"):
        get_dataset("mpi3d_real")


def write_shapes3d(path, labels=None, images=None):
    h5py = pytest.importorskip("h5py")
    grid = np.stack(np.unravel_index(np.arange(24), SMALL_SHAPES3D), axis=1).astype(np.float64)
    default_labels = grid * np.array([0.1, 0.1, 0.1, 0.25, 1.0, 4.0]) + np.array([0, 0, 0, 0.75, 0, -30])
    with h5py.File(path, "w") as f:
        f["images"] = pixels(24) if images is None else images
        f["labels"] = default_labels if labels is None else labels
    return default_labels


def test_shapes3d_file_with_official_layout(tmp_path):
    labels = write_shapes3d(tmp_path / "3dshapes.h5")
    data = Shapes3D(tmp_path / "3dshapes.h5", factor_sizes=SMALL_SHAPES3D)
    assert isinstance(data, GroundTruthDataset) and data.factor_names[-1] == "orientation"
    idx = np.array([23, 0, 7, 0])
    imgs = data.images(idx)  # unsorted and repeated indices come back in request order
    np.testing.assert_allclose(imgs[:, 0, 0, 0], idx / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.factor_values(indices_to_factors(data, idx)), labels[idx])


def test_shapes3d_errors(tmp_path):
    path = tmp_path / "3dshapes.h5"
    labels = write_shapes3d(path)
    write_shapes3d(path, labels=labels[::-1].copy())
    with pytest.raises(DatasetError, match="labels do not enumerate the grid"):
        Shapes3D(path, factor_sizes=SMALL_SHAPES3D)
    write_shapes3d(path, images=pixels(24).astype(np.float32))
    with pytest.raises(DatasetError, match="dtype float32; expected uint8"):
        Shapes3D(path, factor_sizes=SMALL_SHAPES3D)
    with pytest.raises(DatasetError, match=r"expected \(480000, 64, 64, 3\)"):
        get_dataset("shapes3d", data_dir=tmp_path)


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "zero-length":
        data = bytearray()
    elif how == "flipped bytes":  # inside the compressed image chunks
        for i in range(len(data) // 2, len(data) // 2 + 2000):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "zero-length", "flipped bytes"])
def test_a_damaged_shapes3d_file_is_one_dataset_error_naming_it(tmp_path, how):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "3dshapes.h5"
    write_shapes3d(path)
    images = pixels(24)
    with h5py.File(path, "w") as f:  # compressed chunks: damage shows up as a failed filter, not as garbage
        f.create_dataset("images", data=images, chunks=(1, 64, 64, 3), compression="gzip")
        f["labels"] = write_shapes3d(tmp_path / "other.h5")
    _damage(path, how)
    with pytest.raises(DatasetError) as exc:
        Shapes3D(path, factor_sizes=SMALL_SHAPES3D).images(np.arange(24))
    text = str(exc.value)
    assert "\n" not in text and str(path) in text and "download it again" in text, text
