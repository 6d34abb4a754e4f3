"""``dbench evaluate ENCODER...``: score encoders, print each table, write the JSON results and plots.

Several encoders and datasets go in one call (``dbench evaluate a.py b.py --dataset dsprites
noisy_dsprites``): the protocol is resolved once (a usage error stops everything before any encoding),
then each encoder is loaded once and scored on every (dataset, representation) pair. An encoder that
fails to load is reported in one line and the others still run. Each result is printed and written
as soon as it is done, with a ``wrote PATH`` line; where results go is described in
:mod:`dbench.results.layout` (``--out FILE.json`` or ``--out DIR``). A result short of complete
goes to ``<name>.partial.json`` beside it (kept up to date after every metric), never over a complete
one (:mod:`dbench._cli.result_files`); Ctrl-C or SIGTERM writes the metrics already scored that way
and exits 130 or 143. Paths are made absolute before any encoder is loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from dbench._cli.messages import one_line, os_error_line
from dbench.choices import BACKENDS, REPRESENTATIONS
from dbench.errors import ConfigError, DbenchError, excerpt

_EPILOG = """examples:
  dbench evaluate enc.py                                     # quick protocol on dSprites, table only
  dbench evaluate enc.py --protocol dlib --limit 0.1         # dlib with every sample size scaled by 0.1
  dbench evaluate a.py b.py --dataset dsprites noisy_dsprites --out results/   # one JSON per result
  dbench evaluate enc.py --out r.json --save-codes           # r.json and r.codes/<metric>.seed0.npz

--out FILE.json writes one file (several results: FILE.<dataset>-<representation>.json, with
<encoder>. in front for several encoders); --out DIR writes
DIR/<encoder>/<protocol>/<dataset>-<representation>.json and skips results already scored there
(same encoder and protocol) unless --overwrite is given.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score encoders (prints a table, writes JSON results)",
        description="Score each ENCODER (a Python file, a TorchScript file or a trained run folder) under a protocol.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("encoders", nargs="+", metavar="ENCODER",
                   help="Python file, TorchScript file or reference-model run folder (several allowed)")
    p.add_argument("--protocol", default=None, help="bundled protocol name or YAML file (default: quick)")
    p.add_argument("--dataset", nargs="+", default=None, metavar="DATASET",
                   help="dataset name(s) (default: the protocol's; see dbench list datasets)")
    p.add_argument("--metrics", nargs="+", default=None, metavar="METRIC", help="metrics to run (default: the protocol's)")
    p.add_argument("--seed", type=int, nargs="+", default=None, help="metric seed(s) (default: the protocol's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="METRIC.PARAM=VALUE",
                   help="override a metric parameter, e.g. --set mig.n_train=5000 (repeatable)")
    p.add_argument("--limit", type=float, default=None, metavar="F",
                   help="scale every sample size of the protocol by F in (0, 1], e.g. 0.1 (a derived protocol)")
    p.add_argument("--representation", choices=REPRESENTATIONS, default=None)
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size (1 to 65536)")
    p.add_argument("--data-dir", default=None,
                   help="folder with official dataset files (default: $DBENCH_DATA_DIR, $DISENTANGLEMENT_LIB_DATA)")
    p.add_argument("--cache-dir", default=None, help="persist codes here so an interrupted run resumes")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="a .json file, or a folder (DIR/<encoder>/<protocol>/<dataset>-<representation>.json); "
                        "a result short of complete goes to <name>.partial.json beside it")
    p.add_argument("--output-dir", default=None, metavar="DIR", help="the results folder (as --out DIR)")
    p.add_argument("--overwrite", action="store_true", help="evaluate again results already scored in the results folder")
    p.add_argument("--save-codes", action="store_true",
                   help="also write every metric's indices, codes and factors (npz) beside each result file")
    p.add_argument("--plots", default=None, metavar="DIR", help="write plots (scores, DCI importances, probe curves)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress (a bar in a terminal, a line every ~30 s in a log)")
    p.add_argument("--baseline", action="store_true", help="mark the results as reference baselines (leaderboard)")
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


