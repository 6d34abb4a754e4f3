"""Files dbench writes get the permissions ``open()`` would give them: ``0o666`` less the umask.

Atomic writes used to go through ``tempfile.mkstemp``, whose files are always ``0o600`` whatever the
umask, so colleagues and web servers could not read result JSONs, checkpoints or exported encoders.
Each writer is run under umask 022 (files ``0o644``) and 077 (files ``0o600``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dbench._json import atomic_path, write_atomic, write_json_atomic

UMASKS = [0o022, 0o077, 0o002]


@pytest.fixture(params=UMASKS, ids=[f"umask{u:03o}" for u in UMASKS])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def expected(umask: int) -> int:
    return 0o666 & ~umask


def test_json_and_generic_atomic_writes_honour_the_umask(tmp_path, umask):
    assert mode(write_json_atomic(tmp_path / "r.json", {"a": 1})) == expected(umask)
    assert mode(write_atomic(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"x"))) == expected(umask)
    with atomic_path(tmp_path / "c.npz") as tmp:
        np.savez(tmp, a=np.arange(3))
    assert mode(tmp_path / "c.npz") == expected(umask)
    # Rewriting a file keeps it readable too, and no temporary file is left behind.
    assert mode(write_json_atomic(tmp_path / "r.json", {"a": 2})) == expected(umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "c.npz", "r.json"]


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path, umask):
    path = write_json_atomic(tmp_path / "r.json", {"a": 1})

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(path, fail)
    assert path.read_text().strip().startswith("{") and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_results_and_code_shards_honour_the_umask(tmp_path, umask):
    import dbench

    def encode(images):  # the sprite's mass and centroid
        pixels = images[:, 0]
        ys, xs = np.mgrid[: pixels.shape[1], : pixels.shape[2]]
        mass = pixels.sum(axis=(1, 2)) + 1e-6
        return np.stack([mass, (pixels * xs).sum(axis=(1, 2)) / mass, (pixels * ys).sum(axis=(1, 2)) / mass], axis=1)

    result = dbench.evaluate(encode, dataset="tiny_dsprites", metrics="mig", params={"mig": {"n_train": 100}},
                             backend="numpy", cache_dir=tmp_path / "cache")
    assert mode(result.write(tmp_path / "result.json")) == expected(umask)
    shards = list((tmp_path / "cache").rglob("shard-*.npz"))
    assert shards and all(mode(p) == expected(umask) for p in shards)


def test_leaderboard_pages_honour_the_umask(tmp_path, umask):
    from leaderboard_data import result as make_result

    from dbench.leaderboard.build import build_leaderboard

    results = tmp_path / "results"
    results.mkdir()
    write_json_atomic(results / "a.json", make_result("a", (0.5, 0.5, 0.5)))
    report = build_leaderboard(results, tmp_path / "site")
    assert report.written and all(mode(p) == expected(umask) for p in report.written)


def test_run_folder_files_honour_the_umask(tmp_path, umask):
    pytest.importorskip("torch")
    from reference_models.checkpoint import CHECKPOINT_FILE, CONFIG_FILE, ENCODER_FILE
    from reference_models.training import train

    run = tmp_path / "run"
    train("vae", dataset="tiny_dsprites", steps=0, seed=0, out_dir=run, progress=False)
    for name in (CONFIG_FILE, CHECKPOINT_FILE, ENCODER_FILE):
        assert mode(run / name) == expected(umask), name
