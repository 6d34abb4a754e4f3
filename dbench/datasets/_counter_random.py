"""Counter-based uniform random numbers keyed by (seed, flat index).

Datasets with per-observation randomness (colour, background noise) must still return the same image
for the same flat index every time (the encode-once code table is keyed by flat index). A stateful
generator cannot give that for arbitrary, unordered index requests; a counter-based one can: the
``j``-th number of observation ``i`` is a pure hash of ``(seed, i, j)``, computed for a whole batch at
once with vectorised NumPy integer arithmetic.

The hash is SplitMix64's finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014), applied to ``key(seed, i) + (j + 1) * golden_gamma``, i.e. the j-th output of
a SplitMix64 stream whose state is derived from the seed and the index.
"""

from __future__ import annotations

import numpy as np

from dbench._counter import GOLDEN_GAMMA as _GOLDEN_GAMMA
from dbench._counter import mix64 as _mix64
from dbench._counter import stream_bits

_SEED_SALT = np.uint64(0xD1B54A32D192ED03)


def _stream_keys(seed: int, indices: np.ndarray) -> np.ndarray:
    """One well-mixed uint64 stream key per index; distinct seeds give unrelated keys."""
    with np.errstate(over="ignore"):
        seed_key = _mix64(np.array([np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _SEED_SALT + _GOLDEN_GAMMA]))[0]
        return _mix64(np.asarray(indices, dtype=np.int64).astype(np.uint64) ^ seed_key)


def counter_uniform(seed: int, indices: np.ndarray, count: int) -> np.ndarray:
    """Uniform float32 numbers in [0, 1), shape ``(len(indices), count)``, a pure function of ``(seed, index, j)``.

    Each value carries 24 random bits (float32's full mantissa), so it is exactly representable; one
    64-bit hash yields two values (its top and its low 24-bit fields), halving the hashing work.
    """
    keys = _stream_keys(seed, indices)
    n_hashes = (count + 1) // 2
    bits = stream_bits(keys, n_hashes)
    fields = np.empty((keys.size, n_hashes, 2), dtype=np.uint32)
    fields[:, :, 0] = bits >> np.uint64(40)
    fields[:, :, 1] = bits & np.uint64(0xFFFFFF)
    values = fields.reshape(keys.size, 2 * n_hashes)[:, :count].astype(np.float32)
    values *= np.float32(2.0**-24)
    return values
