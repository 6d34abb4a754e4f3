"""Copying a submission folder or unpacking its archive, with limits applied before decompressing.

Runs inside the sandbox's *prepare* step (no submission code has run yet). The result is a plain tree
of regular files and folders, owner-writable and world-readable, that the *encode* step gets
read-only. Refused, each in one line naming the entry:

- anything but regular files and folders (symbolic and hard links, devices, FIFOs, sockets);
- absolute names, ``..`` components, backslashes, NUL, names or components that are too long, trees
  deeper than :data:`MAX_DEPTH`, duplicate names, encrypted zip members;
- more than ``max_entries`` entries, or more than ``max_bytes`` uncompressed bytes in total: checked
  against the sizes the archive declares before anything is decompressed, and again while writing
  (declared sizes can lie), so a decompression bomb stops at the limit.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from dbench.errors import ConfigError

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_DEPTH = 32
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_CHUNK = 1 << 20


@dataclass
class Budget:
    """What is left to unpack: entries and bytes."""

    max_entries: int
    max_bytes: int
    entries: int = 0
    written: int = 0
    digests: dict[str, str] = field(default_factory=dict)

    def entry(self, source: str, name: str) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise ConfigError(f"{source}: more than {self.max_entries:,} entries; "
                              "a submission holds at most that many files and folders")

    def declare(self, source: str, name: str, size: int) -> None:
        if size < 0 or self.written + size > self.max_bytes:
            raise ConfigError(
                f"{source}: {name!r} would bring the unpacked size over the {_mb(self.max_bytes)} limit "
                f"({size:,} bytes declared); make the submission smaller"
            )

    def add(self, source: str, name: str, n: int) -> None:
        self.written += n
        if self.written > self.max_bytes:
            raise ConfigError(f"{source}: {name!r} decompresses past the {_mb(self.max_bytes)} limit on the unpacked size; "
                              "it is a decompression bomb or too large")


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def archive_suffix(name: str) -> str | None:
    """The archive suffix of a file name (``.tar.gz``, ``.zip``...), or None."""
    lowered = name.lower()
    return next((s for s in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True) if lowered.endswith(s)), None)


def unpack_submission(source: Path, dest: Path, *, max_entries: int, max_bytes: int,
                      label: str | None = None) -> tuple[Path, dict[str, str]]:
    """Copy or unpack ``source`` into the empty folder ``dest``.

    Returns the submission's root (an archive of one top-level folder is that folder) and the
    sha256 of every file by its path relative to that root.
    """
    label = label or source.name
    dest.mkdir(mode=0o755, exist_ok=True)
    budget = Budget(max_entries=max_entries, max_bytes=max_bytes)
    info = os.lstat(source)
    if stat.S_ISDIR(info.st_mode):
        _copy_tree(source, dest, budget, label)
    elif stat.S_ISREG(info.st_mode):
        suffix = archive_suffix(source.name)
        if suffix == ".zip":
            _unzip(source, dest, budget, label)
        elif suffix is not None:
            _untar(source, dest, budget, label)
        else:
            raise ConfigError(f"{label}: not a folder, .zip or .tar(.gz/.bz2/.xz) archive")
    else:
        raise ConfigError(f"{label}: not a folder or a regular file")
    entries = list(dest.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() else dest
    prefix = root.relative_to(dest).as_posix()
    digests = {}
    for name, digest in budget.digests.items():
        relative = name if prefix == "." else name[len(prefix) + 1:] if name.startswith(prefix + "/") else None
        if relative:
            digests[relative] = digest
    return root, digests


# -- names ---------------------------------------------------------------------------------------


def checked_name(source: str, name: str) -> PurePosixPath:
    """A member name as a safe relative path, or a one-line ConfigError saying what is wrong with it."""
    shown = repr(name[:80])
    if not name or "\0" in name:
        raise ConfigError(f"{source}: empty name or NUL character in an entry name; not allowed")
    if "\\" in name:
        raise ConfigError(f"{source}: entry {shown} has a backslash in its name; use '/' separators")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise ConfigError(f"{source}: entry name longer than {MAX_PATH_BYTES} bytes; shorten it")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise ConfigError(f"{source}: entry {shown} is an absolute path; not allowed")
    parts = [p for p in path.parts if p not in ("", ".")]
    if ".." in parts:
        raise ConfigError(f"{source}: entry {shown} points outside the archive ('..'); not allowed")
    if not parts:
        raise ConfigError(f"{source}: entry {shown} has no name")
    if len(parts) > MAX_DEPTH:
        raise ConfigError(f"{source}: entry {shown} is nested more than {MAX_DEPTH} folders deep")
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        raise ConfigError(f"{source}: entry {shown} has a name component longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)


def _target(dest: Path, relative: PurePosixPath) -> Path:
    target = dest.joinpath(*relative.parts)
    for parent in reversed(target.relative_to(dest).parents):
        folder = dest / parent
        if folder != dest:
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise ConfigError(f"{relative}: a parent is not a folder")
            folder.mkdir(mode=0o755, exist_ok=True)
    return target


def _mkdir(dest: Path, relative: PurePosixPath, source: str) -> None:
    target = _target(dest, relative)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{source}: entry {relative.as_posix()!r} appears twice")
    target.mkdir(mode=0o755, exist_ok=True)


def _write(dest: Path, relative: PurePosixPath, stream: IO[bytes], budget: Budget, source: str) -> None:
    target = _target(dest, relative)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise ConfigError(f"{source}: entry {relative.as_posix()!r} appears twice") from None
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            budget.add(source, relative.as_posix(), len(chunk))
            digest.update(chunk)
            try:
                out.write(chunk)
            except OSError as exc:  # the work area is full or the file-size limit was hit
                raise ConfigError(f"{source}: cannot unpack {relative.as_posix()[:80]!r} ({exc.strerror}); "
                                  "make the submission smaller") from None
    os.chmod(target, 0o644)
    budget.digests[relative.as_posix()] = digest.hexdigest()


# -- folders -------------------------------------------------------------------------------------


def _copy_tree(source: Path, dest: Path, budget: Budget, label: str) -> None:
    for relative, entry in _walk(source, label):
        budget.entry(label, relative)
        name = checked_name(label, relative)
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            _mkdir(dest, name, label)
        elif stat.S_ISREG(info.st_mode):
            budget.declare(label, relative, info.st_size)
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            with os.fdopen(os.open(entry.path, flags), "rb") as handle:
                _write(dest, name, handle, budget, label)
        else:
            kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file or folder"
            raise ConfigError(f"{label}: {relative!r} is {kind}; a submission holds only files and folders")


def _walk(root: Path, label: str, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, os.DirEntry]]:
    if depth > MAX_DEPTH:
        raise ConfigError(f"{label}: nested more than {MAX_DEPTH} folders deep")
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        relative = f"{prefix}{entry.name}"
        yield relative, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), label, relative + "/", depth + 1)


# -- archives ------------------------------------------------------------------------------------


def _unzip(source: Path, dest: Path, budget: Budget, label: str) -> None:
    try:
        with zipfile.ZipFile(source) as zf:
            members = zf.infolist()
            if len(members) > budget.max_entries:
                raise ConfigError(f"{label}: {len(members):,} entries; a submission holds at most {budget.max_entries:,}")
            declared = 0
            for member in members:
                checked_name(label, member.filename)
                kind = stat.S_IFMT((member.external_attr >> 16) & 0xFFFF)  # 0: no Unix type recorded
                if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                    raise ConfigError(f"{label}: entry {member.filename[:80]!r} is a link or special file; not allowed")
                if member.flag_bits & 0x1:
                    raise ConfigError(f"{label}: entry {member.filename[:80]!r} is encrypted; not allowed")
                declared += member.file_size
            budget.declare(label, "the archive", declared)  # all declared sizes, before decompressing
            for member in members:
                budget.entry(label, member.filename)
                name = checked_name(label, member.filename)
                if member.is_dir():
                    _mkdir(dest, name, label)
                    continue
                with zf.open(member) as stream:
                    _write(dest, name, stream, budget, label)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, ValueError, OSError) as exc:
        raise ConfigError(f"{label}: corrupt or unsupported zip archive ({exc.__class__.__name__}: {str(exc)[:100]})") from None


def _untar(source: Path, dest: Path, budget: Budget, label: str) -> None:
    try:
        # Streaming mode: members are checked as they come, so a bomb stops at the first oversized one
        # without decompressing what follows it.
        with tarfile.open(source, mode="r|*") as tf:
            for member in tf:
                budget.entry(label, member.name)
                name = checked_name(label, member.name)
                if member.isdir():
                    _mkdir(dest, name, label)
                elif member.isreg():
                    budget.declare(label, member.name, member.size)
                    stream = tf.extractfile(member)
                    if stream is None:
                        raise ConfigError(f"{label}: entry {member.name[:80]!r} has no data")
                    _write(dest, name, stream, budget, label)
                else:
                    raise ConfigError(f"{label}: entry {member.name[:80]!r} is a link or special file; not allowed")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ConfigError(f"{label}: corrupt or unsupported tar archive ({exc.__class__.__name__}: {str(exc)[:100]})") from None


__all__ = ["ARCHIVE_SUFFIXES", "Budget", "archive_suffix", "checked_name", "unpack_submission"]
