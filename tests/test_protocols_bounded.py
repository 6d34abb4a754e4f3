"""Hostile protocol files and ``--set`` values: refused fast, in one short line, before any work.

Issue 12's cases (a "billion laughs" file, 100,000-deep nesting, a 40 MB description, ``n_train: -5``
and ``1e11``) and their class: aliases of every kind, deep block and flow nesting, huge files, keys
and names, binary and NUL bytes, unhashable keys, thousands of unknown keys, too many seeds, a
protocol batch size that cannot run, deep ``--set`` values. Each is checked for its one line, the
exit code (``protocols validate``: 1 for an invalid file; ``evaluate``: 2 for a configuration error)
and a message that never echoes more than a short excerpt of the input.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbench.errors import ConfigError
from dbench.protocols import load_protocol
from dbench.protocols.yaml_io import MAX_PROTOCOL_BYTES, load_yaml_text

ROOT = Path(__file__).resolve().parents[1]
HEAD = "name: p\nversion: 1\ndatasets: [tiny_dsprites]\nseeds: [0]\n"


def _laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n"


HOSTILE = {
    "billion laughs": (HEAD + _laughs() + "metrics: {mig: {}}\n", "anchors and aliases"),
    "one alias": (HEAD + "metrics:\n  mig: &m {n_train: 500}\n  sap: *m\n", "anchors and aliases"),
    "merge key": (HEAD + "base: &b {n_train: 500}\nmetrics:\n  mig: {<<: *b}\n", "anchors and aliases"),
    "100k-deep flow": (HEAD + "metrics: {mig: {n_bins: " + "[" * 100_000 + "]" * 100_000 + "}}\n", "nested more than"),
    "deep block": (HEAD + "metrics:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40)) + "  " * 41 + "x: 1\n",
                   "nested more than"),
    "40 MB description": (HEAD + "description: " + "x" * (40 << 20) + "\nmetrics: {mig: {}}\n", "larger than 256 KB"),
    "a 300 KB file of keys": (HEAD + "metrics: {mig: {}}\n" + "".join(f"k{i}: {i}\n" for i in range(40_000)),
                              "larger than 256 KB"),
    "huge key": (HEAD + "metrics: {" + "m" * 200_000 + ": {}}\n", "invalid YAML"),
    "huge name": ("name: " + "p" * 100_000 + "\nversion: 1\ndatasets: [tiny_dsprites]\nseeds: [0]\nmetrics: {mig: {}}\n",
                  "name: String should have at most 100 characters"),
    "unhashable key": (HEAD + "metrics: {mig: {}}\n? [a, b]\n: 1\n", "a key that is a list or mapping"),
    "duplicate key": (HEAD + "metrics: {mig: {}}\nname: q\n", "duplicate key 'name'"),
    "python tag": (HEAD + "metrics: !!python/object/apply:os.system ['true']\n", "YAML tags are not allowed"),
    "NUL byte": (HEAD + "metrics: {mig: {}}\x00\n", "invalid YAML"),
    "not UTF-8": (b"\xff\xfe" + HEAD.encode("utf-16-le"), "not UTF-8 text"),
    "5,000 unknown keys": (HEAD + "metrics: {mig: {}}\n" + "".join(f"x{i}: 1\n" for i in range(5000)),
                           "and 4996 more"),
    "n_train -5": (HEAD + "metrics: {mig: {n_train: -5}}\n", "metrics.mig.n_train: got -5; allowed: an integer in [2, 10000000]"),
    "n_train 1e11": (HEAD + "metrics: {mig: {n_train: 1e11}}\n", "metrics.mig.n_train: got '1e11'"),
    "n_train of 4,000 digits": (HEAD + "metrics: {mig: {n_train: " + "9" * 4000 + "}}\n", "metrics.mig.n_train: got 999"),
    "a list where a number goes": (HEAD + "metrics: {mig: {n_train: [" + ", ".join(["1"] * 5000) + "]}}\n",
                                   "metrics.mig.n_train: got [1, 1, 1, 1, 1, 1, ...]"),
    "101 seeds": ("name: p\nversion: 1\ndatasets: [tiny_dsprites]\naggregate: mean_std\nseeds: [" +
                  ", ".join(map(str, range(101))) + "]\nmetrics: {mig: {}}\n", "seeds: List should have at most 100 items"),
    "a 2**70 seed": ("name: p\nversion: 1\ndatasets: [tiny_dsprites]\nseeds: [" + str(2**70) + "]\nmetrics: {mig: {}}\n",
                     "seeds.0: Input should be less than or equal to 4294967295"),
    "batch size 10**9": (HEAD + "batch_size: 1000000000\nmetrics: {mig: {}}\n", "batch_size: Input should be less than"),
    "a mapping of nothing": ("", "a protocol must be a YAML mapping"),
}


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "p.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dbench", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_protocol_is_one_short_line(tmp_path, case):
    text, fragment = HOSTILE[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_protocol(path)
    message = str(exc.value)
    assert fragment in message, message
    assert "\n" not in message and len(message) < len(str(path)) + 320, message


@pytest.mark.parametrize("case", ["billion laughs", "100k-deep flow", "40 MB description", "n_train -5", "n_train 1e11"])
def test_the_command_line_refuses_them_with_the_right_exit_code(tmp_path, case):
    text, fragment = HOSTILE[case]
    _write(tmp_path, text)
    validate = _cli("protocols", "validate", "p.yaml", cwd=tmp_path)
    assert validate.returncode == 1 and fragment in validate.stdout + validate.stderr, validate.stdout + validate.stderr
    assert len((validate.stdout + validate.stderr).strip().splitlines()) == 1
    evaluate = _cli("evaluate", str(ROOT / "examples" / "numpy_encoder.py"), "--protocol", "p.yaml", "--out", "R.json",
                    cwd=tmp_path)
    assert evaluate.returncode == 2 and fragment in evaluate.stderr and evaluate.stderr.count("\n") == 1, evaluate.stderr
    assert not (tmp_path / "R.json").exists() and not (tmp_path / "R.partial.json").exists()


def test_only_a_bounded_prefix_of_a_huge_file_is_read(tmp_path):
    path = tmp_path / "p.yaml"
    with open(path, "wb") as handle:  # a 2 GB sparse file: reading it whole would take seconds and memory
        handle.truncate(2 << 30)
    with pytest.raises(ConfigError, match="larger than 256 KB"):
        load_protocol(path)


@pytest.mark.parametrize("value, fragment", [
    ("[" * 50_000 + "]" * 50_000, "nested more than"),
    ("&a [1, 2]", "anchors and aliases"),
    ("!!python/name:os.system", "YAML tags are not allowed"),
    ("[1, 2", "invalid YAML"),
])
def test_set_values_are_read_with_the_same_bounds(value, fragment, capsys):
    from dbench._cli.main import main

    assert main(["evaluate", str(ROOT / "examples" / "numpy_encoder.py"), "--set", f"mig.n_train={value}"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and len(err) < 300, err


def test_the_yaml_reader_refuses_text_over_the_cap():
    with pytest.raises(ConfigError, match="more than the"):
        load_yaml_text("x" * (MAX_PROTOCOL_BYTES + 1), "--set x")


def test_a_deep_mapping_given_in_python_is_one_line():
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(ConfigError) as exc:
        load_protocol({"name": "p", "version": 1, "datasets": ["tiny_dsprites"], "seeds": [0], "metrics": deep})
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 400
