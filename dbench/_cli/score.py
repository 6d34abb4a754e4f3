"""``dbench score``: score challenge submissions, each in a sandbox, one signed result JSON per evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK

_EPILOG = """examples:
  dbench score submissions/*.zip --out leaderboard/results/              # bubblewrap sandbox, signed results
  dbench score team-a/ --protocol challenge --timeout 3600 --memory-gb 16
  dbench score my_encoder_folder/ --trust --isolation none                # your own code, no sandbox

Each SUBMISSION is a folder or archive with submission.yaml and one of encoder.pt (TorchScript),
encoder.onnx, codes.npz (precomputed codes) or encoder.py (--trust only); see docs/submissions.md.
Everything in a submission is opened only inside the sandbox (docs/security.md). A submission that
fails at any step gets a result file with status "failed" and its reason, and the batch goes on; the
exit status is 1 when any failed. Result files are never overwritten and are signed with the scorer
key (DBENCH_SCORER_KEY, or a key file created on first use under ~/.config/dbench/).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score submissions (folders or archives) under a protocol, each in a sandbox",
        description="Score each SUBMISSION in a bubblewrap sandbox and write one signed result JSON per evaluation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    p.add_argument("--protocol", default="challenge")
    p.add_argument("--out", default="results", help="folder for the result JSON files (default: results/)")
    p.add_argument("--trust", action="store_true",
                   help="allow Python-file submissions (they run in the same sandbox with the same limits)")
    p.add_argument("--isolation", choices=("bwrap", "none"), default="bwrap",
                   help="bwrap: a bubblewrap sandbox (default); none: a plain subprocess, for trusted code only")
    p.add_argument("--timeout", type=float, default=1800.0, help="wall-time limit per submission, seconds")
    p.add_argument("--memory-gb", type=float, default=8.0, help="memory limit per submission, GiB")
    p.add_argument("--max-processes", type=int, default=256, help="processes and threads per submission")
    p.add_argument("--max-unpacked-mb", type=float, default=2048.0, help="uncompressed size of a submission, MiB")
    p.add_argument("--scratch-mb", type=float, default=1024.0, help="size of the sandbox's writable /tmp, MiB")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--progress-seconds", type=float, default=30.0,
                   help="seconds between progress lines when stderr is not a terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.results import format_scores
    from dbench.submissions.limits import Limits
    from dbench.submissions.progress import EncodeProgress
    from dbench.submissions.records import result_filename, scoring_stamp, write_new_result
    from dbench.submissions.sandbox import NONE_WARNING
    from dbench.submissions.scoring import Scorer, printable
    from dbench.submissions.signing import load_key

    limits = Limits(wall_seconds=args.timeout, memory_bytes=int(args.memory_gb * (1 << 30)),
                    max_processes=args.max_processes, max_unpacked_bytes=int(args.max_unpacked_mb * (1 << 20)),
                    scratch_bytes=int(args.scratch_mb * (1 << 20)))
    key = load_key(create=True)
    assert key is not None
    if args.isolation == "none":
        print(f"WARNING: {NONE_WARNING}; this is recorded in every result", file=sys.stderr)
    scorer = Scorer(args.protocol, trust=args.trust, limits=limits, data_dir=args.data_dir, isolation=args.isolation,
                    progress=lambda label: EncodeProgress(label, interval=args.progress_seconds),
                    invocation=getattr(args, "invocation", None))
    out = Path(args.out)
    summary: list[tuple[str, str, str]] = []
    for path in args.submissions:
        scored = scorer.score(path)
        stamp = scoring_stamp()
        shown = printable(path, 300)
        for result in scored.results:
            try:
                name = result_filename(result, stamp=stamp, content_hash=scored.content_hash)
                target = str(write_new_result(result, out, name, key=key))
            except Exception as exc:  # noqa: BLE001 - a full disk or a scorer bug: this result, not the batch
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{exc.__class__.__name__}: {exc}"
                target = f"NOT WRITTEN ({printable(why, 200)})"
                result = result.model_copy(update={"status": "failed", "error": result.error or f"result not written: {why}"})
            label = f"{shown} [{result.dataset}, {result.representation}]"
            if result.status == "failed":
                print(f"{shown}: FAILED: {result.error} (recorded in {target})", file=sys.stderr)
                summary.append((label, "FAILED", f"{result.error} -> {target}"))
            else:
                print(format_scores(result))
                print(f"wrote {target}")
                summary.append((label, result.status, target))
    _print_summary(summary)
    return EXIT_FAILED if any(status != "ok" for _, status, _ in summary) else EXIT_OK


def _print_summary(rows: list[tuple[str, str, str]]) -> None:
    width = max(len("submission"), *(len(r[0]) for r in rows))
    print()
    print(f"{'submission':<{width}}  {'status':<7}  result")
    print(f"{'-' * width}  {'-' * 7}  {'-' * 6}")
    for label, status, detail in rows:
        print(f"{label:<{width}}  {status:<7}  {detail}")
    failed = sum(1 for _, status, _ in rows if status != "ok")
    print(f"{len(rows) - failed} of {len(rows)} evaluations scored" + (f"; {failed} failed or partial" if failed else ""))
