"""Measure how closely the device estimators reproduce the host ones on the test fixtures; write JSON.

    PYTHONPATH=$PWD python benchmarks/gpu_agreement.py --backends numpy torch --out agreement.json

For every backend asked for (numpy, array_api_strict, torch, cupy, torch-cuda; the unavailable ones
are reported as skipped): the array-API trees against the compiled trees on the DCI fixtures (split
slots that differ, importances, predictions, DCI scores, distance to dlib's golden values), and the
beta-VAE score's and explicitness's backend logistic fits against scikit-learn's predictions.
docs/gpu.md quotes these numbers; benchmarks/gpu_check.sh runs this script on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fixture helpers

from estimator_agreement import (  # noqa: E402
    BACKENDS,
    converter,
    explicitness_agreement,
    explicitness_cases,
    higgins_agreement,
    higgins_cases,
    tree_agreement,
    tree_cases,
)


def measure(backend: str, *, trees: bool = True, logistic: bool = True) -> dict:
    convert = converter(backend)
    if convert is None:
        return {"status": "skipped", "reason": f"backend {backend} is not available here"}
    result: dict = {"status": "ok"}
    start = time.perf_counter()
    if trees:
        result["trees"] = {
            name: tree_agreement(arrays, convert, golden=name.removeprefix("golden_") if name.startswith("golden_") else None)
            for name, arrays in tree_cases().items()
        }
        for report in result["trees"].values():
            report.pop("scores")
        result["trees_summary"] = {
            "trees": sum(r["trees"] for r in result["trees"].values()),
            "trees_with_a_different_split": sum(r["trees_with_a_different_split"] for r in result["trees"].values()),
            "trees_with_different_outputs": sum(r["trees_with_different_outputs"] for r in result["trees"].values()),
            "predictions_differing": sum(f["train_predictions_differing"] + f["test_predictions_differing"]
                                         for r in result["trees"].values() for f in r["factors"]),
            "dci_max_abs_diff": max(r["dci_max_abs_diff"] for r in result["trees"].values()),
            "dlib_golden_max_abs_diff": max(r.get("dlib_max_abs_diff", 0.0) for r in result["trees"].values()),
        }
    if logistic:
        result["higgins"] = [higgins_agreement(case, convert) for case in higgins_cases()]
        result["explicitness"] = {name: explicitness_agreement(arrays, convert) for name, arrays in explicitness_cases().items()}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["numpy", "array_api_strict", "torch"], choices=BACKENDS)
    parser.add_argument("--no-trees", action="store_true", help="skip the boosted-trees comparison")
    parser.add_argument("--no-logistic", action="store_true", help="skip the logistic comparisons")
    parser.add_argument("--out", type=Path, help="write the JSON here (default: print it)")
    args = parser.parse_args(argv)
    report = {backend: measure(backend, trees=not args.no_trees, logistic=not args.no_logistic) for backend in args.backends}
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    for backend, result in report.items():
        line = f"{backend:17s} {result['status']}"
        if "trees_summary" in result:
            s = result["trees_summary"]
            line += (f"  trees: split differs {s['trees_with_a_different_split']}/{s['trees']}, output differs"
                     f" {s['trees_with_different_outputs']}, predictions differing {s['predictions_differing']},"
                     f" DCI max diff {s['dci_max_abs_diff']:.2e}, vs dlib golden {s['dlib_golden_max_abs_diff']:.4f}")
        if "higgins" in result:
            differing = sum(c["predictions_differing"] for c in result["higgins"])
            total = sum(c["predictions"] for c in result["higgins"])
            line += f"  Higgins predictions differing {differing}/{total}"
            differing = sum(c["predictions_differing"] for c in result["explicitness"].values())
            total = sum(c["predictions"] for c in result["explicitness"].values())
            line += f", explicitness {differing}/{total}"
        print(line + (f" ({result['seconds']} s)" if "seconds" in result else ""))
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
