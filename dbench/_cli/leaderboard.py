"""``dbench leaderboard build``: rank result files and write the leaderboard pages."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK

_EPILOG = """examples:
  dbench leaderboard build --results leaderboard/results/                    # writes leaderboard/README.md, index.html
  dbench leaderboard build --results leaderboard/results/ --out site/        # somewhere else

Every *.json under --results is read. A file that fails validation or does not follow the protocol it
names is refused with one line on stderr; the pages are still built from the valid files, and the
command then exits with status 1 (0 when every file was used).
"""


def register(subparsers: Any) -> None:
    """Add ``dbench leaderboard build``."""
    parser = subparsers.add_parser(
        "leaderboard",
        help="build the leaderboard pages from result files",
        description="Rank evaluation results by the NeurIPS 2019 challenge rule and render the leaderboard.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="write README.md and index.html from a folder of result JSON files",
                           epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("--results", required=True, metavar="DIR", help="folder with result JSON files (searched recursively)")
    build.add_argument("--out", default="leaderboard", metavar="DIR", help="output folder (default: leaderboard/)")
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from dbench.leaderboard.build import build_leaderboard

    report = build_leaderboard(args.results, args.out)
    for line in report.refused:
        print(f"refused: {line}", file=sys.stderr)
    for path in report.written:
        print(f"wrote {path}")
    print(f"{report.n_ranked} ranked entries from {report.n_files - len(report.refused)} result files"
          + (f"; {len(report.refused)} refused" if report.refused else ""))
    return EXIT_FAILED if report.refused else EXIT_OK
