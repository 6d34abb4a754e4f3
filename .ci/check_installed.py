"""Check that an installed dbench is what pip installed: no file in its package folders outside its RECORD.

numba's ``cache=True`` once wrote ``.nbi``/``.nbc`` files into ``site-packages/dbench/.../__pycache__``
during the first evaluation; ``pip install -e`` then left them behind and the leftover folder was
imported as a namespace package, breaking ``dbench --version``. Any file a run writes inside the
installed package (besides Python's own ``.pyc`` files) is that class of bug; this prints them and
exits 1. Run it with the virtual environment's Python, outside the checkout.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path


def stray_files(distribution: str = "dbench") -> list[Path]:
    dist = metadata.distribution(distribution)
    recorded = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    # The installed package folders (an editable install has none: its code stays in the checkout).
    roots = [Path(dist.locate_file(name)).resolve() for name in ("dbench", "reference_models")]
    stray = []
    for root in (r for r in roots if r.is_dir()):
        for path in root.rglob("*"):
            if path.is_file() and path.suffix != ".pyc" and path.resolve() not in recorded:
                stray.append(path)
    return stray


def main() -> int:
    stray = stray_files()
    for path in stray:
        print(f"check_installed: {path} is not part of the installed dbench (written by a run?)", file=sys.stderr)
    if not stray:
        print("check_installed: the installed dbench holds only its own files")
    return 1 if stray else 0


if __name__ == "__main__":
    sys.exit(main())
