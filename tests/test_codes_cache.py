"""The self-healing code cache: every bad shard quarantined and re-encoded, an unwritable folder never fatal.

Issue 12's cases (a truncated, zero-length or zip-garbage shard; NaN, the wrong width, out-of-range
indices, planted zeros; a read-only or full folder leaving ``.tmp`` files) and the rest of their class:
flipped bytes, a shard whose checksum was recomputed around bad contents (so only the content checks
can catch it), every array-level defect the one validator knows, a damaged manifest, an interrupted
write. After healing, the codes are exactly those of a fresh encoding and nothing stays behind.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from code_sources import GridDataset

from dbench.codes import CodeTable
from dbench.codes.cache import MANIFEST, QUARANTINE, TMP_NAME, CacheWarning, ShardCache, cache_key
from dbench.errors import EncoderError

ROOT = Path(__file__).resolve().parents[1]


class Encoder:
    """Codes (i + 1, -(i + 1), 2 (i + 1)) for image i; counts what it encodes."""

    def __init__(self, width: int = 3, logvar: bool = False):
        self.width, self.logvar, self.seen = width, logvar, []

    def __call__(self, images):
        ids = images[:, 0, 0, 0].astype(np.float64)
        self.seen.extend(ids.astype(int).tolist())
        mean = np.stack([(ids + 1) * (k + 1) * (-1) ** k for k in range(self.width)], axis=1).astype(np.float32)
        return mean, (np.zeros_like(mean) if self.logvar else None)


ALL = np.arange(200)


def fill(folder: Path, **kw) -> Path:
    """A cache of all 200 observations in 10 shards of 20; returns the entry folder."""
    table = CodeTable(GridDataset(), Encoder(**kw), batch_size=20, cache_dir=folder, fingerprint="enc")
    table.ensure(ALL)
    return folder / cache_key("enc", GridDataset())


def shards(entry: Path) -> list[Path]:
    return sorted(entry.glob("shard-*.npz"), key=lambda p: int(p.name.split("-")[1]))


def rewrite(path: Path, *, checksum: bool, drop: tuple[str, ...] = (), **arrays) -> None:
    """Replace a shard's arrays; with ``checksum``, under a name carrying the new bytes' checksum.

    A recomputed checksum models a shard damaged before it was hashed (or a deliberate plant): only
    the content checks can catch it.
    """
    data = {key: value for key, value in dict(np.load(path)).items() if key not in drop}
    data.update(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **data)
    raw = buffer.getvalue()
    path.unlink()
    name = f"shard-{path.name.split('-')[1]}-{hashlib.sha256(raw).hexdigest()}.npz" if checksum else path.name
    (path.parent / name).write_bytes(raw)


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "zero-length":
        path.write_bytes(b"")
    elif how == "zip-garbage":
        path.write_bytes(b"PK\x03\x04" + os.urandom(400))
    elif how == "flipped-byte":
        flipped = bytearray(data)
        flipped[len(flipped) - 40] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif how == "planted-zeros":  # same name: the checksum in it no longer matches
        rewrite(path, checksum=False, mean=np.zeros((20, 3), np.float32))
    elif how == "nan":
        mean = np.load(path)["mean"].copy()
        mean[3, 1] = np.nan
        rewrite(path, checksum=True, mean=mean)
    elif how == "inf":
        rewrite(path, checksum=True, mean=np.full((20, 3), np.inf, np.float32))
    elif how == "huge":
        rewrite(path, checksum=True, mean=np.full((20, 3), 1e300))
    elif how == "wrong-width":
        rewrite(path, checksum=True, mean=np.ones((20, 5), np.float32))
    elif how == "wrong-rows":
        rewrite(path, checksum=True, mean=np.ones((19, 3), np.float32))
    elif how == "out-of-range-indices":
        rewrite(path, checksum=True, indices=np.arange(190, 210))
    elif how == "negative-indices":
        rewrite(path, checksum=True, indices=np.arange(-20, 0))
    elif how == "float-indices":
        rewrite(path, checksum=True, indices=np.arange(20, dtype=np.float64))
    elif how == "2d-indices":
        rewrite(path, checksum=True, indices=np.arange(20).reshape(4, 5))
    elif how == "complex-codes":
        rewrite(path, checksum=True, mean=np.ones((20, 3), np.complex64))
    elif how == "string-codes":
        rewrite(path, checksum=True, mean=np.full((20, 3), "x"))
    elif how == "pickled-object-codes":
        rewrite(path, checksum=True, mean=np.array([[object()] * 3] * 20, dtype=object))
    elif how == "unexpected-logvar":
        rewrite(path, checksum=True, logvar=np.zeros((20, 3), np.float32))
    elif how == "extra-key":
        rewrite(path, checksum=True, payload=np.zeros(3))
    elif how == "missing-mean":
        rewrite(path, checksum=True, drop=("mean",))
    else:  # pragma: no cover - a typo in the parametrisation
        raise ValueError(how)


DAMAGE = ["truncated", "zero-length", "zip-garbage", "flipped-byte", "planted-zeros", "nan", "inf", "huge",
          "wrong-width", "wrong-rows", "out-of-range-indices", "negative-indices", "float-indices", "2d-indices",
          "complex-codes", "string-codes", "pickled-object-codes", "unexpected-logvar", "extra-key", "missing-mean"]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_bad_shard_is_quarantined_with_one_warning_and_re_encoded(tmp_path, how):
    entry = fill(tmp_path)
    victim = shards(entry)[4]
    observations = set(np.load(victim)["indices"].tolist())
    damage(victim, how)
    encoder = Encoder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = CodeTable(GridDataset(), encoder, batch_size=20, cache_dir=tmp_path, fingerprint="enc")
        table.ensure(ALL)
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "\n" not in messages[0], messages
    assert "cache shard" in messages[0] and "quarantine" in messages[0] and "encoded again" in messages[0]
    assert set(encoder.seen) == observations  # exactly the bad shard's observations, once each
    np.testing.assert_array_equal(table.lookup(ALL), Encoder()(GridDataset().images(ALL))[0])
    assert len(list((entry / QUARANTINE).iterdir())) == 1
    assert not [p for p in entry.iterdir() if TMP_NAME.match(p.name)]
    # Healed for good: the next run reads everything, warns about nothing and encodes nothing.
    again = Encoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        CodeTable(GridDataset(), again, batch_size=20, cache_dir=tmp_path, fingerprint="enc").ensure(ALL)
    assert again.seen == []


def test_several_bad_shards_each_get_their_warning(tmp_path):
    entry = fill(tmp_path)
    for path, how in zip(shards(entry), ["truncated", "nan", "wrong-width", "zero-length"], strict=False):
        damage(path, how)
    with pytest.warns(CacheWarning) as caught:
        table = CodeTable(GridDataset(), Encoder(), batch_size=20, cache_dir=tmp_path, fingerprint="enc")
    assert len(caught) == 4 and table.n_cached == 120


@pytest.mark.parametrize("manifest", ["{not json", "[" * 100_000 + "]" * 100_000, '{"a": "' + "x" * (2 << 20) + '"}',
                                      "\udcff"], ids=["not JSON", "deep", "2 MB", "not UTF-8"])
def test_a_damaged_manifest_is_replaced_and_the_width_taken_from_the_shards(tmp_path, manifest):
    entry = fill(tmp_path)
    (entry / MANIFEST).write_bytes(manifest.encode("utf-8", "surrogateescape"))
    damage(shards(entry)[0], "wrong-width")  # the minority width is quarantined without the manifest's help
    with pytest.warns(CacheWarning) as caught:
        table = CodeTable(GridDataset(), Encoder(), batch_size=20, cache_dir=tmp_path, fingerprint="enc")
    assert any("cache manifest" in str(w.message) for w in caught)
    assert table.width == 3 and table.n_cached == 180
    assert json.loads((entry / MANIFEST).read_text())["n_latents"] == 3


def test_shards_of_an_older_dbench_without_checksums_are_still_read(tmp_path):
    entry = fill(tmp_path)
    (entry / MANIFEST).unlink()
    for i, path in enumerate(shards(entry)):
        path.rename(path.with_name(f"shard-{i}-{i:016x}.npz"))  # the earlier naming: no checksum
    encoder = Encoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        CodeTable(GridDataset(), encoder, batch_size=20, cache_dir=tmp_path, fingerprint="enc").ensure(ALL)
    assert encoder.seen == []


def test_an_encoder_that_changed_width_under_the_same_fingerprint_is_one_line(tmp_path):
    CodeTable(GridDataset(), Encoder(), batch_size=20, cache_dir=tmp_path, fingerprint="enc").ensure(ALL[:100])
    table = CodeTable(GridDataset(), Encoder(width=4), batch_size=20, cache_dir=tmp_path, fingerprint="enc")
    assert table.n_cached == 100
    with pytest.raises(EncoderError, match=r"now returns 4 latents .* have 3 .*dbench cache clear") as exc:
        table.ensure(ALL)
    assert "\n" not in str(exc.value)


# -- folders that cannot be written -------------------------------------------------------------------


@pytest.mark.parametrize("error", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT])
def test_an_unwritable_cache_warns_once_and_the_run_goes_on(tmp_path, monkeypatch, error):
    real_fsync = os.fsync

    def failing_fsync(fd):
        real_fsync(fd)
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    encoder = Encoder()
    with pytest.warns(CacheWarning) as caught:
        table = CodeTable(GridDataset(), encoder, batch_size=20, cache_dir=tmp_path, fingerprint="enc")
        table.ensure(ALL)
    assert len(caught) == 1 and os.strerror(error) in str(caught[0].message)
    np.testing.assert_array_equal(table.lookup(ALL), Encoder()(GridDataset().images(ALL))[0])
    entry = tmp_path / cache_key("enc", GridDataset())
    assert not [p for p in entry.iterdir() if TMP_NAME.match(p.name)]


def test_an_interrupt_during_a_shard_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    table = CodeTable(GridDataset(), Encoder(), batch_size=20, cache_dir=tmp_path, fingerprint="enc")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        table.ensure(ALL)
    assert not [p for p in table.cache.path.iterdir() if TMP_NAME.match(p.name)]


def test_a_cache_dir_that_is_a_file_warns_and_the_run_goes_on(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(CacheWarning, match="cannot use cache folder"):
        table = CodeTable(GridDataset(), Encoder(), batch_size=20, cache_dir=blocker, fingerprint="enc")
    table.ensure(ALL)
    assert len(table) == 200 and blocker.read_text() == "x"


def test_stale_temporary_files_of_a_killed_run_are_removed(tmp_path):
    entry = fill(tmp_path)
    stale, fresh = entry / ".shard-old.tmp", entry / ".shard-new.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(stale, (1, 1))
    ShardCache(tmp_path, "enc", GridDataset())
    assert not stale.exists() and fresh.exists()  # a concurrent writer's file is left alone


def _cli(*args: str, cwd: Path, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dbench", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=preexec)


EVALUATE = ["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), "--dataset", "tiny_dsprites", "--metrics",
            "mig", "--set", "mig.n_train=300", "--backend", "numpy", "--batch-size", "32"]


def test_a_full_disk_warns_and_the_evaluation_finishes_without_tmp_files(tmp_path):
    # RLIMIT_FSIZE makes the kernel refuse writes past 1 KB (EFBIG), as a full disk refuses them (ENOSPC):
    # the manifest fits, the first shard (32 x 10 float32 codes) does not.
    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    proc = _cli(*EVALUATE, "--cache-dir", "cache", cwd=tmp_path, preexec=small_files)
    assert proc.returncode == 0, proc.stderr
    warnings_ = [line for line in proc.stderr.splitlines() if line.startswith("dbench: warning")]
    assert len(warnings_) == 1 and "cannot write to cache folder" in warnings_[0], proc.stderr
    assert "mig.mig" in proc.stdout
    assert not [p for p in (tmp_path / "cache").rglob("*") if ".tmp" in p.name]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap for a read-only mount")
def test_a_read_only_cache_folder_warns_and_the_evaluation_finishes(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    probe = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(cache), str(cache), "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot mount here: {probe.stderr.decode()[:100]}")
    command = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", str(cache), str(cache), sys.executable, "-m", "dbench",
               *EVALUATE, "--cache-dir", str(cache), "--out", str(tmp_path / "R.json")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "Read-only file system" in proc.stderr and "going on without a cache" in proc.stderr
    assert json.loads((tmp_path / "R.json").read_text())["status"] == "ok"
    assert list(cache.iterdir()) == []


def test_a_healed_cache_gives_the_scores_of_a_fresh_run(tmp_path):
    first = _cli(*EVALUATE, "--cache-dir", "cache", "--out", "fresh.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    entry = next((tmp_path / "cache").iterdir())
    for path, how in zip(shards(entry), ["truncated", "planted-zeros", "zip-garbage"], strict=False):
        damage(path, how)
    second = _cli(*EVALUATE, "--cache-dir", "cache", "--out", "healed.json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("dbench: warning: cache shard") == 3
    fresh, healed = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("fresh", "healed"))
    assert healed["status"] == "ok" and healed["scores"] == fresh["scores"]
