"""Gather what benchmarks/gpu_check.sh produced into one JSON: steps, tests, agreement, timings, speed-ups.

    python benchmarks/gpu_check_summary.py --work WORK_DIR --seconds 312 --out gpu_check.json

Reads ``WORK_DIR/steps.jsonl`` (one line per step: rc, seconds), ``gpu_tests.xml`` (JUnit XML of the
gpu-marked tests), ``agreement.json`` (benchmarks/gpu_agreement.py) and ``bench_*.json``
(pytest-benchmark). Anything missing is reported as such, never invented. Exit status 0 when every step
that ran succeeded and no test failed, else 1.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def read_steps(work: Path) -> list[dict]:
    path = work / "steps.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def read_tests(work: Path) -> dict:
    path = work / "gpu_tests.xml"
    if not path.exists():
        return {"status": "missing", "note": "the gpu-marked tests wrote no report (see the gpu_tests step)"}
    root = ElementTree.parse(path).getroot()
    cases = []
    for case in root.iter("testcase"):
        outcome = "passed"
        detail = ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                detail = (found.get("message") or "").splitlines()[0][:300] if found.get("message") else ""
                break
        cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "detail": detail})
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
    return {"status": "ok", **counts, "not_passed": [c for c in cases if c["outcome"] != "passed"]}


def read_benchmarks(work: Path) -> list[dict]:
    rows = []
    for path in sorted(work.glob("bench_*.json")):
        data = json.loads(path.read_text())
        for bench in data.get("benchmarks", []):
            info = bench.get("extra_info", {})
            rows.append({
                "metric": info.get("metric"),
                "size": info.get("size"),
                "backend": info.get("backend"),
                "seconds": bench["stats"]["min"],
                "estimator": info.get("estimator"),
                "scores": info.get("scores"),
            })
    return rows


def speedups(rows: list[dict]) -> dict:
    """NumPy seconds over each GPU backend's, per metric and size (only where both ran)."""
    table: dict = {}
    by_key = {(r["metric"], r["size"], r["backend"]): r["seconds"] for r in rows}
    for (metric, size, backend), seconds in by_key.items():
        base = by_key.get((metric, size, "numpy"))
        if backend != "numpy" and base and seconds > 0:
            table.setdefault(metric, {}).setdefault(size, {})[backend] = round(base / seconds, 2)
    return table


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
        info["gpus"] = [line.strip() for line in gpus.stdout.splitlines() if line.strip()] if gpus.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        info["gpus"] = []
    for name in ("numpy", "torch", "cupy", "numba", "sklearn"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
            if name == "torch":
                info["torch_cuda"] = bool(module.cuda.is_available())
        except Exception as exc:  # noqa: BLE001 - not installed, or any of CUDA's driver errors
            info[name] = f"unavailable ({exc.__class__.__name__})"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    steps = read_steps(args.work)
    tests = read_tests(args.work)
    agreement_path = args.work / "agreement.json"
    agreement = json.loads(agreement_path.read_text()) if agreement_path.exists() else {"status": "missing"}
    rows = read_benchmarks(args.work)
    info = machine()
    gpu = bool(info.get("gpus")) or info.get("torch_cuda") is True
    failed_steps = [s["step"] for s in steps if s.get("rc") not in (0, None, 5)]  # pytest 5: nothing collected
    report = {
        "gpu_present": gpu,
        "gpu_parts": "ran" if gpu else "skipped: no CUDA GPU on this machine",
        "ok": not failed_steps and tests.get("failed", 0) == 0 and tests.get("error", 0) == 0,
        "failed_steps": failed_steps,
        "seconds": args.seconds,
        "machine": info,
        "steps": steps,
        "tests": tests,
        "agreement": agreement,
        "benchmarks": rows,
        "speedup_vs_numpy": speedups(rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    summary = f"gpu_present={gpu} ok={report['ok']} tests={ {k: tests.get(k) for k in ('passed', 'failed', 'error', 'skipped')} }"
    print(summary + f" benchmarks={len(rows)} failed_steps={failed_steps}")
    for metric, sizes in report["speedup_vs_numpy"].items():
        print(f"  {metric}: {sizes}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
