"""``dbench cache ls`` / ``dbench cache clear``: what is cached for which encoder and dataset, and removing it.

Clearing touches only what dbench wrote: a mistaken ``--cache-dir`` (a home folder with numba's
kernels and the user's own files in it) loses nothing but cached codes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from code_sources import GridDataset

from dbench._cli.main import main
from dbench.codes import CodeTable
from dbench.codes.inventory import clear_caches, list_caches

ROOT = Path(__file__).resolve().parents[1]


def encode(images):
    ids = images[:, 0, 0, 0].astype(np.float64) + 1
    return np.stack([ids, -ids], axis=1), None


@pytest.fixture
def cache(tmp_path) -> Path:
    """Three entries (two encoders on one grid, one on another) beside numba's folder and a user file."""
    for fingerprint, dataset, n in [("sha256:aaaa1111", "grid", 50), ("sha256:bbbb2222", "grid", 30),
                                    ("sha256:aaaa1111", "other", 20)]:
        CodeTable(GridDataset(dataset), encode, batch_size=10, cache_dir=tmp_path, fingerprint=fingerprint).ensure(np.arange(n))
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "kernel.nbi").write_text("compiled")
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path


def test_ls_lists_each_encoder_and_dataset(cache, capsys):
    assert main(["cache", "ls", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "3 entries" in out
    lines = {line.split()[0] + " " + line.split()[1]: line for line in out.splitlines()[2:] if line.startswith("sha256")}
    assert set(lines) == {"sha256:aaaa1111 grid", "sha256:bbbb2222 grid", "sha256:aaaa1111 other"}
    assert " 50 " in lines["sha256:aaaa1111 grid"] and " 2 " in lines["sha256:aaaa1111 grid"]  # observations, width
    entries = {(e.fingerprint, e.dataset): e for e in list_caches(cache)}
    assert entries[("sha256:bbbb2222", "grid")].n_observations == 30
    assert entries[("sha256:bbbb2222", "grid")].n_shards == 3


def test_ls_of_an_empty_or_missing_folder(tmp_path, capsys):
    assert main(["cache", "ls", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "no cached codes" in capsys.readouterr().out


@pytest.mark.parametrize("selector, left", [
    (["--fingerprint", "sha256:aaaa"], {("sha256:bbbb2222", "grid")}),  # a prefix will do
    (["--dataset", "grid"], {("sha256:aaaa1111", "other")}),
    (["--fingerprint", "sha256:aaaa1111", "--dataset", "other"], {("sha256:aaaa1111", "grid"), ("sha256:bbbb2222", "grid")}),
    (["--all"], set()),
])
def test_clear_removes_only_the_chosen_entries_and_nothing_else(cache, capsys, selector, left):
    assert main(["cache", "clear", "--cache-dir", str(cache), *selector]) == 0
    assert "removed" in capsys.readouterr().out
    assert {(e.fingerprint, e.dataset) for e in list_caches(cache)} == left
    assert (cache / "numba" / "kernel.nbi").read_text() == "compiled" and (cache / "notes.txt").read_text() == "mine"


def test_clear_leaves_foreign_files_inside_an_entry(cache):
    entry = next(e for e in list_caches(cache) if e.dataset == "other")
    (entry.path / "keep-me.txt").write_text("mine")
    removed, notes = clear_caches(cache, dataset="other")
    assert len(removed) == 1 and len(notes) == 1 and "keep-me.txt" in notes[0]
    assert sorted(p.name for p in entry.path.iterdir()) == ["keep-me.txt"]


def test_clear_without_a_selector_or_with_no_match(cache, capsys):
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 2
    assert "say what to clear" in capsys.readouterr().err
    assert main(["cache", "clear", "--cache-dir", str(cache), "--fingerprint", "nope"]) == 0
    assert "nothing to clear" in capsys.readouterr().out
    assert len(list_caches(cache)) == 3


def test_a_cache_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    assert main(["cache", "ls", "--cache-dir", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a file, not a folder" in err


def test_the_default_folder_is_dbench_cache_dir(cache):
    proc = subprocess.run([sys.executable, "-m", "dbench", "cache", "ls"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "DBENCH_CACHE_DIR": str(cache)})
    assert proc.returncode == 0 and "3 entries" in proc.stdout, proc.stderr


def test_an_evaluate_cache_is_listed_with_its_encoder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "dbench", "evaluate", str(ROOT / "examples" / "numpy_encoder.py"),
                          "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=200", "--backend",
                          "numpy", "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    ls = subprocess.run([sys.executable, "-m", "dbench", "cache", "ls", "--cache-dir", str(tmp_path)],
                        capture_output=True, text=True, timeout=60, env=env)
    assert "tiny_dsprites" in ls.stdout and "sha256:" in ls.stdout and " 10 " in ls.stdout, ls.stdout
