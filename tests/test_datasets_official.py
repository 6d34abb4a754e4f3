"""The official dSprites file loader, checked on small files with the official layout written here.

The files carry the tiny_dsprites grid (3, 2, 4, 8, 8) with the official keys, dtypes and column
layout (a leading colour latent), so the loader runs its real checks with a small expected grid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dbench.datasets import get_dataset, indices_to_factors, num_observations
from dbench.datasets.dsprites import tiny_dsprites
from dbench.datasets.official import OFFICIAL_FILENAME, OfficialDSprites
from dbench.datasets.variants import ColorDSprites
from dbench.errors import DatasetError

TINY = tiny_dsprites()
N = num_observations(TINY)


def official_layout_arrays() -> dict[str, np.ndarray]:
    """The tiny grid in the official file's layout: imgs uint8 (N, 64, 64), latents (N, 6) with colour first."""
    factors = indices_to_factors(TINY, np.arange(N))
    classes = np.concatenate([np.zeros((N, 1), dtype=np.int64), factors], axis=1)
    values = np.concatenate([np.ones((N, 1)), TINY.factor_values(factors)], axis=1)
    imgs = TINY.images(np.arange(N))[:, 0].astype(np.uint8)
    return {"imgs": imgs, "latents_classes": classes, "latents_values": values}


def write(path, arrays, *, compressed):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


@pytest.fixture(scope="module")
def arrays():
    return official_layout_arrays()


@pytest.mark.parametrize("compressed", [False, True], ids=["stored-mmap", "compressed-streamed"])
def test_a_file_with_the_official_layout_loads_and_matches(tmp_path, arrays, compressed):
    data = OfficialDSprites(write(tmp_path / "d.npz", arrays, compressed=compressed), factor_sizes=TINY.factor_sizes)
    assert (data._packed is None) == (not compressed)  # uncompressed members are memory-mapped
    assert data.name == "dsprites_official" and data.observation_shape == (1, 64, 64)
    idx = np.array([0, 1, 777, N - 1, 1])
    imgs = data.images(idx)
    assert imgs.dtype == np.float32 and imgs.shape == (5, 1, 64, 64)
    np.testing.assert_array_equal(imgs, TINY.images(idx))
    factors = indices_to_factors(TINY, idx)
    np.testing.assert_array_equal(data.factor_values(factors), TINY.factor_values(factors))
    np.testing.assert_array_equal(data.sample_observations_from_factors(factors), imgs)
    colour = ColorDSprites(data)
    assert colour.name == "color_dsprites_official" and colour.images(idx).shape == (5, 3, 64, 64)


def corrupt(arrays, **changes):
    out = dict(arrays)
    for key, value in changes.items():
        if value is None:
            out.pop(key)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: corrupt(a, imgs=None, images=a["imgs"]), r"lacks key\(s\) \['imgs'\]"),
        (lambda a: corrupt(a, imgs=a["imgs"][:-1]), r"'imgs' has shape \(1535, 64, 64\); expected \(1536, 64, 64\)"),
        (lambda a: corrupt(a, imgs=a["imgs"].astype(np.float32)), r"'imgs' has dtype float32; expected uint8"),
        (lambda a: corrupt(a, latents_classes=a["latents_classes"][:, 1:]), r"'latents_classes' has shape \(1536, 5\)"),
        (lambda a: corrupt(a, latents_classes=a["latents_classes"].astype(np.int32)), r"dtype int32; expected int64"),
        (lambda a: corrupt(a, latents_values=a["latents_values"].astype(np.float32)), r"dtype float32; expected float64"),
        (lambda a: corrupt(a, latents_classes=a["latents_classes"][::-1].copy()), r"do not enumerate the grid"),
    ],
    ids=["missing-key", "wrong-shape", "wrong-dtype", "wrong-columns", "int32-classes", "float32-values", "wrong-order"],
)
def test_malformed_files_raise_one_line_dataset_errors(tmp_path, arrays, change, message):
    path = write(tmp_path / "bad.npz", change(arrays), compressed=False)
    with pytest.raises(DatasetError, match=message) as err:
        OfficialDSprites(path, factor_sizes=TINY.factor_sizes)
    assert "\n" not in str(err.value) and "bad.npz" in str(err.value)


