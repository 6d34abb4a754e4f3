"""``dbench aggregate DIR``: a folder of results as one tidy table, a summary over seeds, and the study plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK
from dbench.errors import ConfigError

_EPILOG = """examples:
  dbench aggregate sweeps/study                          # writes sweeps/study/aggregate/
  dbench aggregate sweeps/study --out paper/appendix --scores mig.mig dci.disentanglement
  dbench aggregate leaderboard/results --no-plots        # any folder of result JSON files

Writes scores.csv (and scores.parquet with pyarrow installed): one row per encoder x protocol x dataset x
representation x metric seed x score, with each encoder's metadata (a run folder's model, hyperparameters,
training seed, steps); summary.csv/.md/.html: mean, standard deviation and 95% confidence interval over
seeds (training seeds when known, else metric seeds); plots/: the metric-agreement heatmap, score
distributions per model and hyperparameter, and the variance explained by hyperparameters vs seeds.

exit status: 0 every file was a valid result; 1 some were refused (one line each; the rest is written);
2 usage error (no such folder, unknown score).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="tables and plots of a folder of results (a sweep): tidy CSV/Parquet, summary, study plots",
        description="Aggregate every result JSON under DIR into one table, a summary over seeds and the study plots.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", metavar="DIR", help="a folder of result JSON files (searched recursively), e.g. a sweep")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write (default: DIR/aggregate)")
    p.add_argument("--scores", nargs="+", default=None, metavar="METRIC.KEY",
                   help="scores of the Markdown/HTML summary and the plots (default: the protocols' ranking scores)")
    p.add_argument("--level", choices=("encoder", "config"), default=None,
                   help="summarise per encoder over metric seeds, or per training configuration over training seeds "
                        "(default: config when training seeds are known)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.studies.aggregate import collect, write_tables
    from dbench.studies.summary import default_level, summarise, write_summary

    collected = collect(args.results)
    for line in collected.refused:
        print(f"refused: {line}", file=sys.stderr)
    for line in collected.warnings:
        print(f"dbench aggregate: {line}", file=sys.stderr)
    frame = collected.frame
    available = list(dict.fromkeys(frame["score_name"]))
    scores = args.scores or [s for s in collected.ranking if s in available] or available
    unknown = [s for s in scores if s not in available]
    if unknown:
        raise ConfigError(f"--scores: {', '.join(unknown)} not in the results; they hold "
                          f"{', '.join(available[:12])}{' ...' if len(available) > 12 else ''}")
    out = Path(args.out) if args.out else Path(args.results) / "aggregate"
    written = write_tables(collected, out)
    level = args.level or default_level(frame, collected.meta_columns)
    summary = summarise(frame, meta_columns=collected.meta_columns, level=level)
    written += write_summary(summary, out, scores=scores, level=level, title=f"Summary of {args.results}")
    if not args.no_plots and not frame.empty:
        from dbench.studies.plots import write_study_plots

        written += write_study_plots(frame, out / "plots", scores=scores, meta_columns=collected.meta_columns)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(frame)} rows from {collected.n_results} result files ({collected.n_failed} failed evaluations)"
          + (f"; {len(collected.refused)} files refused" if collected.refused else ""))
    return EXIT_FAILED if collected.refused else EXIT_OK
