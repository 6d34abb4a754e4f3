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
    return subprocess.run([sys.executable, "-m", "dbench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_help_does_not_import_torch():
    code = "import sys, dbench._cli.main as c; c.build_parser().format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
    proc = dbench("--help")
    assert proc.returncode == 0 and "evaluate" in proc.stdout
    # The exit codes are documented where a user looks, with the numbers the code uses.
    from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

    assert "exit status:" in proc.stdout
    for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE):
        assert f"\n  {code} " in proc.stdout


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
    "args, message, code",
    [
        (["evaluate", "no_such_encoder.py"], "no_such_encoder.py", 1),  # the encoder failed to load
        (["evaluate", str(NUMPY_EXAMPLE), "--metrics", "mgi"], "unknown metric", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--dataset", "nope"], "nope", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--set", "mig.bins=3", "--metrics", "mig"], "bins", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--set", "oops"], "METRIC.PARAM=VALUE", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--representation", "both"], "invalid choice: 'both'", 2),
        (["evaluate"], "required: ENCODER (see dbench evaluate --help)", 2),
        (["nonsense"], "invalid choice: 'nonsense'", 2),
        (["protocols", "show", "nope"], "protocol 'nope' not found", 2),
        # A parameter outside its declared range (ParameterError) is a configuration error.
        (["evaluate", str(NUMPY_EXAMPLE), "--set", "mig.n_bins=0"],
         "metrics.mig.n_bins: got 0; allowed: an integer in [1, 1000]", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--protocol", "{bad_protocol}"],
         "metrics.mig.n_bins: got 0; allowed: an integer in [1, 1000]", 2),
        (["evaluate", str(NUMPY_EXAMPLE), "--protocol", "{broken_yaml}"], "invalid YAML", 2),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message, code, tmp_path):
    files = {"bad_protocol": "name: p\nversion: 1\ndatasets: [tiny_dsprites]\nseeds: [0]\nmetrics:\n  mig: {n_bins: 0}\n",
             "broken_yaml": "name: [p\n"}
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    args = [arg.format(**{name: tmp_path / f"{name}.yaml" for name in files}) for arg in args]
    proc = dbench(*args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_bad_encoder_exits_non_zero_with_one_line(tmp_path):
    enc = tmp_path / "nan_encoder.py"
    enc.write_text("import numpy as np\n\ndef encode(images):\n    return np.full((images.shape[0], 4), np.nan)\n")
    proc = dbench("evaluate", str(enc), "--dataset", "tiny_dsprites", "--metrics", "mig", "--set", "mig.n_train=100")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "NaN" in proc.stderr
    debug = dbench("--debug", "check", str(enc))
    assert debug.returncode != 0


def test_check_reports_pass_fail_table():
    proc = dbench("check", str(NUMPY_EXAMPLE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "determinism" in proc.stdout.lower()


def test_list_metrics_and_datasets():
    from dbench.datasets import DATASETS
    from dbench.metrics import METRIC_NAMES

    assert dbench("list", "datasets").stdout.split() == list(DATASETS)
    assert dbench("list", "metrics", "--names").stdout.split() == list(METRIC_NAMES)


def test_list_metrics_shows_each_declaration():
    """Per metric: its description, every parameter with default and range, every score key with bounds and direction."""
    from dbench._cli.list import SAMPLE_SIZE_MARK
    from dbench.metrics import METRIC_NAMES, get_metric

    proc = dbench("list", "metrics")
    assert proc.returncode == 0, proc.stderr
    blocks = proc.stdout.strip().split("\n\n")
    assert len(blocks) == len(METRIC_NAMES)
    for name, block in zip(METRIC_NAMES, blocks, strict=True):
        described = get_metric(name).describe()
        assert block.startswith(f"{name}: {described['description']}\n")
        for param in described["params"]:
            mark = f"; {SAMPLE_SIZE_MARK}" if param["sample_size"] else ""
            assert any(line.split()[:1] == [param["name"]] and line.endswith(f"; {param['allowed']}{mark}")
                       for line in block.splitlines()), (name, param["name"])
        for score in described["scores"]:
            assert any(line.split()[:1] == [score["key"]] for line in block.splitlines()), (name, score["key"])
        for rule in described["rules"]:
            assert rule["condition"] in block
    mig = blocks[list(METRIC_NAMES).index("mig")]
    assert "    n_bins   20; an integer in [1, 1000]" in mig
    assert "    mig  [0, 1], higher is better: " in mig
    assert f"    n_train  10000; an integer in [2, 10000000]; {SAMPLE_SIZE_MARK}" in mig
    unsupervised = blocks[list(METRIC_NAMES).index("unsupervised")]
    assert "gaussian_total_correlation             [0, inf), lower is better" in unsupervised
