"""The *sampled* representation: one draw from the encoder's Gaussian posterior per observation.

disentanglement_lib evaluates either the posterior mean or a sample ``mean + exp(logvar / 2) * eps``
(Locatello et al. 2019, "Challenging common assumptions...", section on mean vs sampled
representations). dbench encodes each observation once and caches its codes, so the noise ``eps`` must
be a pure function of ``(seed, observation index, code dimension)``: the same observation gets the same
sample whichever batch, plan or metric it appears in.

``eps`` comes from a counter-based generator: SplitMix64 (Steele, Lea & Flood 2014) hashes the counter
``(seed, index, pair of dimensions)`` into 64 random bits, and Box-Muller turns two uniforms into two
independent standard normals. Everything is vectorised NumPy uint64 arithmetic.

:func:`represent` picks the representation of encoded codes (the mean, or a sample), and
:func:`table_representation` does the same for codes looked up in a
:class:`~dbench.codes.table.CodeTable`, as the evaluation pipeline does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dbench._counter import GOLDEN_GAMMA as _GOLDEN_GAMMA
from dbench._counter import mix64 as _splitmix64
from dbench._counter import stream_bits
from dbench.choices import REPRESENTATIONS
from dbench.errors import ConfigError, EncoderError

if TYPE_CHECKING:
    from dbench.codes.table import CodeTable


def _uniform_open(bits: np.ndarray) -> np.ndarray:
    """Uniform float64 in (0, 1] from the top 53 of 64 random bits (never 0, so log() is safe)."""
    return ((bits >> np.uint64(11)).astype(np.float64) + 1.0) * (1.0 / 9007199254740992.0)


def standard_normal_per_index(indices: np.ndarray, n_dims: int, seed: int) -> np.ndarray:
    """Standard normals ``(len(indices), n_dims)``; row ``i`` depends only on ``(seed, indices[i])``.

    Column ``j`` is also independent of ``n_dims``, so widening the code keeps earlier columns.
    """
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError(f"indices must be a 1-D integer array; got shape {indices.shape} dtype {indices.dtype}")
    if np.any(indices < 0):
        raise ValueError("indices must be non-negative observation indices")
    # One 64-bit stream key per (seed, index): hashing twice separates nearby seeds and indices.
    seed_key = _splitmix64(np.array([seed], dtype=np.uint64) * _GOLDEN_GAMMA)
    with np.errstate(over="ignore"):
        row_key = _splitmix64(seed_key ^ _splitmix64(indices.astype(np.uint64) * _GOLDEN_GAMMA + _GOLDEN_GAMMA))
    n_pairs = (n_dims + 1) // 2
    bits = stream_bits(row_key, 2 * n_pairs)
    u1, u2 = _uniform_open(bits[:, 0::2]), _uniform_open(bits[:, 1::2])
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    normals = np.empty((indices.shape[0], 2 * n_pairs), dtype=np.float64)
    normals[:, 0::2] = radius * np.cos(angle)
    normals[:, 1::2] = radius * np.sin(angle)
    return normals[:, :n_dims]


def sample_representation(
    mean: np.ndarray, logvar: np.ndarray | None, indices: np.ndarray, seed: int
) -> np.ndarray:
    """One posterior sample per observation: ``mean + exp(logvar / 2) * eps``.

    Parameters
    ----------
    mean, logvar : np.ndarray
        ``(N, D)`` posterior means and log-variances of observations ``indices``.
    indices : np.ndarray
        ``(N,)`` flat dataset indices of the observations; ``eps`` for row ``i`` is drawn from a
        generator keyed by ``(seed, indices[i])``, so it does not depend on batch composition.
    seed : int
        Seed of the representation noise.

    Returns
    -------
    np.ndarray
        ``(N, D)`` samples in the dtype of ``mean`` (float32 stays float32).
    """
    if logvar is None:
        raise EncoderError(
            "representation='sampled' needs an encoder that returns (mean, logvar); "
            "this encoder returns codes only, so use representation='mean'"
        )
    mean = np.asarray(mean)
    logvar = np.asarray(logvar)
    if mean.ndim != 2 or logvar.shape != mean.shape:
        raise ValueError(f"mean and logvar must both be (N, D); got {mean.shape} and {logvar.shape}")
    indices = np.asarray(indices)
    if indices.shape != (mean.shape[0],):
        raise ValueError(f"indices must have shape ({mean.shape[0]},) to match mean; got {indices.shape}")
    eps = standard_normal_per_index(indices, mean.shape[1], seed)
    out_dtype = np.result_type(mean.dtype, np.float32)
    sample = mean.astype(np.float64) + np.exp(0.5 * logvar.astype(np.float64)) * eps
    return sample.astype(out_dtype)


def check_representation(representation: str) -> str:
    """``representation`` if it is one of :data:`~dbench.choices.REPRESENTATIONS`, else a ConfigError."""
    if representation not in REPRESENTATIONS:
        raise ConfigError(f"representation must be one of {', '.join(REPRESENTATIONS)}; got {representation!r}")
    return representation


def represent(
    mean: np.ndarray, logvar: np.ndarray | None, indices: np.ndarray, *, representation: str = "mean", seed: int = 0
) -> np.ndarray:
    """Codes of observations ``indices`` in ``representation``: ``mean`` itself, or one sample each.

    ``mean`` and ``logvar`` are what an encoder returned for those observations (e.g. the fields of
    :meth:`dbench.encoders.LoadedEncoder.encode`'s batch); ``seed`` seeds the sample's noise.
    """
    if check_representation(representation) == "mean":
        return mean
    return sample_representation(mean, logvar, indices, seed)


def table_representation(table: CodeTable, indices: np.ndarray, representation: str, seed: int) -> np.ndarray:
    """Float64 codes ``indices.shape + (D,)`` from ``table`` in ``representation`` (any index shape)."""
    mean = table.lookup(indices).astype(np.float64, copy=False)
    if check_representation(representation) == "mean":
        return mean
    logvar = table.lookup(indices, part="logvar").astype(np.float64, copy=False)
    flat_idx = np.asarray(indices, dtype=np.int64).ravel()
    sampled = sample_representation(mean.reshape(flat_idx.size, -1), logvar.reshape(flat_idx.size, -1), flat_idx, seed)
    return np.asarray(sampled, dtype=np.float64).reshape(mean.shape)