def test_values_inconsistent_with_classes_are_rejected(tmp_path, arrays):
    values = arrays["latents_values"].copy()
    values[5, 2] += 0.01
    with pytest.raises(DatasetError, match="disagree with latents_classes for factor 'scale'"):
        path = write(tmp_path / "v.npz", corrupt(arrays, latents_values=values), compressed=True)
        OfficialDSprites(path, factor_sizes=TINY.factor_sizes)


def test_not_a_zip_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"not a readable .npz"):
        OfficialDSprites(path)


def test_registry_finds_the_file_in_data_dir_env_or_subfolder_and_checks_the_official_grid(tmp_path, arrays, monkeypatch):
    # A small file under the official name: found, then rejected because the registry expects the full grid.
    write(tmp_path / OFFICIAL_FILENAME, arrays, compressed=False)
    with pytest.raises(DatasetError, match=r"expected \(737280, 64, 64\)"):
        get_dataset("dsprites_official", data_dir=tmp_path)
    nested = tmp_path / "env" / "dsprites"
    nested.mkdir(parents=True)
    write(nested / OFFICIAL_FILENAME, arrays, compressed=False)
    monkeypatch.setenv("DBENCH_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DatasetError, match=r"expected \(737280, 64, 64\)"):
        get_dataset("dsprites_official")


# -- damaged files: flipped bytes, truncation, garbage (issue 12) ----------------------------------------


def _damaged(good: bytes, kind: str, rng: np.random.Generator) -> bytes:
    data = bytearray(good)
    if kind == "flipped bits":
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            data[pos] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncated":
        data = data[: int(rng.integers(0, len(data)))]
    else:  # a run of garbage
        pos = int(rng.integers(0, len(data)))
        data[pos : pos + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    return bytes(data)


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "stored"])
@pytest.mark.parametrize("kind", ["flipped bits", "truncated", "garbage"])
def test_a_damaged_file_is_one_dataset_error_or_loads_unchanged(tmp_path, arrays, compressed, kind):
    good = write(tmp_path / "good.npz", arrays, compressed=compressed).read_bytes()
    rng = np.random.default_rng(len(kind) + compressed)
    everything = np.arange(N)
    for trial in range(12):
        path = tmp_path / f"d{trial}.npz"
        path.write_bytes(_damaged(good, kind, rng))
        try:
            data = OfficialDSprites(path, factor_sizes=TINY.factor_sizes)
        except DatasetError as err:
            message = str(err)
            assert "\n" not in message and path.name in message and len(message) < 400, message
            continue
        # A change the format does not carry (e.g. in a zip comment) is harmless: the data is exactly the same.
        np.testing.assert_array_equal(data.images(everything), TINY.images(everything))


@pytest.mark.parametrize("compressed, fragment", [(True, "Bad CRC-32"), (False, "bad CRC-32")], ids=["compressed", "stored"])
def test_a_flipped_byte_in_the_images_names_the_member_and_the_crc(tmp_path, arrays, compressed, fragment):
    path = write(tmp_path / OFFICIAL_FILENAME, arrays, compressed=compressed)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the middle of the file is image data
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=f"member 'imgs'.*{fragment}.*download it again") as err:
        OfficialDSprites(path, factor_sizes=TINY.factor_sizes)
    assert OFFICIAL_FILENAME in str(err.value) and "Error -3" not in str(err.value)


def test_pickled_and_fortran_members_are_refused(tmp_path, arrays):
    as_objects = corrupt(arrays, latents_values=arrays["latents_values"].astype(object))
    with pytest.raises(DatasetError, match="holds Python objects"):
        OfficialDSprites(write(tmp_path / "o.npz", as_objects, compressed=False), factor_sizes=TINY.factor_sizes)
    fortran = corrupt(arrays, latents_classes=np.asfortranarray(arrays["latents_classes"]))
    with pytest.raises(DatasetError, match="Fortran order"):
        OfficialDSprites(write(tmp_path / "f.npz", fortran, compressed=True), factor_sizes=TINY.factor_sizes)


def test_a_corrupt_file_through_the_cli_is_one_line_and_exit_2(tmp_path, arrays):
    path = write(tmp_path / OFFICIAL_FILENAME, arrays, compressed=True)
    path.write_bytes(path.read_bytes()[:-5000])
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "dbench", "evaluate", str(root / "examples" / "numpy_encoder.py"),
                           "--dataset", "dsprites_official", "--data-dir", str(tmp_path)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "not a readable .npz file" in proc.stderr and "unexpected error" not in proc.stderr
