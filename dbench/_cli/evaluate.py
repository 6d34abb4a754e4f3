"""``dbench evaluate ENCODER``: score an encoder, print the table, write the JSON result and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK
from dbench.choices import BACKENDS, REPRESENTATIONS
from dbench.errors import ConfigError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score an encoder (prints a table, writes a JSON result)",
        description="Score ENCODER: a Python file, a TorchScript file or a trained run folder.",
    )
    p.add_argument("encoder", help="path to a Python file, TorchScript file or reference-model run folder")
    p.add_argument("--protocol", default=None, help="bundled protocol name or YAML file (default: quick)")
    p.add_argument("--dataset", default=None, help="dataset name (default: the protocol's, dsprites)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC", help="metrics to run (default: the protocol's)")
    p.add_argument("--seed", type=int, nargs="+", default=None, help="metric seed(s) (default: the protocol's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                   help="override a metric parameter, e.g. --set mig.n_train=5000 (repeatable)")
    p.add_argument("--representation", choices=REPRESENTATIONS, default=None)
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size")
    p.add_argument("--data-dir", default=None, help="folder with official dataset files (or DBENCH_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="persist codes here so an interrupted run resumes")
    p.add_argument("--out", default=None, help="write the JSON result here")
    p.add_argument("--plots", default=None, metavar="DIR", help="write plots (score table, DCI importances, probe curves)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--baseline", action="store_true", help="mark the result as a reference baseline (leaderboard)")
    p.set_defaults(func=run)


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["mig.n_train=5000"]`` -> ``{"mig": {"n_train": 5000}}`` (values parsed as YAML scalars/lists)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        metric, dot, param = key.partition(".")
        if not sep or not dot or not metric or not param:
            raise ConfigError(f"--set {item!r}: expected METRIC.PARAM=VALUE, e.g. mig.n_train=5000")
        out.setdefault(metric, {})[param] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import evaluate_all
    from dbench.results import format_scores, write_plots

    options = EvaluationOptions(
        protocol=args.protocol,
        dataset=args.dataset,
        metrics=args.metrics,
        seed=args.seed,
        params=parse_overrides(args.overrides),
        representation=args.representation,
        backend=args.backend,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    results = evaluate_all(args.encoder, options)
    status = EXIT_OK
    for result in results:
        result = result.model_copy(update={"baseline": bool(args.baseline)})
        print(format_scores(result))
        if args.out:
            out = Path(args.out)
            if len(results) > 1:
                out = out.with_name(f"{out.stem}.{result.dataset}.{result.representation}{out.suffix or '.json'}")
            result.write(out)
            print(f"wrote {out}")
        if args.plots:
            folder = Path(args.plots) / (f"{result.dataset}-{result.representation}" if len(results) > 1 else "")
            for path in write_plots(result, folder):
                print(f"wrote {path}")
        if result.status != "ok":
            for metric, reason in result.errors.items():
                print(f"dbench: {metric}: {reason}", file=sys.stderr)
            if result.error and not result.errors:
                print(f"dbench: error: {result.error}", file=sys.stderr)
            status = EXIT_FAILED
    return status
