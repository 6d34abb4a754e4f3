"""Compiled kernels are cached in the user's cache folder, never inside the installed package.

numba's own ``cache=True`` writes ``.nbi``/``.nbc`` files next to the source; inside
``site-packages/dbench`` they outlive an uninstall and turn the leftover folder into a namespace
package that breaks ``import dbench``. Each check runs in a fresh interpreter (the cache folder is
chosen once per process, when the kernels are defined) with its own HOME and XDG_CACHE_HOME.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbench.estimators import _numba

pytestmark = pytest.mark.skipif(not _numba.HAVE_NUMBA, reason="numba not installed")
REPO = Path(__file__).resolve().parents[1]
TOY_KERNELS = '''
import numpy as np
from dbench.estimators._numba import kernel, prange

@kernel()
def add_one(x):
    return x + 1

@kernel(parallel=True)
def doubled(x):
    out = np.empty_like(x)
    for i in prange(x.size):
        out[i] = 2 * x[i]
    return out
'''
TOY_RUN = '''
import numpy as np, numba, toy_kernels
before = numba.config.CACHE_DIR
print(toy_kernels.add_one(41), toy_kernels.doubled(np.arange(3.0)).tolist(), numba.config.CACHE_DIR == before)
print(sum(toy_kernels.add_one.stats.cache_hits.values()) + sum(toy_kernels.doubled.stats.cache_hits.values()))
'''


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DBENCH_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), **extra)
    return env


def _run(code: str, env: dict[str, str], *paths: Path) -> list[str]:
    env = dict(env, PYTHONPATH=os.pathsep.join(str(p) for p in paths))
    done = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")


def _compiled_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A module of two small kernels, in a folder of its own (like an installed package)."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "toy_kernels.py").write_text(TOY_KERNELS)
    return folder


def test_kernels_cache_in_the_xdg_folder_and_load_from_it(tmp_path, toy):
    env = _environment(tmp_path)
    first = _run(TOY_RUN, env, REPO, toy)
    assert first[0] == "42 [0.0, 2.0, 4.0] True"  # numba's own setting is left as it was
    assert first[1] == "0"
    assert _compiled_files(toy) == []
    cached = _compiled_files(tmp_path / "xdg" / "dbench" / "numba")
    assert {p.suffix for p in cached} == {".nbi", ".nbc"}
    assert _run(TOY_RUN, env, REPO, toy)[1] == "2"  # the second process loads both kernels compiled


def test_dbench_cache_dir_takes_precedence(tmp_path, toy):
    env = _environment(tmp_path, DBENCH_CACHE_DIR=str(tmp_path / "mine"), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    assert _run(TOY_RUN, env, REPO, toy)[0] == "42 [0.0, 2.0, 4.0] True"
    assert _compiled_files(tmp_path / "mine" / "numba")
    assert not (tmp_path / "numba").exists() and not (tmp_path / "xdg").exists()
    assert _compiled_files(toy) == []


def test_unusable_cache_folder_means_no_cache_and_no_crash(tmp_path, toy):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    env = _environment(tmp_path, DBENCH_CACHE_DIR=str(blocker))
    for _ in range(2):
        assert _run(TOY_RUN, env, REPO, toy)[:2] == ["42 [0.0, 2.0, 4.0] True", "0"]
    assert _compiled_files(tmp_path) == []  # nothing anywhere: not next to the source, not in HOME


def test_corrupt_cache_files_are_recompiled_and_replaced(tmp_path, toy):
    env = _environment(tmp_path)
    _run(TOY_RUN, env, REPO, toy)
    files = _compiled_files(tmp_path / "xdg")
    for path in files:
        path.write_bytes(b"garbage, as after a crash or a full disk")
    assert _run(TOY_RUN, env, REPO, toy)[:2] == ["42 [0.0, 2.0, 4.0] True", "0"]
    assert _run(TOY_RUN, env, REPO, toy)[1] == "2"  # the rewritten cache is good again
    assert _compiled_files(toy) == []


def test_cache_folder_choice(tmp_path, monkeypatch):
    for name in ("DBENCH_CACHE_DIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _numba.numba_cache_folder() == tmp_path / "home" / ".cache" / "dbench" / "numba"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert _numba.numba_cache_folder() == tmp_path / "home" / ".cache" / "dbench" / "numba"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _numba.numba_cache_folder() == tmp_path / "xdg" / "dbench" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert _numba.numba_cache_folder() == tmp_path / "numba"
    monkeypatch.setenv("DBENCH_CACHE_DIR", str(tmp_path / "dbench"))
    assert _numba.numba_cache_folder() == tmp_path / "dbench" / "numba"
    assert (tmp_path / "dbench" / "numba").is_dir()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DBENCH_CACHE_DIR", str(tmp_path / "file"))
    assert _numba.numba_cache_folder() is None


@pytest.mark.slow
def test_fit_in_an_installed_copy_writes_nothing_into_the_package(tmp_path):
    # The package as pip would install it: a fresh copy of dbench/ with no __pycache__.
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "dbench", site / "dbench", ignore=shutil.ignore_patterns("__pycache__"))
    fit = (
        "import numpy as np\n"
        "from dbench.estimators.boosted_trees import fit_boosted_trees\n"
        "rng = np.random.default_rng(0)\n"
        "x, y = rng.normal(size=(200, 5)), rng.integers(0, 3, 200)\n"
        "model = fit_boosted_trees(x, y, n_stages=3)\n"
        "print(model.predict(x[:4]).tolist(), fit_boosted_trees(x, y % 2, n_stages=2).predict(x[:2]).tolist())\n"
    )
    _run(fit, _environment(tmp_path), site)
    assert _compiled_files(site) == []
    cached = _compiled_files(tmp_path / "xdg" / "dbench" / "numba")
    assert {p.suffix for p in cached} == {".nbi", ".nbc"}
    assert any(p.name.startswith("_tree.grow_tree") for p in cached)
