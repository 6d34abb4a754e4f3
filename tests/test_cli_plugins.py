"""Subcommands from other packages (entry-point group ``dbench.commands``), the reference models' included.

The tests do not depend on how dbench is installed: each puts a small ``*.dist-info`` folder declaring
the entry points on ``sys.path`` (``PYTHONPATH`` for a subprocess), which is all
``importlib.metadata`` reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbench._cli.plugins import GROUP, add_plugin_commands, plugin_entry_points

ROOT = Path(__file__).resolve().parents[1]


def _declared_entry_points() -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data["project"]["entry-points"][GROUP]


def _fake_distribution(site: Path, name: str, entries: dict[str, str]) -> Path:
    """A distribution ``name`` whose only content is metadata declaring ``entries`` in the group."""
    info = site / f"{name}-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0\n", encoding="utf-8")
    lines = "".join(f"{key} = {value}\n" for key, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}", encoding="utf-8")
    return site


def _dbench(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    return subprocess.run([sys.executable, "-m", "dbench", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env, check=False)


def test_pyproject_declares_the_reference_models_plugin():
    entries = _declared_entry_points()
    assert entries == {"reference-models": "reference_models.cli:register"}


def test_reference_models_commands_plug_in_without_torch(tmp_path):
    site = _fake_distribution(tmp_path / "site", "dbench_plugin_test", _declared_entry_points())
    proc = _dbench(site, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for command in ("evaluate", "check", "train", "traverse", "plot-losses"):
        assert f"    {command}" in proc.stdout
    code = ("import sys; from dbench._cli.main import build_parser; build_parser().format_help(); "
            "print('torch' in sys.modules, 'reference_models.cli' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         check=False)
    assert out.stdout.split() == ["False", "True"], out.stderr
    train_help = _dbench(site, "train", "--help")
    assert train_help.returncode == 0 and "beta_vae" in train_help.stdout


def test_a_plugin_command_error_is_one_line_with_exit_code_2(tmp_path):
    site = _fake_distribution(tmp_path / "site", "dbench_plugin_test", _declared_entry_points())
    proc = _dbench(site, "train", "vae", "--steps", "1", "--out", str(tmp_path / "run"), "--set", "beta")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--set expects key=value" in lines[0], proc.stderr


def test_a_broken_plugin_costs_one_warning_line_not_the_cli(tmp_path):
    site = _fake_distribution(tmp_path / "site", "broken_plugin", {"broken": "no_such_module_for_dbench:register"})
    proc = _dbench(site, "--help")
    assert proc.returncode == 0
    assert "evaluate" in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dbench: warning: plugin 'broken'") and "ModuleNotFoundError" in lines[0]
    listing = _dbench(site, "list", "metrics")
    assert listing.returncode == 0 and "mig" in listing.stdout


def test_plugins_that_fail_to_register_or_clash_are_skipped(tmp_path, monkeypatch):
    import argparse

    (tmp_path / "fake_plugins.py").write_text(
        "def good(sub):\n    sub.add_parser('hello').set_defaults(func=lambda args: 0)\n\n"
        "def raises(sub):\n    raise RuntimeError('needs a GPU\\nsecond line')\n\n"
        "def clash(sub):\n    sub.add_parser('evaluate')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_distribution(tmp_path / "site", "fake_plugins_dist",
                       {"good": "fake_plugins:good", "raises": "fake_plugins:raises", "clash": "fake_plugins:clash"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    names = [ep.name for ep in plugin_entry_points() if ep.value.startswith("fake_plugins:")]
    assert names == ["clash", "good", "raises"]

    parser = argparse.ArgumentParser(prog="dbench")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("evaluate")
    warnings: list[str] = []
    loaded = add_plugin_commands(sub, warnings.append)
    assert "good" in loaded and "raises" not in loaded and "clash" not in loaded
    assert parser.parse_args(["hello"]).command == "hello"
    ours = [w for w in warnings if "fake_plugins" in w]
    assert len(ours) == 2 and all("\n" not in w for w in ours)
    assert any("'raises'" in w and "RuntimeError: needs a GPU;" in w for w in ours)
    assert any("'clash'" in w and "evaluate" in w for w in ours)
