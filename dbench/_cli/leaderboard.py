"""``dbench leaderboard build``: rank result files and write the leaderboard pages."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK

_EPILOG = """examples:
  dbench leaderboard build --results leaderboard/results/                    # writes leaderboard/README.md, index.html
  dbench leaderboard build --results leaderboard/results/ --out site/        # somewhere else

  dbench leaderboard sign results/baseline.json                               # organiser signs a baseline

Every *.json under --results is read. A file that is too large or deep, fails validation, lacks a
valid signature where one is required, does not follow the protocol it names or reports a score
outside its metric's declared range is refused with one line on stderr; the pages are still built
from the valid files, and the command then exits with status 1 (0 when every file was used).
Signatures (<file>.json.sig, written by `dbench score`) are required for challenge protocols and,
once the folder holds any signature, for every file; --require-signed / --no-require-signed decide
explicitly. They are checked with the scorer key (DBENCH_SCORER_KEY or ~/.config/dbench/scorer.key).
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
    build.add_argument("--require-signed", action=argparse.BooleanOptionalAction, default=None,
                       help="refuse result files without a valid scorer signature (default: for challenge "
                       "protocols, and for every file once the folder holds any signature)")
    build.set_defaults(func=run_build)
    sign = sub.add_parser("sign", help="sign result files with the scorer key (e.g. baselines made with dbench evaluate)",
                          epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sign.add_argument("files", nargs="+", metavar="FILE", help="result JSON files (each is validated first)")
    sign.set_defaults(func=run_sign)


def run_build(args: argparse.Namespace) -> int:
    from dbench.leaderboard.build import build_leaderboard

    report = build_leaderboard(args.results, args.out, require_signed=args.require_signed)
    for line in report.refused:
        print(f"refused: {line}", file=sys.stderr)
    for line in report.errors:
        print(f"error: {line}", file=sys.stderr)
    for path in report.written:
        print(f"wrote {path}")
    print(f"{report.n_ranked} ranked entries from {report.n_files - len(report.refused)} result files"
          + (f"; {len(report.refused)} refused" if report.refused else ""))
    return EXIT_FAILED if report.refused or report.errors else EXIT_OK


def run_sign(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dbench.errors import ConfigError
    from dbench.leaderboard.build import read_result_file, score_problem, write_page
    from dbench.submissions.signing import load_key, signature_path, signature_text

    key = load_key(create=True)
    assert key is not None
    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            data, result = read_result_file(path)
            problem = score_problem(result)
            if problem:
                raise ConfigError(f"{path}: {problem}")
        except ConfigError as exc:
            print(f"not signed: {exc}", file=sys.stderr)
            failed += 1
            continue
        write_page(signature_path(path), signature_text(data, key))
        print(f"signed {path} -> {signature_path(path)}")
    return EXIT_FAILED if failed else EXIT_OK
