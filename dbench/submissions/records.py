"""Writing a scored submission's result files: names that never collide, never an overwrite, signed.

A result file is named ``<UTC time>-<team>-<name>-<content hash>-<dataset>-<representation>.json``:
the time orders files by scoring (the leaderboard's tie-break is the order of paths), the content
hash (the first 12 hex digits of the submission's sha256) keeps two teams' same-name submissions
apart. A file is only ever *created* (a hard link of a finished temporary file, which fails if the
name exists); if the name is taken, ``-2``, ``-3``... is appended. Each file gets its signature
(:mod:`dbench.submissions.signing`) beside it, written first, so a result is never visible unsigned.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dbench.evaluation.result import EvaluationResult
from dbench.submissions.signing import signature_path, signature_text

_MAX_PART = 40


def scoring_stamp() -> str:
    """The UTC time of scoring, sortable as text (microseconds keep one batch in order)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def _safe(text: str | None, fallback: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text or "").strip("._-")[:_MAX_PART]
    return cleaned or fallback


def result_filename(result: EvaluationResult, *, stamp: str, content_hash: str) -> str:
    """``<stamp>-<team>-<name>-<hash12>-<dataset>-<representation>.json``, made of safe characters."""
    submission = result.submission
    team = _safe(submission.team if submission else None, "unknown")
    name = _safe(submission.name if submission else result.encoder.name, "submission")
    digest = _safe(content_hash.removeprefix("sha256:")[:12], "nohash")
    return f"{stamp}-{team}-{name}-{digest}-{_safe(result.dataset, 'data')}-{result.representation}.json"


def write_new_result(result: EvaluationResult, folder: str | os.PathLike[str], filename: str, *, key: bytes) -> Path:
    """Write ``result`` signed under a name that does not exist yet (``filename``, else ``-2``, ``-3``...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    signature = signature_text(data, key).encode()
    stem = filename.removesuffix(".json")
    json_tmp = _temporary(folder, data)
    sig_tmp = _temporary(folder, signature)
    try:
        for attempt in range(1, 10_000):
            target = folder / (f"{stem}.json" if attempt == 1 else f"{stem}-{attempt}.json")
            sig = signature_path(target)
            if not _claim(sig_tmp, sig):
                continue
            if _claim(json_tmp, target):
                return target
            sig.unlink(missing_ok=True)  # the result name was taken after all: give the signature back
        raise FileExistsError(f"no free result file name for {stem} in {folder}")
    finally:
        Path(json_tmp).unlink(missing_ok=True)
        Path(sig_tmp).unlink(missing_ok=True)


def _temporary(folder: Path, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".dbench-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # readable as the umask allows, like any file the user writes
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _claim(tmp: str, target: Path) -> bool:
    """Give the finished temporary file the name ``target`` unless that exists (atomic, no overwrite)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links: create exclusively and copy
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle, open(tmp, "rb") as source:
            handle.write(source.read())
    return True


__all__ = ["result_filename", "scoring_stamp", "write_new_result"]