def _expected_name(spec: str) -> str:
    """The name an encoder path gets (a file's stem, a folder's name): the results folder's first level."""
    path = Path(spec)
    return path.resolve().name if path.is_dir() else path.stem


def run(args: argparse.Namespace) -> int:
    from dbench.evaluation.options import EvaluationOptions
    from dbench.evaluation.pipeline import EvaluationInterrupted, resolve_config
    from dbench.results.layout import OutputLayout

    # Fixed before any encoder is loaded: user code that calls os.chdir changes nothing.
    for name in ("out", "output_dir", "plots"):
        if getattr(args, name):
            setattr(args, name, str(Path(getattr(args, name)).absolute()))
    options = EvaluationOptions(
        protocol=args.protocol,
        dataset=args.dataset,
        metrics=args.metrics,
        seed=args.seed,
        params=parse_overrides(args.overrides),
        representation=args.representation,
        backend=args.backend,
        batch_size=args.batch_size,
        limit=args.limit,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,  # a bar in a terminal, a line every ~30 s in a log
        invocation=getattr(args, "invocation", None),
    )
    # Usage errors (protocol, parameters, names) stop everything before any encoder is loaded.
    configs = resolve_config(options)
    names = [_expected_name(spec) for spec in args.encoders]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        sharing = ", ".join(s for s, n in zip(args.encoders, names, strict=True) if n in clash)
        raise ConfigError(f"encoders {excerpt(sharing)} share the name "
                          f"{excerpt(clash[0])}, so their results would overwrite each other; evaluate them in separate calls")
    layout = OutputLayout.from_arguments(args.out, args.output_dir, n_results=len(configs) * len(args.encoders),
                                         several_encoders=len(args.encoders) > 1)
    if args.save_codes and layout.target is None:
        raise ConfigError("--save-codes writes the codes beside the result files; give --out FILE.json or --out DIR too")
    rule = layout.rule()
    if rule:
        print(f"dbench: {rule}", file=sys.stderr)

    from dbench._cli.result_files import ResultFiles

    files = ResultFiles()
    status, ran = EXIT_OK, 0
    try:
        for spec in args.encoders:
            try:
                outcome = _evaluate_encoder(spec, configs, options, layout, args, files)
            except DbenchError as exc:  # this encoder could not be loaded or served: the others still run
                if len(args.encoders) == 1:
                    raise
                print(f"dbench: error: {spec}: {one_line(exc)}", file=sys.stderr)
                status = EXIT_FAILED
                continue
            ran += outcome.ran
            if outcome.failed:
                status = EXIT_FAILED
    except EvaluationInterrupted as interrupted:  # its partial result is already printed and written
        kept = " (written as partial results)" if layout.target is not None and interrupted.results else ""
        verb = "interrupted" if interrupted.signal_name == "SIGINT" else "terminated"
        print(f"dbench: {verb} by {interrupted.signal_name}; metrics already scored are kept{kept}, codes encoded "
              "so far are kept in --cache-dir, if given", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted.signal_name == "SIGINT" else EXIT_TERMINATED
    if layout.target is None and ran:
        print("(results not saved: add --out FILE.json or --out DIR to keep them)", file=sys.stderr)
    return status


class _Outcome:
    def __init__(self) -> None:
        self.ran = 0
        self.failed = False


def _evaluate_encoder(spec: str, configs: list[Any], options: Any, layout: Any, args: argparse.Namespace,
                      files: Any) -> _Outcome:
    from dbench.evaluation.pipeline import EvaluationInterrupted, prepare, run_config
    from dbench.results.layout import finished

    outcome = _Outcome()
    loaded, kept, notices = prepare(spec, configs, options)
    for notice in notices:
        print(f"dbench: note: {notice}", file=sys.stderr)
    for cfg in kept:
        path = layout.path(loaded.name, cfg.dataset, cfg.representation, cfg.protocol)
        if (layout.folder and path is not None and not args.overwrite
                and finished(path, protocol_hash=cfg.protocol["hash"], fingerprint=loaded.fingerprint)):
            print(f"skipped {path}: already scored with this encoder and protocol (--overwrite to evaluate again)")
            continue
        saver = _code_saver(path, cfg, options) if args.save_codes and path is not None else None
        save = None if path is None else partial(files.write_checkpoint, path)  # R.partial.json after every metric
        try:
            result = run_config(loaded, cfg, options=options, encoder_spec=spec, on_codes=saver, checkpoint=save)
        except EvaluationInterrupted as interrupted:
            for partial_result in interrupted.results:  # the metrics finished before the interrupt
                _finish(partial_result, path, layout, args, outcome, files, saver=saver, plots=False)
            raise
        _finish(result, path, layout, args, outcome, files, saver=saver, plots=bool(args.plots))
    return outcome


def _finish(result: Any, path: Path | None, layout: Any, args: argparse.Namespace, outcome: _Outcome, files: Any, *,
            saver: Any, plots: bool) -> None:
    """Print one result, write it (a result short of complete to ``<name>.partial.json``) and its plots."""
    from dbench._cli.result_files import partial_path
    from dbench.results import format_scores

    if args.baseline:
        result = result.model_copy(update={"baseline": True})
    outcome.ran += 1
    print(format_scores(result))
    if path is not None:
        try:
            written = files.write_result(result, path)
        except OSError as exc:  # the next results may still be written elsewhere
            # Name the file asked for, not the temporary file the atomic write failed on.
            reason = (exc.strerror or exc.__class__.__name__).rstrip(".").lower()
            if isinstance(exc, (FileExistsError, NotADirectoryError)) and not path.parent.is_dir():
                reason = f"its folder {path.parent} cannot be made (a file is in the way)"
            print(f"dbench: error: cannot write the result to {path}: {reason}; choose another --out "
                  "(the result above was not saved)", file=sys.stderr)
            outcome.failed = True
        else:
            if written is None:
                print(f"dbench: note: kept the earlier partial result {partial_path(path)}, which has scores this "
                      "run does not", file=sys.stderr)
            else:
                print(f"wrote {written}")
    if saver is not None and saver.written:
        print(f"wrote {len(saver.written)} code files ({saver.n_bytes / 1e6:,.1f} MB) to {saver.folder}")
    if plots:
        try:
            for plot in _write_plots(result, Path(args.plots), layout):
                print(f"wrote {plot}")
        except OSError as exc:
            print(f"dbench: error: {os_error_line(exc)} (plots not written; choose another --plots)", file=sys.stderr)
            outcome.failed = True
    print()
    if result.status != "ok":
        outcome.failed = True
        _report_failures(result)


def _code_saver(path: Path, cfg: Any, options: Any) -> Any:
    from dbench.datasets import get_dataset
    from dbench.results.saved_codes import CodeSaver, codes_folder

    return CodeSaver(codes_folder(path), get_dataset(cfg.dataset, data_dir=options.data_dir), cfg.representation)


def _write_plots(result: Any, root: Path, layout: Any) -> list[Path]:
    """Plots into ``root`` (one result) or ``root/<dataset>-<representation>/`` (several).

    With several encoders, ``<encoder>/`` comes first.
    """
    from dbench.results import write_plots
    from dbench.results.layout import result_file_name, safe_name

    folder = root
    if layout.several_encoders:
        folder = folder / safe_name(result.encoder.name)
    if layout.n_results > 1:
        folder = folder / result_file_name(result.dataset, result.representation).removesuffix(".json")
    return write_plots(result, folder)


def _report_failures(result: Any) -> None:
    """One stderr line per distinct reason (metrics failing for the same reason share a line)."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for metric, reason in result.errors.items():
        if result.error:  # said once, on the error line
            reason = reason.replace(f" ({result.error})", "")
        by_reason[reason].append(metric)
    where = f"{result.encoder.name} on {result.dataset} ({result.representation})"
    if result.error:  # the encoder's (or the interrupt's) one line first, then what it cost each metric
        print(f"dbench: error: {where}: {result.error}", file=sys.stderr)
    for reason, metrics in by_reason.items():
        print(f"dbench: {where}: {', '.join(metrics)} failed: {reason}", file=sys.stderr)


__all__ = ["parse_overrides", "register", "run"]
