"""The ``dbench`` command line.

Every user-facing failure is one line on stderr (what is wrong and how to fix it) and a non-zero exit
code; ``--debug`` shows the traceback instead. Subcommands are registered from the modules that own
them; none of them imports torch until it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any, Sequence

import dbench
from dbench.errors import DbenchError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Modules that add subcommands with ``register(subparsers)`` (each sets ``func(args) -> int``).
_REGISTRARS = (
    "dbench.protocols",
    "dbench.leaderboard.cli",
    "dbench.submissions.cli",
    "reference_models.cli",
)

EPILOG = """examples:
  dbench evaluate examples/numpy_encoder.py                 # quick protocol on dSprites
  dbench evaluate my_encoder.py --metrics mig dci --seed 1 --out result.json
  dbench evaluate run_dir/ --protocol dlib --backend auto --cache-dir ~/.cache/dbench
  dbench check my_encoder.py                                # seconds: shape, determinism, speed
  dbench train beta_vae --steps 2000 --seed 0 --out runs/beta_vae
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbench",
        description="Evaluate any encoder on disentanglement metrics, fast and reproducibly.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dbench {dbench.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_evaluate(sub)
    _add_check(sub)
    _add_list(sub)
    for module_name in _REGISTRARS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of dbench is not installed in this build
            raise
        module.register(sub)
    return parser


def _add_evaluate(sub: Any) -> None:
    p = sub.add_parser(
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
    p.add_argument("--representation", choices=("mean", "sampled"), default=None)
    p.add_argument("--backend", choices=("auto", "numpy", "cupy", "torch"), default=None)
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size")
    p.add_argument("--data-dir", default=None, help="folder with official dataset files (or DBENCH_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="persist codes here so an interrupted run resumes")
    p.add_argument("--out", default=None, help="write the JSON result here")
    p.add_argument("--plots", default=None, metavar="DIR", help="write plots (score table, DCI importances, probe curves)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--baseline", action="store_true", help="mark the result as a reference baseline (leaderboard)")
    p.set_defaults(func=_run_evaluate)


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="check an encoder in seconds on tiny data (pass/fail table)")
    p.add_argument("encoder")
    p.add_argument("--dataset", default=None, help="dataset to draw test images from (default: tiny_dsprites)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=_run_check)


def _add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list datasets and metrics")
    p.add_argument("what", choices=("datasets", "metrics"))
    p.set_defaults(func=_run_list)


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["mig.n_train=5000"]`` -> ``{"mig": {"n_train": 5000}}`` (values parsed as YAML scalars/lists)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        metric, dot, param = key.partition(".")
        if not sep or not dot or not metric or not param:
            raise DbenchError(f"--set {item!r}: expected METRIC.PARAM=VALUE, e.g. mig.n_train=5000")
        out.setdefault(metric, {})[param] = yaml.safe_load(value)
    return out


def _run_evaluate(args: argparse.Namespace) -> int:
    from dbench.evaluation.pipeline import evaluate_all
    from dbench.evaluation.report import format_scores, write_plots

    results = evaluate_all(
        args.encoder,
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
    status = EXIT_OK
    for i, result in enumerate(results):
        result.baseline = args.baseline
        print(format_scores(result))
        if args.out:
            out = Path(args.out)
            if len(results) > 1:
                out = out.with_name(f"{out.stem}.{result.dataset}.{result.representation}{out.suffix or '.json'}")
            result.write(out)
            print(f"wrote {out}")
        if args.plots:
            for path in write_plots(result, Path(args.plots) / (f"{result.dataset}-{result.representation}" if len(results) > 1 else "")):
                print(f"wrote {path}")
        if result.status != "ok":
            for metric, reason in result.errors.items():
                print(f"dbench: {metric}: {reason}", file=sys.stderr)
            if result.error and not result.errors:
                print(f"dbench: error: {result.error}", file=sys.stderr)
            status = EXIT_FAILED
    return status


def _run_check(args: argparse.Namespace) -> int:
    from dbench.encoders import check_encoder

    kwargs = {}
    if args.dataset:
        from dbench.datasets import get_dataset

        kwargs["dataset"] = get_dataset(args.dataset, data_dir=args.data_dir)
    report = check_encoder(args.encoder, **kwargs)
    print(report.format_table())
    return EXIT_OK if report.passed else EXIT_FAILED


def _run_list(args: argparse.Namespace) -> int:
    if args.what == "datasets":
        from dbench.datasets import DATASETS

        for name in DATASETS:
            print(name)
    else:
        from dbench.metrics import METRIC_NAMES

        for name in METRIC_NAMES:
            print(name)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args) or 0)
    except DbenchError as exc:
        if debug:
            raise
        print(f"dbench: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if exc.__class__ is DbenchError else EXIT_FAILED
    except KeyboardInterrupt:
        print("dbench: interrupted (codes encoded so far are kept in --cache-dir, if given)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, --debug gives the traceback
        if debug:
            raise
        print(
            f"dbench: unexpected error: {exc.__class__.__name__}: {_one_line(exc)} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


if __name__ == "__main__":
    raise SystemExit(main())
