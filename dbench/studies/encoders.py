"""The encoders of a sweep: paths and globs expanded, each encoder's identity and metadata.

An encoder in a sweep is always a path (a Python file, a TorchScript file, a ``torch.export`` file or a
trained run folder), so that a job is plain data a worker on another machine can act on. Its identity
is the fingerprint :func:`dbench.encoders.load_encoder` gives it (the content hash of the file, or of a
run folder's ``encoder.pt``); it is computed here, in the sweep's client, without running the encoder:
TorchScript files and run folders are only hashed, a Python file is imported (its encoder may declare
a ``fingerprint`` of weights it loads from elsewhere, which its bytes do not show).

The metadata of an encoder are the ``meta`` of its sweep-file entry and, for a run folder written by
``dbench train``, the fields of its ``config.json``: ``model``, ``train_seed``, ``steps``,
``train_dataset``, ``train_batch_size``, ``finished`` and every hyperparameter by name.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbench.encoders.fingerprint import file_fingerprint
from dbench.encoders.loading import RUN_DIR_ENCODER_FILE
from dbench.errors import ConfigError, DbenchError
from dbench.studies.spec import EncoderEntry

#: The training configuration a run folder of ``dbench train`` carries.
RUN_CONFIG_FILE = "config.json"
#: Largest ``config.json`` read for metadata.
MAX_CONFIG_BYTES = 1 << 20
#: ``config.json`` keys -> metadata column (the rest of the file is provenance, not a study variable).
_CONFIG_COLUMNS = {
    "model": "model",
    "seed": "train_seed",
    "steps": "steps",
    "dataset": "train_dataset",
    "batch_size": "train_batch_size",
    "finished": "finished",
}


@dataclass(frozen=True)
class EncoderSource:
    """One encoder of the sweep: its absolute path, display name and metadata (plain data)."""

    path: str
    name: str
    meta: dict[str, Any] = field(default_factory=dict)


def encoder_name(path: str | os.PathLike[str]) -> str:
    """The name :func:`~dbench.encoders.load_encoder` gives a path: a run folder's name, else the file stem."""
    path = Path(path)
    return path.resolve().name if path.is_dir() else path.stem


def expand_entries(entries: list[EncoderEntry], *, warn: Callable[[str], None] | None = None) -> list[EncoderSource]:
    """Every path the entries name, globs expanded (sorted), each path once, in the order given.

    A glob that matches nothing is a :class:`ConfigError` (a typo would otherwise silently shrink the
    study); so is a path that does not exist. A run folder whose ``config.json`` cannot be read is
    still evaluated, without its metadata: ``warn(line)`` is told why.
    """
    seen: dict[str, EncoderSource] = {}
    for entry in entries:
        pattern = os.path.expanduser(entry.path)
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ConfigError(f"encoders: {entry.path!r} matches no file or folder; check the pattern")
        else:
            if not os.path.exists(pattern):
                raise ConfigError(f"encoders: {entry.path!r} does not exist; give a Python or TorchScript file "
                                  "or a run folder")
            matches = [pattern]
        for match in matches:
            absolute = os.path.abspath(match)
            if absolute not in seen:
                meta = {**source_metadata(absolute, warn), **entry.meta}
                seen[absolute] = EncoderSource(absolute, encoder_name(absolute), meta)
    return list(seen.values())


def encoder_fingerprint(path: str | os.PathLike[str]) -> str:
    """The fingerprint :func:`~dbench.encoders.load_encoder` gives ``path``, computed in the client.

    Raises :class:`~dbench.errors.EncoderError` when the encoder cannot be loaded (a run folder
    without ``encoder.pt``, a Python file that fails to import ...).
    """
    path = Path(path)
    if path.is_dir():
        encoder_file = path / RUN_DIR_ENCODER_FILE
        if encoder_file.is_file():
            return file_fingerprint(encoder_file)
    elif path.is_file() and path.suffix.lower() != ".py":
        return file_fingerprint(path)
    from dbench.encoders import load_encoder

    return load_encoder(path).fingerprint  # Python files; and the loader's own error for anything else


def fallback_fingerprint(path: str | os.PathLike[str]) -> str:
    """An identity for an encoder that cannot be loaded: the hash of its file (its folder's path otherwise)."""
    path = Path(path)
    target = path / RUN_DIR_ENCODER_FILE if path.is_dir() else path
    try:
        return file_fingerprint(target)
    except OSError:
        import hashlib

        return "path:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()


def run_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The study variables in a run folder's ``config.json`` (empty for anything else).

    A ``config.json`` that cannot be read as a JSON object is a one-line :class:`DbenchError`.
    """
    config_path = Path(path) / RUN_CONFIG_FILE
    if not config_path.is_file():
        return {}
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise DbenchError(f"{config_path}: over {MAX_CONFIG_BYTES} bytes; not a dbench train config")
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DbenchError(f"{config_path}: cannot read the run's training config ({str(exc).splitlines()[0]}); "
                          "fix or remove the file") from None
    if not isinstance(config, dict):
        raise DbenchError(f"{config_path}: not a JSON object; fix or remove the file")
    return config_metadata(config)


def config_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """The study variables of a ``dbench train`` configuration (a run folder's ``config.json``, or the copy
    a schema-2 result keeps in ``provenance.training.config``)."""
    meta: dict[str, Any] = {column: config[key] for key, column in _CONFIG_COLUMNS.items() if _plain(config.get(key))}
    hparams = config.get("hparams")
    if isinstance(hparams, dict):
        meta.update({str(k): v for k, v in hparams.items() if _plain(v) and str(k) not in meta})
    return meta


def source_metadata(path: str | os.PathLike[str], warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """:func:`run_metadata`, or nothing (and one line to ``warn``) when the config cannot be read."""
    try:
        return run_metadata(path)
    except DbenchError as exc:
        if warn is not None:
            warn(f"{exc} (evaluated without its metadata)")
        return {}


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


__all__ = [
    "RUN_CONFIG_FILE",
    "EncoderSource",
    "config_metadata",
    "encoder_fingerprint",
    "encoder_name",
    "expand_entries",
    "fallback_fingerprint",
    "run_metadata",
    "source_metadata",
]
