"""``dbench score``: score challenge submissions, each in a sandbox, one result JSON each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score submissions (folders or archives) under a protocol, untrusted code sandboxed",
        description="Score each SUBMISSION: a folder or archive with submission.yaml and one of "
        "encoder.pt (TorchScript), encoder.onnx, codes.npz (precomputed codes), encoder.py (--trust only).",
    )
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    p.add_argument("--protocol", default="challenge")
    p.add_argument("--out", default="results", help="folder for the result JSON files")
    p.add_argument("--trust", action="store_true", help="allow Python-file submissions (still run in a separate process)")
    p.add_argument("--timeout", type=float, default=1800.0, help="wall-time limit per submission, seconds")
    p.add_argument("--memory-gb", type=float, default=8.0, help="memory limit per submission, GiB")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.results import format_scores
    from dbench.submissions.sandbox import Limits
    from dbench.submissions.scoring import result_filename, score_submission

    limits = Limits(wall_seconds=args.timeout, memory_bytes=int(args.memory_gb * (1 << 30)))
    out = Path(args.out)
    failures = 0
    for i, path in enumerate(args.submissions):
        for result in score_submission(path, protocol=args.protocol, trust=args.trust, limits=limits, data_dir=args.data_dir):
            target = result.write(out / result_filename(result, i))
            if result.status == "failed":
                failures += 1
                print(f"{path}: FAILED: {result.error} (recorded in {target})", file=sys.stderr)
            else:
                print(format_scores(result))
                print(f"wrote {target}")
    return EXIT_FAILED if failures else EXIT_OK
