"""The encode-once code table: each unique index encoded once, lookups, on-disk resume."""

from __future__ import annotations

import numpy as np
import pytest
from code_sources import GridDataset

from dbench.codes import CodeTable
from dbench.errors import EncoderError


class CountingEncoder:
    def __init__(self, fail_after: int | None = None):
        self.seen: list[int] = []
        self.fail_after = fail_after

    def __call__(self, images):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise EncoderError("encoder raised RuntimeError: boom")
        ids = images[:, 0, 0, 0].astype(int).tolist()
        self.seen.extend(ids)
        mean = np.stack([images[:, 0, 0, 0], -images[:, 0, 0, 0]], axis=1).astype(np.float32)
        return mean, np.zeros_like(mean)


def test_each_unique_index_is_encoded_once():
    enc = CountingEncoder()
    table = CodeTable(GridDataset(), enc, batch_size=7)
    requests = [np.array([[3, 4], [3, 5]]), np.array([5, 6, 7, 3])]
    for r in requests:
        table.ensure(r)
    table.ensure(np.array([3, 4, 5, 6, 7]))
    assert sorted(enc.seen) == [3, 4, 5, 6, 7]
    assert table.n_encoded == 5
    codes = table.lookup(np.array([[3, 4], [7, 3]]))
    assert codes.shape == (2, 2, 2)
    np.testing.assert_array_equal(codes[..., 0], [[3, 4], [7, 3]])
    np.testing.assert_array_equal(table.lookup(np.array([6]), part="logvar"), [[0, 0]])


def test_lookup_of_missing_index_is_an_error():
    table = CodeTable(GridDataset(), CountingEncoder())
    table.ensure(np.array([1]))
    with pytest.raises(KeyError, match="observation 2"):
        table.lookup(np.array([1, 2]))
    assert table.covers(np.array([1])) and not table.covers(np.array([1, 2]))


def test_interrupted_run_resumes_from_cache(tmp_path):
    wanted = np.arange(0, 40)
    first = CountingEncoder(fail_after=16)
    table = CodeTable(GridDataset(), first, batch_size=8, cache_dir=tmp_path, fingerprint="enc-a")
    with pytest.raises(EncoderError):
        table.ensure(wanted)
    assert len(table) == 16  # the two batches before the failure are kept

    second = CountingEncoder()
    resumed = CodeTable(GridDataset(), second, batch_size=8, cache_dir=tmp_path, fingerprint="enc-a")
    assert len(resumed) == 16
    resumed.ensure(wanted)
    assert sorted(second.seen) == list(range(16, 40))  # only what was missing
    np.testing.assert_array_equal(resumed.lookup(wanted)[:, 0], wanted)

    other = CountingEncoder()
    fresh = CodeTable(GridDataset(), other, batch_size=8, cache_dir=tmp_path, fingerprint="enc-b")
    fresh.ensure(wanted)
    assert len(other.seen) == 40  # another encoder never reads this encoder's codes


def test_latent_count_must_not_change_between_batches():
    calls = {"n": 0}

    def encode(images):
        calls["n"] += 1
        d = 2 if calls["n"] == 1 else 3
        return np.zeros((images.shape[0], d)), None

    table = CodeTable(GridDataset(), encode, batch_size=4)
    with pytest.raises(EncoderError, match="latents"):
        table.ensure(np.arange(8))
