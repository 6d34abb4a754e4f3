"""benchmarks/gpu_check.sh runs end to end on this (CPU-only) machine and reports the GPU parts as skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_check_runs_end_to_end_and_writes_one_json_into_out(tmp_path):
    if shutil.which("timeout") is None:
        pytest.skip("the check needs coreutils' timeout")
    environment = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "GPU_CHECK_BUDGET": "400"}
    environment.pop("DBENCH_WHEELS", None)
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=environment, capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {step["step"]: step for step in report["steps"]}
    assert set(steps) >= {"gpu_extra", "imports", "gpu_tests", "agreement", "bench_published", "bench_10x"}
    if report["gpu_present"]:
        pytest.skip("this machine has a GPU: the CPU-only report is not what it writes")
    assert report["ok"] is True and report["failed_steps"] == []
    assert report["gpu_parts"].startswith("skipped")
    assert steps["gpu_extra"]["note"].startswith("skipped")  # nothing installed without a GPU
    tests = report["tests"]
    assert tests["status"] == "ok" and tests["failed"] == tests["error"] == 0 and tests["passed"] == 0
    assert tests["skipped"] >= 10  # every gpu-marked test, each skipped cleanly
    assert all(case["outcome"] == "skipped" for case in tests["not_passed"])
    assert {name: value["status"] for name, value in report["agreement"].items()} == {"cupy": "skipped", "torch-cuda": "skipped"}
    assert report["benchmarks"] == [] and report["speedup_vs_numpy"] == {}
    assert report["seconds"] < 400
