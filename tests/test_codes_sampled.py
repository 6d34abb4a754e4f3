"""The sampled representation: one posterior sample per observation, reproducible per index."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dbench.codes import represent, sample_representation, standard_normal_per_index
from dbench.encoders import load_encoder
from dbench.errors import ConfigError, EncoderError


def test_noise_depends_only_on_seed_and_index_not_on_the_batch():
    indices = np.array([7, 123456, 3, 737279])
    alone = np.concatenate([standard_normal_per_index(indices[i : i + 1], 6, seed=0) for i in range(4)])
    together = standard_normal_per_index(indices, 6, seed=0)
    shuffled = standard_normal_per_index(indices[::-1], 6, seed=0)[::-1]
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(shuffled, together)


def test_seeds_indices_and_dimensions_give_different_noise():
    base = standard_normal_per_index(np.arange(100), 4, seed=0)
    assert not np.allclose(base, standard_normal_per_index(np.arange(100), 4, seed=1))
    assert not np.allclose(base[1:], base[:-1])
    # Earlier columns do not change when the code gets wider.
    np.testing.assert_array_equal(base[:, :3], standard_normal_per_index(np.arange(100), 3, seed=0))


def test_noise_is_standard_normal_and_uncorrelated():
    z = standard_normal_per_index(np.arange(20000), 5, seed=3)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    assert stats.kstest(z[:, 2], "norm").pvalue > 1e-3
    corr = np.corrcoef(z.T)
    assert np.abs(corr - np.eye(5)).max() < 0.05
    # Neighbouring indices are independent too.
    assert abs(np.corrcoef(z[:-1, 0], z[1:, 0])[0, 1]) < 0.05


def test_sample_is_mean_plus_scaled_noise():
    mean = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    logvar = np.log(np.array([[4.0, 0.25], [1.0, 9.0]], dtype=np.float32))
    indices = np.array([10, 20])
    sample = sample_representation(mean, logvar, indices, seed=5)
    eps = standard_normal_per_index(indices, 2, seed=5)
    np.testing.assert_allclose(sample, mean + np.array([[2.0, 0.5], [1.0, 3.0]]) * eps, rtol=1e-6)
    assert sample.dtype == np.float32
    np.testing.assert_array_equal(sample, sample_representation(mean, logvar, indices, seed=5))


def test_tiny_variance_gives_the_mean():
    mean = np.random.default_rng(0).normal(size=(8, 3))
    np.testing.assert_allclose(sample_representation(mean, np.full((8, 3), -60.0), np.arange(8), 0), mean, atol=1e-12)


def test_bad_arguments():
    mean = np.zeros((3, 2))
    with pytest.raises(EncoderError, match="needs an encoder that returns"):
        sample_representation(mean, None, np.arange(3), 0)
    with pytest.raises(ValueError, match="indices must have shape"):
        sample_representation(mean, mean, np.arange(4), 0)
    with pytest.raises(ValueError, match="both be"):
        sample_representation(mean, np.zeros((3, 3)), np.arange(3), 0)
    with pytest.raises(ValueError, match="integer"):
        standard_normal_per_index(np.array([0.5]), 2, 0)


def _pair(images):
    """An encoder returning (mean, logvar): mean = the first three pixels, variance exp(-4)."""
    codes = images.reshape(images.shape[0], -1)[:, :3].astype(np.float64)
    return codes, np.full_like(codes, -4.0)


def test_represent_gives_mean_or_reproducible_samples():
    images = np.random.default_rng(1).random((5, 1, 64, 64), dtype=np.float32)
    indices = np.arange(10, 15)
    batch = load_encoder(_pair).encode(images)
    mean_codes = represent(batch.mean, batch.logvar, indices)
    np.testing.assert_array_equal(mean_codes, _pair(images)[0])
    first = represent(batch.mean, batch.logvar, indices, representation="sampled", seed=7)
    again = represent(*load_encoder(_pair).encode_arrays(images), indices, representation="sampled", seed=7)
    np.testing.assert_array_equal(first, again)
    assert 0 < np.abs(first - mean_codes).max() < 1.0  # standard deviation exp(-2) ~ 0.14
    other_seed = represent(batch.mean, batch.logvar, indices, representation="sampled", seed=8)
    assert not np.array_equal(first, other_seed)


def test_sampled_representation_requires_logvar():
    codes = np.zeros((4, 3))
    with pytest.raises(EncoderError) as exc:
        represent(codes, None, np.arange(4), representation="sampled")
    message = str(exc.value)
    assert "\n" not in message and "representation='sampled'" in message and "(mean, logvar)" in message
    np.testing.assert_array_equal(represent(codes, None, np.arange(4)), codes)  # the mean needs no logvar


def test_unknown_representation_is_a_config_error():
    with pytest.raises(ConfigError, match="representation must be one of mean, sampled; got 'median'"):
        represent(np.zeros((2, 3)), None, np.arange(2), representation="median")
