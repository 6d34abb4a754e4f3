"""The command line, run as a user would: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMPY_EXAMPLE = ROOT / "examples" / "numpy_encoder.py"


def dbench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dbench.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_help_does_not_import_torch():
    code = "import sys, dbench.cli as c; c.build_parser().format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
    proc = dbench("--help")
    assert proc.returncode == 0 and "evaluate" in proc.stdout


def test_evaluate_prints_table_and_writes_result(tmp_path):
    out = tmp_path / "result.json"
    proc = dbench("evaluate", str(NUMPY_EXAMPLE), "--dataset", "tiny_dsprites", "--metrics", "mig", "sap",
                  "--set", "mig.n_train=300", "--set", "sap.n_train=200", "--set", "sap.n_test=100",
                  "--backend", "numpy", "--out", str(out), "--plots", str(tmp_path / "plots"), "--baseline")
    assert proc.returncode == 0, proc.stderr
    assert "mig.mig" in proc.stdout and "sap.sap" in proc.stdout
    data = json.loads(out.read_text())
    assert data["status"] == "ok" and set(data["scores"]) == {"mig", "sap"}
    assert data["baseline"] is True
    assert data["protocol"]["name"] == "quick+custom"  # overrides never pass for the named protocol
    assert (tmp_path / "plots" / "scores.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "no_such_encoder.py"], "no_such_encoder.py"),
        (["evaluate", str(NUMPY_EXAMPLE), "--metrics", "mgi"], "unknown metric"),
        (["evaluate", str(NUMPY_EXAMPLE), "--dataset", "nope"], "nope"),
        (["evaluate", str(NUMPY_EXAMPLE), "--set", "mig.bins=3", "--metrics", "mig"], "bins"),
        (["evaluate", str(NUMPY_EXAMPLE), "--set", "oops"], "METRIC.PARAM=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message):
    proc = dbench(*args)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_bad_encoder_exits_non_zero_with_one_line(tmp_path):
    enc = tmp_path / "nan_encoder.py"
    enc.write_text("import numpy as np\n\ndef encode(images):\n    return np.full((images.shape[0], 4), np.nan)\n")
    proc = dbench("evaluate", str(enc), "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=100")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "NaN" in proc.stderr
    debug = dbench("--debug", "check", str(enc))
    assert debug.returncode != 0


def test_check_reports_pass_fail_table():
    proc = dbench("check", str(NUMPY_EXAMPLE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "determinism" in proc.stdout.lower()


def test_list_metrics_and_datasets():
    assert "dci" in dbench("list", "metrics").stdout
    assert "dsprites" in dbench("list", "datasets").stdout
