"""``dbench cache ls`` / ``dbench cache clear``: what the code cache holds, and removing it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cache",
        help="list or clear cached codes (dbench evaluate --cache-dir)",
        description="List or clear the codes that `dbench evaluate --cache-dir DIR` keeps, per encoder and dataset.",
    )
    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    where = "cache folder (default: $DBENCH_CACHE_DIR, else ~/.cache/dbench)"
    ls = sub.add_parser("ls", help="what is cached: encoder fingerprint, dataset, width, observations, size")
    ls.add_argument("--cache-dir", default=None, help=where)
    ls.set_defaults(func=run_ls)
    clear = sub.add_parser("clear", help="remove cached codes: all, or of one encoder fingerprint or dataset")
    clear.add_argument("--cache-dir", default=None, help=where)
    clear.add_argument("--all", action="store_true", help="remove every entry")
    clear.add_argument("--fingerprint", default=None, help="remove the entries of this encoder fingerprint (a prefix will do)")
    clear.add_argument("--dataset", default=None, help="remove the entries of this dataset")
    clear.set_defaults(func=run_clear)


def _root(args: argparse.Namespace) -> Path:
    from dbench.codes.inventory import default_cache_dir

    return Path(args.cache_dir).expanduser().absolute() if args.cache_dir else default_cache_dir()


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TB"  # pragma: no cover - the loop returns at GB


def _short(text: str | None, width: int) -> str:
    text = text or "?"
    return text if len(text) <= width else text[: width - 3] + "..."


def run_ls(args: argparse.Namespace) -> int:
    from dbench.codes.inventory import list_caches

    root = _root(args)
    entries = list_caches(root)
    if not entries:
        print(f"no cached codes in {root}")
        return EXIT_OK
    total = sum(e.n_bytes for e in entries)
    print(f"cached codes in {root}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {_size(total)}")
    header = ("fingerprint", "dataset", "latents", "observations", "shards", "size", "last written", "folder")
    rows = [
        (
            _short(e.fingerprint, 30),
            _short(e.dataset, 20),
            str(e.n_latents) if e.n_latents is not None else "?",
            f"{e.n_observations:,}",
            str(e.n_shards) + (f" (+{e.n_quarantined} quarantined)" if e.n_quarantined else ""),
            _size(e.n_bytes),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_written)) if e.last_written else "-",
            e.key,
        )
        for e in entries
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if any(e.fingerprint is None for e in entries):
        print("entries with fingerprint '?' were written by an older dbench; `dbench cache clear --all` removes them")
    return EXIT_OK


def run_clear(args: argparse.Namespace) -> int:
    from dbench.codes.inventory import clear_caches

    if not (args.all or args.fingerprint or args.dataset):
        print("dbench: error: say what to clear: --all, --fingerprint FP or --dataset NAME "
              "(see dbench cache clear --help)", file=sys.stderr)
        return EXIT_USAGE
    root = _root(args)
    try:
        removed, notes = clear_caches(root, fingerprint=args.fingerprint, dataset=args.dataset)
    except OSError as exc:
        print(f"dbench: error: cannot remove cached codes in {root} ({exc.strerror or exc}); "
              "check the folder's permissions", file=sys.stderr)
        return EXIT_FAILED
    if not removed:
        what = " and ".join(x for x in (args.fingerprint and f"fingerprint {args.fingerprint!r}",
                                        args.dataset and f"dataset {args.dataset!r}") if x) or "anything"
        print(f"nothing to clear: no cached codes of {what} in {root}")
        return EXIT_OK
    print(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} "
          f"({_size(sum(e.n_bytes for e in removed))}) from {root}")
    for note in notes:
        print(f"dbench: warning: left {note}", file=sys.stderr)
    return EXIT_OK
