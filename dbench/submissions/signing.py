"""Signing result files: an HMAC-SHA256 of each file's bytes, in a ``<file>.sig`` beside it.

The key never enters a sandbox (the sandbox's environment is cleared and the config folder is not
mounted). It comes from, in order:

1. ``DBENCH_SCORER_KEY`` (at least 32 characters; e.g. ``python -c "import secrets; print(secrets.token_hex(32))"``);
2. the key file ``$DBENCH_CONFIG_DIR/scorer.key`` (default ``$XDG_CONFIG_HOME/dbench`` or
   ``~/.config/dbench``), created by the scorer on first use with 32 random bytes, mode 0600, in a
   folder of mode 0700. A key file readable by others, or not owned by the user, is refused.

A signature is ``{"format": "dbench-signature", "version": 1, "algorithm": "HMAC-SHA256",
"key_id": ..., "hmac": ...}``; ``key_id`` (the first 16 hex digits of the key's SHA-256) says which key
signed without revealing it. Any edit of the result file's bytes breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from dbench._json import canonical_json, loads_bounded
from dbench.errors import ConfigError

KEY_ENV = "DBENCH_SCORER_KEY"
CONFIG_ENV = "DBENCH_CONFIG_DIR"
SUFFIX = ".sig"
MIN_KEY_CHARS = 32
_FORMAT = {"format": "dbench-signature", "version": 1, "algorithm": "HMAC-SHA256"}


def key_file() -> Path:
    """Where the scorer's key file lives (it may not exist yet)."""
    folder = os.environ.get(CONFIG_ENV) or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config"), "dbench")
    return Path(folder) / "scorer.key"


def load_key(*, create: bool = False) -> bytes | None:
    """The scorer's key; with ``create`` a new key file is made when there is none (else None)."""
    value = os.environ.get(KEY_ENV)
    if value is not None:
        if len(value) < MIN_KEY_CHARS:
            raise ConfigError(f"{KEY_ENV} is {len(value)} characters; use at least {MIN_KEY_CHARS} random characters, "
                              'e.g. python -c "import secrets; print(secrets.token_hex(32))"')
        return value.encode()
    path = key_file()
    if not path.exists() and not path.is_symlink():
        if not create:
            return None
        _create_key_file(path)
    return _read_key_file(path)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return  # another scorer made it meanwhile
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(secrets.token_hex(32) + "\n")


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scorer key ({exc.strerror}); fix it or set {KEY_ENV}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ConfigError(f"{path}: the scorer key must be a file of yours that only you can read "
                              f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
        text = handle.read(4096).decode("ascii", "replace").strip()
    if len(text) < MIN_KEY_CHARS:
        raise ConfigError(f"{path}: the scorer key is shorter than {MIN_KEY_CHARS} characters; delete the file to make a new one")
    return text.encode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def signature_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def signature_text(data: bytes, key: bytes) -> str:
    """The signature file's content for a result file's bytes."""
    mac = hmac.new(key, data, hashlib.sha256).hexdigest()
    return canonical_json({**_FORMAT, "key_id": key_id(key), "hmac": mac}) + "\n"


def verify(data: bytes, path: str | os.PathLike[str], key: bytes) -> str | None:
    """Why the result file ``path`` (whose bytes are ``data``) is not validly signed with ``key``; None if it is."""
    sig = signature_path(path)
    try:
        fd = os.open(sig, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return f"unsigned (no {sig.name}); only results written by `dbench score` are accepted"
    except OSError as exc:
        return f"cannot read its signature {sig.name} ({exc.strerror})"
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return f"its signature {sig.name} is not a regular file"
        raw = handle.read(4097)
    try:
        record = loads_bounded(raw, source=sig.name, max_bytes=4096, max_depth=2)
    except ConfigError as exc:
        return f"its signature is unreadable ({exc})"
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in _FORMAT.items()):
        return f"{sig.name} is not a dbench signature"
    if record.get("key_id") != key_id(key):
        return "signed with another scorer key (or the signature was forged)"
    expected = hmac.new(key, data, hashlib.sha256).hexdigest()
    if not isinstance(record.get("hmac"), str) or not hmac.compare_digest(record["hmac"], expected):
        return "its signature does not match its content (the file was edited after scoring)"
    return None


__all__ = ["CONFIG_ENV", "KEY_ENV", "SUFFIX", "key_file", "key_id", "load_key", "signature_path", "signature_text", "verify"]
