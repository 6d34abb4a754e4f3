"""``dbench check ENCODER``: a seconds-long health check on tiny data (pass/fail table)."""

from __future__ import annotations

import argparse
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("check", help="check an encoder in seconds on tiny data (pass/fail table)")
    p.add_argument("encoder")
    p.add_argument("--dataset", default=None, help="dataset to draw test images from (default: tiny_dsprites)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.encoders import check_encoder

    dataset = None
    if args.dataset:
        from dbench.datasets import get_dataset

        dataset = get_dataset(args.dataset, data_dir=args.data_dir)
    report = check_encoder(args.encoder, dataset=dataset)
    print(report.format_table())
    return EXIT_OK if report.passed else EXIT_FAILED
