"""``dbench sweep ENCODER... --out DIR``: evaluate many encoders x protocols x seeds, resumable, on a cluster too."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbench._cli.evaluate import parse_overrides
from dbench._cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from dbench.choices import BACKENDS, REPRESENTATIONS

_EPILOG = """examples:
  dbench sweep runs/*/ --protocol quick --seed 0 1 2 --out sweeps/quick          # every run folder, 3 seeds
  dbench sweep --file study.yaml --out sweeps/study --executor processes --workers 4
  dbench sweep --file study.yaml --out sweeps/study --executor dask --workers 8  # a LocalCluster
  dbench sweep --file study.yaml --out /shared/study --executor dask --scheduler tcp://head:8786
  dbench aggregate sweeps/study                                                 # tables and plots

Each job (encoder x protocol x dataset x representation x seed) has a deterministic key; its result is
DIR/results/<key[:2]>/<key>.json. A rerun skips finished jobs, so a stopped sweep resumes where it
stopped; failed jobs (DIR/results/.../<key>.failed.json, with the reason) are run again only with
--retry-failed. Encoders are paths (Python files, TorchScript files, run folders) or globs; options
given here replace the sweep file's (encoders are added to its list). See docs/studies.md.

exit status: 0 every job finished and scored every metric; 1 some job or training failed (or failed
before); 2 usage or configuration error (nothing ran); 130 stopped (rerun the command to resume).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="evaluate many encoders x protocols x seeds into a folder (resumable; processes or Dask)",
        description="Evaluate every encoder on every protocol, dataset, representation and seed; write one "
                    "result file per job under --out.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("encoders", nargs="*", metavar="ENCODER", help="encoder paths or globs (quote globs for the shell "
                   "to pass them through)")
    p.add_argument("--file", "-f", dest="sweep_file", default=None, metavar="SWEEP.yaml", help="a sweep file")
    p.add_argument("--out", required=True, metavar="DIR", help="the sweep folder (results, encoder records)")
    p.add_argument("--protocol", nargs="+", default=None, metavar="P", help="protocol names or YAML files (default: quick)")
    p.add_argument("--dataset", nargs="+", default=None, metavar="D", help="datasets (default: each protocol's)")
    p.add_argument("--representation", nargs="+", choices=REPRESENTATIONS, default=None,
                   help="representations (default: each protocol's)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC", help="metrics to run (default: each protocol's)")
    p.add_argument("--seed", type=int, nargs="+", default=None, metavar="S",
                   help="metric seeds, one job each (default: the protocol's seeds in one job)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                   help="override a metric parameter, e.g. --set mig.n_train=5000 (repeatable)")
    p.add_argument("--limit", type=float, default=None, metavar="F",
                   help="scale every sample size of the protocols by F in (0, 1], e.g. 0.1 (a derived protocol)")
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size")
    p.add_argument("--data-dir", default=None, help="folder with official dataset files (on every worker)")
    p.add_argument("--cache-dir", default=None, help="code cache folder for the encoding tasks (shared or per worker)")
    p.add_argument("--executor", choices=("serial", "processes", "dask"), default="serial",
                   help="where jobs run (default: serial, in this process)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: the CPU count)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="a running Dask scheduler to use instead of a LocalCluster")
    p.add_argument("--gpu", action="store_true",
                   help="encoding and training tasks request the Dask worker resource GPU=1")
    p.add_argument("--retry-failed", action="store_true", help="run again the jobs that failed or were partly scored")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.studies.engine import run_sweep
    from dbench.studies.spec import SweepSpec, read_sweep_file, spec_from_dict

    base = read_sweep_file(args.sweep_file) if args.sweep_file else SweepSpec()
    update: dict[str, Any] = {"encoders": [*base.entries(), *args.encoders]}
    for field, value in (("protocols", args.protocol), ("datasets", args.dataset),
                         ("representations", args.representation), ("seeds", args.seed), ("metrics", args.metrics),
                         ("backend", args.backend), ("batch_size", args.batch_size), ("limit", args.limit),
                         ("data_dir", args.data_dir), ("cache_dir", args.cache_dir)):
        if value is not None:
            update[field] = value
    overrides = parse_overrides(args.overrides)
    if overrides:
        merged = {metric: dict(params) for metric, params in base.set.items()}
        for metric, params in overrides.items():
            merged.setdefault(metric, {}).update(params)
        update["set"] = merged
    spec = spec_from_dict({**base.model_dump(exclude_none=True), **_plain(update)}, "the command line")
    report = run_sweep(spec, args.out, executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                       retry_failed=args.retry_failed, gpu=args.gpu, progress=not args.no_progress,
                       invocation=getattr(args, "invocation", None))
    if report.interrupted:
        print(f"dbench: sweep stopped; {report.ok + report.partial + report.failed} jobs finished now are in "
              f"{report.out}; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(report.summary())
    return EXIT_OK if report.complete else EXIT_FAILED


def _plain(update: dict[str, Any]) -> dict[str, Any]:
    """The update as plain data for validation (encoder entries as mappings)."""
    out = dict(update)
    out["encoders"] = [e.model_dump() if hasattr(e, "model_dump") else e for e in update["encoders"]]
    return out
