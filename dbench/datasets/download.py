"""``dbench download NAME``: fetch an official dataset file into the data folder, check it, record its hash.

The file lands where the loaders look, in disentanglement_lib's layout: ``<folder>/<subfolder>/<file>``
(``dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``, ``3dshapes/3dshapes.h5``,
``mpi3d_toy/mpi3d_toy.npz``...), where ``<folder>`` is ``--data-dir``, else ``$DBENCH_DATA_DIR``, else
``$DISENTANGLEMENT_LIB_DATA``, else the user's data folder (:func:`~dbench.datasets._files.default_data_dir`).

* **Resumable and atomic.** Bytes go to ``<file>.part``; an interrupted download resumes from there
  (an HTTP range request) and the file appears under its real name only when complete and checked,
  so a half file is never taken for the dataset.
* **Checked.** Before the rename the file passes the loader's own layout checks (keys, shapes,
  dtypes, and for dSprites and Shapes3D the order of the factor grid); a file that fails is deleted.
* **Recorded.** Its SHA-256, size, URL and UTC time go into ``dbench-data.json`` in the folder, so a
  paper can say exactly which file its numbers were computed on.

Progress: a tqdm bar on a terminal, one line about every 30 s otherwise. Only ``http(s)`` URLs are
fetched; the defaults are the datasets' published locations.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbench._json import file_sha256, write_json_atomic
from dbench.datasets._files import DATA_DIR_ENV, DLIB_DATA_DIR_ENV, default_data_dir
from dbench.errors import DatasetError

MANIFEST = "dbench-data.json"
_CHUNK = 1 << 20
_LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class DataFile:
    """One downloadable dataset file: where it comes from, where it goes, how it is checked.

    ``check(path, factor_sizes)`` runs the loader's layout checks and raises
    :class:`~dbench.errors.DatasetError`; ``factor_sizes`` is the grid the file must hold.
    """

    name: str  # the ``dbench download`` argument
    datasets: tuple[str, ...]  # registry names that read the file
    filename: str
    subdir: str
    url: str | None
    factor_sizes: tuple[int, ...]
    check: Callable[[Path, tuple[int, ...]], None]
    needs: str | None = None  # a module the check imports (h5py), checked before downloading


def _check_dsprites(path: Path, factor_sizes: tuple[int, ...]) -> None:
    from dbench.datasets.official import OfficialDSprites

    OfficialDSprites(path, factor_sizes=factor_sizes)


def _check_mpi3d(name: str) -> Callable[[Path, tuple[int, ...]], None]:
    def check(path: Path, factor_sizes: tuple[int, ...]) -> None:
        from dbench.datasets._files import NpzFile
        from dbench.datasets.image_files import check_mpi3d_layout

        npz = NpzFile(name, path)
        try:
            check_mpi3d_layout(npz, factor_sizes)
        finally:
            npz.close()

    return check


def _check_shapes3d(path: Path, factor_sizes: tuple[int, ...]) -> None:
    from dbench.datasets.image_files import Shapes3D

    Shapes3D(path, factor_sizes=factor_sizes).close()


def _sources() -> dict[str, DataFile]:
    from dbench.datasets.dsprites import FACTOR_SIZES
    from dbench.datasets.image_files import MPI3D_FACTOR_SIZES, SHAPES3D_FACTOR_SIZES, SHAPES3D_FILENAME
    from dbench.datasets.official import OFFICIAL_FILENAME

    mpi3d = "https://storage.googleapis.com/disentanglement_dataset/data_npz/{}_64x_ordered_without_heldout_factors.npz"
    files = [
        DataFile("dsprites", ("dsprites_official", "color_dsprites", "noisy_dsprites"), OFFICIAL_FILENAME, "dsprites",
                 f"https://github.com/deepmind/dsprites-dataset/raw/master/{OFFICIAL_FILENAME}", FACTOR_SIZES, _check_dsprites),
        DataFile("shapes3d", ("shapes3d",), SHAPES3D_FILENAME, "3dshapes",
                 "https://storage.googleapis.com/3d-shapes/3dshapes.h5", SHAPES3D_FACTOR_SIZES, _check_shapes3d, "h5py"),
        # disentanglement_lib's files for its 4 x 4 x 2 x 3 x 3 x 40 x 40 grid (dlib_download_data's URLs).
        DataFile("mpi3d_toy", ("mpi3d_toy",), "mpi3d_toy.npz", "mpi3d_toy", mpi3d.format("sim_toy"),
                 MPI3D_FACTOR_SIZES["toy"], _check_mpi3d("mpi3d_toy")),
        DataFile("mpi3d_realistic", ("mpi3d_realistic",), "mpi3d_realistic.npz", "mpi3d_realistic",
                 mpi3d.format("sim_realistic"), MPI3D_FACTOR_SIZES["realistic"], _check_mpi3d("mpi3d_realistic")),
        # No public file with the loaders' grid is known for these: give its URL with --url.
        DataFile("mpi3d_real", ("mpi3d_real",), "mpi3d_real.npz", "mpi3d_real", None,
                 MPI3D_FACTOR_SIZES["real"], _check_mpi3d("mpi3d_real")),
        DataFile("mpi3d_complex", ("mpi3d_complex",), "mpi3d_complex.npz", "mpi3d_complex", None,
                 MPI3D_FACTOR_SIZES["complex"], _check_mpi3d("mpi3d_complex")),
    ]
    return {f.name: f for f in files}


#: ``dbench download`` names -> their files.
SOURCES: dict[str, DataFile] = _sources()


def download_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where ``dbench download`` puts files: ``data_dir``, else the first data-folder variable set, else the default."""
    if data_dir is not None:
        return Path(data_dir)
    for env in (DATA_DIR_ENV, DLIB_DATA_DIR_ENV):
        if os.environ.get(env):
            return Path(os.environ[env]).expanduser()
    return default_data_dir()


