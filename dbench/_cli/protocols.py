"""``dbench protocols list | show NAME | validate FILE... | export-queries NAME``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK

_EPILOG = """examples:
  dbench protocols list                  # bundled protocols with their descriptions
  dbench protocols show quick            # every parameter, defaults filled in, and the hash
  dbench protocols validate my.yaml      # exit 0 if valid, 1 with one line per invalid file
  dbench protocols export-queries challenge --out queries.npz   # what a submission must encode
"""


def register(subparsers: Any) -> None:
    """Add ``dbench protocols`` with its ``list``, ``show``, ``validate`` and ``export-queries`` actions."""
    parser = subparsers.add_parser(
        "protocols",
        help="list, show or validate evaluation protocols",
        description="Evaluation protocols: YAML files fixing datasets, metrics, parameters and seeds.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="protocols_command", metavar="ACTION", required=True)
    p_list = sub.add_parser("list", help="bundled protocol names and descriptions")
    p_list.set_defaults(func=run_list)
    p_show = sub.add_parser("show", help="print a protocol fully resolved (YAML) with its hash")
    p_show.add_argument("protocol", help="bundled name or YAML file")
    p_show.set_defaults(func=run_show)
    p_validate = sub.add_parser("validate", help="check protocol files; exit 0 if all are valid, else 1")
    p_validate.add_argument("files", nargs="+", metavar="FILE", help="protocol YAML files or bundled names")
    p_validate.set_defaults(func=run_validate)
    p_export = sub.add_parser(
        "export-queries",
        help="write the observations a submission must encode (indices, and images with --images)",
    )
    p_export.add_argument("protocol", help="bundled name or YAML file")
    p_export.add_argument("--out", required=True, help=".npz file: <dataset>__indices (and <dataset>__images)")
    p_export.add_argument("--images", action="store_true", help="also write the images, compactly: bit-packed (binary) or uint8 "
                          "(see docs/submissions.md)")
    p_export.add_argument("--data-dir", default=None)
    p_export.set_defaults(func=run_export_queries)


def run_list(args: argparse.Namespace) -> int:
    from dbench.errors import ConfigError
    from dbench.protocols import list_protocols
    from dbench.protocols.load import protocol_description

    # Listing reads the files only; `show` and `validate` check them against the metric registry.
    for name in list_protocols():
        try:
            description = protocol_description(name)
        except ConfigError as exc:
            description = f"INVALID: {exc}"
        print(f"{name:<12} {description}")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from dbench.protocols import dump_resolved_yaml, hash_resolved, resolve_protocol

    resolved = resolve_protocol(args.protocol)
    print(f"# hash: {hash_resolved(resolved)}")
    print(dump_resolved_yaml(resolved), end="")
    return EXIT_OK


def run_validate(args: argparse.Namespace) -> int:
    from dbench.errors import ConfigError
    from dbench.protocols import hash_resolved, resolve_protocol

    status = EXIT_OK
    for target in args.files:
        try:
            resolved = resolve_protocol(target)
        except ConfigError as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            status = EXIT_FAILED
        else:
            print(f"ok: {target} ({resolved['name']} v{resolved['version']}, hash {hash_resolved(resolved)[:12]})")
    return status


def run_export_queries(args: argparse.Namespace) -> int:
    from dbench.submissions.queries import export_queries

    path = export_queries(args.protocol, args.out, images=args.images, data_dir=args.data_dir,
                          report=lambda line: print(line, flush=True))  # the size, before writing
    print(f"wrote {path}")
    return EXIT_OK
