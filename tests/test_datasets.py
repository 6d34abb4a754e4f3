"""Procedural dSprites, its tiny sub-grid, the colour/noisy variants and the dataset registry."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from dbench.datasets import (
    DATASETS,
    GroundTruthDataset,
    factors_to_indices,
    get_dataset,
    indices_to_factors,
    num_observations,
    sample_factors,
)
from dbench.datasets._counter_random import counter_uniform
from dbench.datasets.dsprites import DSprites, dsprites, tiny_dsprites
from dbench.datasets.variants import ColorDSprites, NoisyDSprites
from dbench.errors import DatasetError

FULL = dsprites()
TINY = tiny_dsprites()


def index_of(shape=0, scale=0, orientation=0, pos_x=0, pos_y=0, dataset=FULL) -> int:
    return int(factors_to_indices(dataset, np.array([[shape, scale, orientation, pos_x, pos_y]]))[0])


def centroid(image: np.ndarray) -> np.ndarray:
    """(row, col) centre of mass of a (1, H, W) or (H, W) binary image."""
    rows, cols = np.nonzero(np.squeeze(image))
    return np.array([rows.mean(), cols.mean()])


# --- factor grid and index order ---------------------------------------------------------------


def test_official_grid_metadata():
    assert FULL.name == "dsprites"
    assert FULL.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FULL.factor_sizes == (3, 6, 40, 32, 32)
    assert FULL.observation_shape == (1, 64, 64)
    assert num_observations(FULL) == 737_280
    assert isinstance(FULL, GroundTruthDataset)


def test_factor_values_are_the_official_latents_values():
    sizes = FULL.factor_sizes
    for k, expected in enumerate(
        [
            [1.0, 2.0, 3.0],
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2 * np.pi, 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ]
    ):
        factors = np.zeros((sizes[k], 5), dtype=np.int64)
        factors[:, k] = np.arange(sizes[k])
        values = FULL.factor_values(factors)
        assert values.dtype == np.float64
        np.testing.assert_array_equal(values[:, k], expected)
    assert FULL.factor_values(np.array([[0, 0, 39, 0, 0]]))[0, 2] == 2 * np.pi


def test_flat_index_order_is_row_major_with_pos_y_fastest():
    assert index_of(pos_y=1) == 1
    assert index_of(pos_x=1) == 32
    assert index_of(orientation=1) == 32 * 32
    assert index_of(scale=1) == 40 * 32 * 32
    assert index_of(shape=1) == 6 * 40 * 32 * 32
    rng = np.random.default_rng(0)
    idx = rng.integers(0, num_observations(FULL), 500)
    np.testing.assert_array_equal(factors_to_indices(FULL, indices_to_factors(FULL, idx)), idx)


def test_one_position_step_moves_the_sprite_exactly_one_pixel():
    base, down, right = FULL.images(np.array([index_of(2, 3, 7), index_of(2, 3, 7, pos_y=1), index_of(2, 3, 7, pos_x=1)]))
    # pos_y moves along rows (down), pos_x along columns (right), each by one whole pixel.
    np.testing.assert_array_equal(down[0, 1:], base[0, :-1])
    np.testing.assert_array_equal(right[0, :, 1:], base[0, :, :-1])


# --- images --------------------------------------------------------------------------------------


def test_images_are_binary_float32_and_deterministic_per_index():
    idx = np.array([5, 700_000, 123_456, 5])
    a = FULL.images(idx)
    assert a.shape == (4, 1, 64, 64) and a.dtype == np.float32
    assert set(np.unique(a).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(a[0], a[3])
    np.testing.assert_array_equal(FULL.images(idx[2:3])[0], a[2])  # independent of the batch it is in
    np.testing.assert_array_equal(DSprites(chunk_size=1).images(idx), a)  # independent of chunking
    assert FULL.images(np.array([], dtype=np.int64)).shape == (0, 1, 64, 64)


def test_position_factors_move_the_centroid_along_their_own_axis():
    xs = FULL.images(np.array([index_of(1, 5, 3, pos_x=k, pos_y=10) for k in (0, 10, 20, 31)]))
    ys = FULL.images(np.array([index_of(1, 5, 3, pos_x=10, pos_y=k) for k in (0, 10, 20, 31)]))
    cx = np.array([centroid(im) for im in xs])
    cy = np.array([centroid(im) for im in ys])
    assert np.all(np.diff(cx[:, 1]) > 9) and np.ptp(cx[:, 0]) < 1e-9  # pos_x: columns only
    assert np.all(np.diff(cy[:, 0]) > 9) and np.ptp(cy[:, 1]) < 1e-9  # pos_y: rows only


def test_centroid_spans_the_central_half_of_the_canvas():
    first, last = FULL.images(np.array([index_of(0, 5, 0, 0, 0), index_of(0, 5, 0, 31, 31)]))
    np.testing.assert_allclose(centroid(first), [16.0, 16.0], atol=0.5)
    np.testing.assert_allclose(centroid(last), [47.0, 47.0], atol=0.5)


def test_scale_increases_area_and_shapes_differ():
    for shape in range(3):
        areas = FULL.images(np.array([index_of(shape, s, 4, 16, 16) for s in range(6)])).sum(axis=(1, 2, 3))
        assert np.all(np.diff(areas) > 0)
    square, ellipse, heart = FULL.images(np.array([index_of(s, 5, 0, 16, 16) for s in range(3)]))
    areas = [square.sum(), ellipse.sum(), heart.sum()]
    assert areas[0] > areas[2] > areas[1]
    assert not np.array_equal(square, heart) and not np.array_equal(heart, ellipse)


def test_orientation_rotates_about_the_centroid_and_wraps_at_two_pi():
    for shape in range(3):
        imgs = FULL.images(np.array([index_of(shape, 5, o, 16, 16) for o in range(40)]))
        np.testing.assert_array_equal(imgs[0], imgs[39])  # 0 and 2*pi are the same angle
        assert not np.array_equal(imgs[0], imgs[5])
        centroids = np.array([centroid(im) for im in imgs])
        assert np.abs(centroids - centroids.mean(axis=0)).max() < 0.6


def test_square_is_symmetric_under_a_quarter_turn_up_to_rasterisation():
    # Orientation 10 is 10 * 2pi/39 = 92.3 degrees: almost a quarter turn of a square.
    a, b = FULL.images(np.array([index_of(0, 5, 0, 16, 16), index_of(0, 5, 10, 16, 16)]))
    assert np.abs(a - b).sum() < 0.1 * a.sum()


def test_sprites_stay_inside_the_canvas_and_mean_pixel_matches_the_official_figure():
    # Largest scale, every shape and orientation, at the four extreme positions.
    corners = [(0, 0), (0, 31), (31, 0), (31, 31)]
    idx = np.array([index_of(s, 5, o, x, y) for s in range(3) for o in range(40) for x, y in corners])
    imgs = FULL.images(idx)[:, 0]
    assert imgs[:, [0, -1], :].sum() == 0 and imgs[:, :, [0, -1]].sum() == 0
    # No clipping anywhere, so the grid's mean pixel is the mean over shapes x scales x orientations.
    one_position = np.array([index_of(s, c, o, 16, 16) for s in range(3) for c in range(6) for o in range(40)])
    assert abs(FULL.images(one_position).mean() - 0.042) < 0.0005


def test_a_request_costs_memory_for_its_own_images_only():
    idx = np.arange(0, 737_280, 7373)[:100]
    FULL.images(idx)  # render the sprite masks first
    tracemalloc.start()
    try:
        FULL.images(idx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    one_image = 64 * 64 * 4
    assert peak < 3 * 100 * one_image


def test_bad_indices_raise_value_errors():
    with pytest.raises(ValueError, match="737280"):
        FULL.images(np.array([737_280]))
    with pytest.raises(ValueError, match="integers"):
        FULL.images(np.array([1.0]))


# --- tiny sub-grid ---------------------------------------------------------------------------------


def test_tiny_dsprites_is_a_sub_grid_of_the_full_one():
    assert TINY.name == "tiny_dsprites"
    assert TINY.factor_sizes == (3, 2, 4, 8, 8)
    assert num_observations(TINY) == 1536
    assert TINY.observation_shape == (1, 64, 64)
    idx = np.arange(num_observations(TINY))
    factors = indices_to_factors(TINY, idx)
    full_idx = factors_to_indices(FULL, TINY.full_grid_factors(factors))
    np.testing.assert_array_equal(TINY.images(idx[::37]), FULL.images(full_idx[::37]))
    np.testing.assert_array_equal(TINY.factor_values(factors), FULL.factor_values(TINY.full_grid_factors(factors)))
    values = TINY.factor_values(factors)
    assert values[:, 3].min() == 0.0 and values[:, 3].max() == 1.0  # positions include both ends


def test_sub_grid_indices_are_validated():
    with pytest.raises(ValueError, match="pos_x"):
        DSprites(factor_indices=((0,), (0,), (0,), (3, 1), (0,)))
    with pytest.raises(ValueError, match="scale"):
        DSprites(factor_indices=((0,), (6,), (0,), (0,), (0,)))


# --- colour and noisy variants ---------------------------------------------------------------------


def test_counter_uniform_is_a_pure_function_of_seed_and_index():
    a = counter_uniform(0, np.array([3, 9, 3]), 5)
    assert a.dtype == np.float32 and a.shape == (3, 5)
    np.testing.assert_array_equal(a[0], a[2])
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(counter_uniform(1, np.array([3]), 5)[0], a[0])
    many = counter_uniform(7, np.arange(2000), 100).ravel()
    assert many.min() >= 0.0 and many.max() < 1.0
    assert abs(many.mean() - 0.5) < 0.005 and abs(many.std() - np.sqrt(1 / 12)) < 0.005
    # Consecutive indices and counters are not correlated.
    grid = counter_uniform(7, np.arange(2000), 2)
    assert abs(np.corrcoef(grid[:-1, 0], grid[1:, 0])[0, 1]) < 0.06
    assert abs(np.corrcoef(grid[:, 0], grid[:, 1])[0, 1]) < 0.06


def test_color_dsprites_paints_the_sprite_with_one_colour_in_half_to_one():
    data = ColorDSprites(TINY)
    assert data.name == "color_tiny_dsprites" and data.observation_shape == (3, 64, 64)
    assert data.factor_sizes == TINY.factor_sizes and isinstance(data, GroundTruthDataset)
    idx = np.array([0, 100, 1535])
    imgs = data.images(idx)
    masks = TINY.images(idx)[:, 0] > 0
    assert imgs.dtype == np.float32 and imgs.shape == (3, 3, 64, 64)
    for img, mask in zip(imgs, masks, strict=True):
        assert np.all(img[:, ~mask] == 0)
        colour = img[:, mask]
        assert np.all(colour == colour[:, :1])  # one colour per image
        assert np.all((colour >= 0.5) & (colour <= 1.0))
    np.testing.assert_array_equal(data.images(idx[::-1])[::-1], imgs)  # pure per index
    assert not np.array_equal(ColorDSprites(TINY, seed=1).images(idx), imgs)
    assert ColorDSprites(TINY, seed=1).name == "color_tiny_dsprites_seed1"


def test_noisy_dsprites_puts_a_white_sprite_on_uniform_noise():
    data = NoisyDSprites(TINY)
    idx = np.array([7, 1000])
    imgs = data.images(idx)
    masks = TINY.images(idx)[:, 0] > 0
    assert imgs.shape == (2, 3, 64, 64) and imgs.dtype == np.float32
    for img, mask in zip(imgs, masks, strict=True):
        assert np.all(img[:, mask] == 1.0)
        background = img[:, ~mask]
        assert background.min() >= 0.0 and background.max() < 1.0
        assert abs(background.mean() - 0.5) < 0.02
    assert not np.array_equal(imgs[0, 0], imgs[0, 1])  # channels are independent noise
    np.testing.assert_array_equal(data.images(idx[1:]), imgs[1:])


def test_variants_sample_fresh_randomness_from_the_given_generator():
    data = ColorDSprites(TINY)
    factors = sample_factors(TINY, 4, np.random.default_rng(1))
    a = data.sample_observations_from_factors(factors, np.random.default_rng(5))
    b = data.sample_observations_from_factors(factors, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    data.sample_observations_from_factors(factors, rng)
    c = data.sample_observations_from_factors(factors, rng)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a.max(axis=1) > 0, TINY.sample_observations_from_factors(factors)[:, 0] > 0)
    noisy = NoisyDSprites(TINY).sample_observations_from_factors(factors, np.random.default_rng(0))
    assert noisy.shape == (4, 3, 64, 64) and noisy.min() >= 0.0 and noisy.max() == 1.0


# --- registry ----------------------------------------------------------------------------------------


def test_registry_names_and_instances():
    assert {"dsprites", "tiny_dsprites", "dsprites_official", "color_dsprites", "noisy_dsprites"} <= set(DATASETS)
    for name in ("dsprites", "tiny_dsprites", "color_dsprites", "noisy_dsprites"):
        data = get_dataset(name)
        assert isinstance(data, GroundTruthDataset) and data.name == name
    assert get_dataset("noisy_dsprites", seed=3).name == "noisy_dsprites_seed3"


def test_registry_errors_are_one_line_and_say_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(DatasetError, match=r"known datasets: .*tiny_dsprites") as err:
        get_dataset("dsprite")
    assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match="takes no options"):
        get_dataset("dsprites", seed=1)
    with pytest.raises(DatasetError, match="source must be one of"):
        get_dataset("color_dsprites", source="web")
    monkeypatch.delenv("DBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no_user_data"))
    for name, options in (("dsprites_official", {}), ("noisy_dsprites", {"source": "official"})):
        with pytest.raises(DatasetError, match=r"no data folder is set \(--data-dir, \$DBENCH_DATA_DIR or "
                           r"\$DISENTANGLEMENT_LIB_DATA\).*run `dbench download dsprites`") as err:
            get_dataset(name, **options)
        assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match=str(tmp_path)):
        get_dataset("dsprites_official", data_dir=tmp_path)
