"""``dbench download NAME...``: fetch official dataset files into the data folder (see dbench.datasets.download)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dbench._cli.exit_codes import EXIT_FAILED, EXIT_OK

_EPILOG = """examples:
  dbench download dsprites                     # the official dSprites file (26 MB)
  dbench download dsprites shapes3d --data-dir ~/data
  dbench download mpi3d_real --url https://my.mirror/mpi3d_real.npz

The file goes to DATA/<subfolder>/<file> (disentanglement_lib's layout), where DATA is --data-dir, else
$DBENCH_DATA_DIR, else $DISENTANGLEMENT_LIB_DATA, else ~/.local/share/dbench; evaluations find it there.
It is checked with the loader's layout checks before it is kept, and its SHA-256 is recorded in
DATA/dbench-data.json. An interrupted download resumes from DATA/<subfolder>/<file>.part.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "download",
        help="fetch an official dataset file (dSprites, Shapes3D, MPI3D) into the data folder",
        description="Download official dataset files, check their layout and record their SHA-256.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The names are not imported here (dbench --help stays cheap); an unknown one gets the list.
    p.add_argument("names", nargs="+", metavar="NAME", help="dsprites, shapes3d, mpi3d_toy, mpi3d_realistic, ...")
    p.add_argument("--data-dir", default=None,
                   help="data folder (default: $DBENCH_DATA_DIR, $DISENTANGLEMENT_LIB_DATA, ~/.local/share/dbench)")
    p.add_argument("--url", default=None, help="download from here instead of the published location (one NAME only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (a line every 30 s instead)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dbench.datasets.download import download, source
    from dbench.errors import ConfigError, DbenchError

    if args.url and len(args.names) > 1:
        raise ConfigError("--url names one file; give one NAME with it")
    entries = [source(name) for name in args.names]  # unknown names: a usage error before anything is fetched
    status = EXIT_OK
    for name, entry in zip(args.names, entries, strict=True):
        url = args.url or entry.url
        if url:
            print(f"dbench: {entry.name}: {entry.filename} from {url}", file=sys.stderr)
        try:
            done = download(name, data_dir=args.data_dir, url=args.url, progress=False if args.no_progress else None)
        except DbenchError as exc:  # this file failed (network, layout): exit 1, the others still come
            print(f"dbench: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        state = "already there, checked" if done.already_there else f"downloaded and checked ({done.n_bytes / 1e6:,.1f} MB)"
        print(f"{done.path}: {state}; sha256 {done.sha256} recorded in {done.manifest}")
        print(f"  use it as dataset {' / '.join(entry.datasets)}")
    return status
