"""``dbench evaluate ENCODER``: score an encoder, print the table, write the JSON result and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
)
from dbench.choices import BACKENDS, REPRESENTATIONS
from dbench.errors import ConfigError, excerpt


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
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size (1 to 65536)")
    p.add_argument("--data-dir", default=None, help="folder with official dataset files (or DBENCH_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="persist codes here so an interrupted run resumes")
    p.add_argument("--out", default=None, help="write the JSON result here (R.partial.json beside it if not complete)")
    p.add_argument("--plots", default=None, metavar="DIR", help="write plots (score table, DCI importances, probe curves)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress (a bar in a terminal, a line every ~30 s in a log)")
    p.add_argument("--baseline", action="store_true", help="mark the result as a reference baseline (leaderboard)")
    p.set_defaults(func=run)


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["mig.n_train=5000"]`` -> ``{"mig": {"n_train": 5000}}`` (values parsed as YAML scalars/lists)."""
    from dbench.protocols.yaml_io import (
        load_yaml_text,  # the protocols' bounded YAML reader
    )

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        metric, dot, param = key.partition(".")
        if not sep or not dot or not metric or not param:
            raise ConfigError(f"--set {excerpt(item)}: expected METRIC.PARAM=VALUE, e.g. mig.n_train=5000")
        out.setdefault(metric, {})[param] = load_yaml_text(value, f"--set {excerpt(item, 40)}")
    return out


def run(args: argparse.Namespace) -> int:
    from dbench._cli.result_files import result_path, write_checkpoint, write_result
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import EvaluationInterrupted, evaluate_all
    from dbench.results import format_scores, write_plots

    # Fixed before the encoder is loaded: user code that calls os.chdir changes nothing.
    out_arg = Path(args.out).absolute() if args.out else None
    plots_arg = Path(args.plots).absolute() if args.plots else None
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
        progress=not args.no_progress,  # a bar in a terminal, a line every ~30 s in a log
    )
    interrupted: EvaluationInterrupted | None = None
    checkpoint = None if out_arg is None else partial(write_checkpoint, out_arg)
    try:
        results = evaluate_all(args.encoder, options, checkpoint=checkpoint)
    except EvaluationInterrupted as exc:
        results, interrupted = exc.results, exc
    status = EXIT_OK
    for result in results:
        result = result.model_copy(update={"baseline": bool(args.baseline)})
        print(format_scores(result))
        if out_arg is not None:
            try:
                print(f"wrote {write_result(result, result_path(out_arg, result, len(results)))}")
            except OSError as exc:
                print(f"dbench: error: cannot write the result to {exc.filename or out_arg} "
                      f"({exc.strerror or exc}); choose another --out", file=sys.stderr)
                status = EXIT_FAILED
        if plots_arg is not None and interrupted is None:
            folder = plots_arg / (f"{result.dataset}-{result.representation}" if len(results) > 1 else "")
            try:
                for path in write_plots(result, folder):
                    print(f"wrote {path}")
            except OSError as exc:
                print(f"dbench: error: cannot write plots to {folder} ({exc.strerror or exc}); choose another --plots",
                      file=sys.stderr)
                status = EXIT_FAILED
        if result.status != "ok":
            if result.error and interrupted is None:  # the encoder's one line first, then each metric's
                print(f"dbench: error: {result.error}", file=sys.stderr)
            for metric, reason in result.errors.items():
                print(f"dbench: {metric}: {reason}", file=sys.stderr)
            status = EXIT_FAILED
    if interrupted is not None:
        kept = " (written as partial results)" if out_arg is not None and results else ""
        print(f"dbench: {'terminated' if interrupted.signal_name != 'SIGINT' else 'interrupted'} by "
              f"{interrupted.signal_name}; metrics already scored are kept{kept}, codes encoded so far are kept "
              "in --cache-dir, if given", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted.signal_name == "SIGINT" else EXIT_TERMINATED
    return status
