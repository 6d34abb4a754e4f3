"""``dbench list datasets|metrics``: the registered names, one per line."""

from __future__ import annotations

import argparse
from typing import Any

from dbench._cli.exit_codes import EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("list", help="list datasets and metrics")
    p.add_argument("what", choices=("datasets", "metrics"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "datasets":
        from dbench.datasets import DATASETS

        names = list(DATASETS)
    else:
        from dbench.metrics import METRIC_NAMES

        names = list(METRIC_NAMES)
    for name in names:
        print(name)
    return EXIT_OK
