"""SplitMix64 hashing: the one counter-based random source behind per-observation randomness.

Datasets with per-observation noise and the sampled representation both need random numbers that are
a pure function of ``(seed, observation index, j)``, so that encode-once caching never changes them.
SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014): the
``k``-th output of a stream with key ``s`` is ``mix64(s + k * GOLDEN_GAMMA)``.
"""

from __future__ import annotations

import numpy as np

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (a bijective avalanche; overflow wraps by design)."""
    z = np.array(z, dtype=np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def stream_bits(keys: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` outputs of the SplitMix64 stream of each key: uint64 ``(len(keys), count)``."""
    counters = (np.arange(1, count + 1, dtype=np.uint64) * GOLDEN_GAMMA)[None, :]
    with np.errstate(over="ignore"):
        return mix64(np.asarray(keys, dtype=np.uint64)[:, None] + counters)