def source(name: str) -> DataFile:
    """The file ``dbench download name`` fetches; DatasetError listing the names otherwise."""
    if name in SOURCES:
        return SOURCES[name]
    for candidate in SOURCES.values():  # a registry name (dsprites_official) finds its file too
        if name in candidate.datasets:
            return candidate
    raise DatasetError(f"no download for {name!r}; dbench downloads: {', '.join(SOURCES)}")


@dataclass
class Downloaded:
    """What :func:`download` did: the file, its hash and size, and whether it was already there."""

    path: Path
    sha256: str
    n_bytes: int
    url: str | None
    already_there: bool
    manifest: Path


def download(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> Downloaded:
    """Fetch the file of ``name`` (see :data:`SOURCES`) into the data folder, check and record it.

    A file already in place is checked and recorded, not fetched again (delete it to re-download).
    ``url`` replaces the default location (a mirror; required where no public one is known).
    ``progress`` shows a tqdm bar (default: when stderr is a terminal); ``log(line)`` receives a
    line about every 30 s otherwise (default: stderr).
    """
    entry = source(name)
    url = url or entry.url
    if entry.needs:
        try:
            __import__(entry.needs)
        except ImportError:
            raise DatasetError(
                f"checking {entry.filename} needs {entry.needs}; install it with `pip install {entry.needs}`"
            ) from None
    folder = download_dir(data_dir)
    target = folder / entry.subdir / entry.filename
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if target.is_file():
        _checked(entry, target)
        return _record(folder, target, url, already_there=True)
    if not url:
        raise DatasetError(f"{entry.name}: no public download location with the loader's layout is known; pass --url URL "
                           f"(or put {entry.filename} into {folder / entry.subdir} yourself)")
    if not url.startswith(("https://", "http://")):
        raise DatasetError(f"--url {url!r}: only http(s) URLs are downloaded; copy a local file into {folder / entry.subdir}")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    _fetch(url, part, progress=sys.stderr.isatty() if progress is None else progress, log=log, label=entry.filename)
    try:
        _checked(entry, part)
    except DatasetError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    return _record(folder, target, url, already_there=False)


def _checked(entry: DataFile, path: Path) -> None:
    try:
        entry.check(path, entry.factor_sizes)
    except DatasetError as exc:
        raise DatasetError(f"{path.name} is not the official {entry.name} file ({exc}); it was not kept") from None


def _fetch(url: str, part: Path, *, progress: bool, log: Callable[[str], None], label: str) -> None:
    """Stream ``url`` into ``part``, resuming from the bytes already there when the server allows it."""
    from urllib.error import HTTPError, URLError
    from urllib.request import Request, urlopen

    from dbench._version import __version__

    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"dbench/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=60)
    except HTTPError as exc:
        if exc.code == 416 and start:  # the .part already holds everything
            return
        raise DatasetError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}; check the URL (or --url)") from None
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetError(f"downloading {url} failed ({reason}); check the network and rerun "
                           f"(a partial download is kept in {part.name} and resumed)") from None
    with response:
        resumed = start and response.status == 206
        if not resumed:
            start = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        done = start
        bar = _progress_bar(total, done, label) if progress else None
        last_log = time.monotonic()
        try:
            with open(part, "ab" if resumed else "wb") as handle:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except OSError as exc:
                        reason = exc.strerror if exc.strerror else str(exc) or type(exc).__name__
                        raise DatasetError(
                            f"downloading {url} broke off after {done:,} bytes ({reason}); rerun to resume"
                        ) from None
                    if not chunk:
                        break
                    handle.write(chunk)
                    done += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    elif time.monotonic() - last_log >= _LOG_EVERY_S:
                        last_log = time.monotonic()
                        share = f" of {total / 1e6:,.1f} MB ({100 * done / total:.0f}%)" if total else ""
                        log(f"dbench: downloading {label}: {done / 1e6:,.1f} MB{share}")
        finally:
            if bar is not None:
                bar.close()
    if total is not None and done != total:
        raise DatasetError(f"downloading {url} ended after {done:,} of {total:,} bytes; rerun to resume")


def _progress_bar(total: int | None, initial: int, label: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label, dynamic_ncols=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's ``dbench-data.json`` (``{"files": {relative path: record}}``); empty when absent or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": {}}
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        return {"files": {}}
    return data


def _record(folder: Path, path: Path, url: str | None, *, already_there: bool) -> Downloaded:
    """Hash ``path`` and write it into the folder's manifest (atomically); what :func:`download` returns."""
    from datetime import datetime, timezone

    digest = file_sha256(path)
    size = path.stat().st_size
    manifest = read_manifest(folder)
    key = path.relative_to(folder).as_posix()
    previous = manifest["files"].get(key, {})
    if previous.get("sha256") != digest or previous.get("bytes") != size:
        when = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        manifest["files"][key] = {"sha256": digest, "bytes": size, "url": url if not already_there else previous.get("url"),
                                  "recorded_utc": when}
        write_json_atomic(folder / MANIFEST, manifest)
    return Downloaded(path, digest, size, url, already_there, folder / MANIFEST)


__all__ = ["MANIFEST", "SOURCES", "DataFile", "Downloaded", "download", "download_dir", "read_manifest", "source"]
