"""Where ``dbench evaluate`` writes its results: one file, one file per result, or a results folder.

``--out`` names either a JSON file or a folder:

* ``--out r.json`` (a name ending in ``.json``) with one result writes ``r.json``. With several
  results (several encoders, datasets or representations) one naming rule applies, and is printed:
  ``r.<dataset>-<representation>.json``, with ``r.<encoder>.<dataset>-<representation>.json`` when
  several encoders are evaluated.
* ``--out DIR`` (any other name; or ``--output-dir DIR``) lays results out as
  ``DIR/<encoder>/<protocol>/<dataset>-<representation>.json`` (mteb's and lm-eval's habit), where
  ``<protocol>`` is the protocol's name, or ``<name>-<first 8 hex digits of its hash>`` for a derived
  (``+custom``) protocol so that two different custom set-ups never overwrite each other. A result
  already there for the same encoder fingerprint and protocol hash, with status ``ok``, is finished
  work: it is skipped on a rerun unless ``--overwrite`` is given.

Names are made safe as file names (anything but letters, digits and ``._+-`` becomes ``_``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbench.errors import ConfigError
from dbench.evaluation.result import read_result

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str) -> str:
    """``text`` usable as one file-name part (never empty, never ``.`` or ``..``)."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "_"
    return name


def protocol_folder(record: Mapping[str, Any]) -> str:
    """The folder of a protocol's results: its name, plus its hash's start when it is derived."""
    name = safe_name(record["name"])
    return f"{name}-{record['hash'][:8]}" if record.get("base_hash") else name


def result_file_name(dataset: str, representation: str) -> str:
    """``<dataset>-<representation>.json``."""
    return f"{safe_name(dataset)}-{safe_name(representation)}.json"


@dataclass(frozen=True)
class OutputLayout:
    """Where the results of one ``dbench evaluate`` call go (see the module docstring).

    ``target`` is None when results are only printed. ``n_results`` and ``several_encoders`` describe
    the call, so one naming rule covers all of its results.
    """

    target: Path | None
    folder: bool
    n_results: int = 1
    several_encoders: bool = False

    @classmethod
    def from_arguments(cls, out: str | None, output_dir: str | None, *, n_results: int, several_encoders: bool) -> OutputLayout:
        """The layout of ``--out`` / ``--output-dir``; ConfigError when both are given."""
        if out and output_dir:
            raise ConfigError("--out and --output-dir both given; give one (a .json file, or a folder)")
        if output_dir:
            return cls(Path(output_dir), True, n_results, several_encoders)
        if out:
            folder = Path(out).suffix.lower() != ".json"
            return cls(Path(out), folder, n_results, several_encoders)
        return cls(None, False, n_results, several_encoders)

    def rule(self) -> str | None:
        """The naming rule in words, printed when it is not simply the given file; None otherwise."""
        if self.target is None:
            return None
        if self.folder:
            return f"results go to {self.target}/<encoder>/<protocol>/<dataset>-<representation>.json"
        if self.n_results == 1:
            return None
        stem, suffix = self.target.with_suffix(""), self.target.suffix
        middle = "<encoder>.<dataset>-<representation>" if self.several_encoders else "<dataset>-<representation>"
        return f"{self.n_results} results: --out {self.target} is written as {stem}.{middle}{suffix}, one file each"

    def path(self, encoder: str, dataset: str, representation: str, protocol: Mapping[str, Any]) -> Path | None:
        """The file of one result (None when results are not written)."""
        if self.target is None:
            return None
        if self.folder:
            return self.target / safe_name(encoder) / protocol_folder(protocol) / result_file_name(dataset, representation)
        if self.n_results == 1:
            return self.target
        parts = [safe_name(encoder)] if self.several_encoders else []
        parts.append(result_file_name(dataset, representation).removesuffix(".json"))
        return self.target.with_name(f"{self.target.stem}.{'.'.join(parts)}{self.target.suffix}")


def finished(path: Path, *, protocol_hash: str, fingerprint: str) -> bool:
    """Whether ``path`` holds a fully scored result of this encoder under this exact protocol."""
    if not path.is_file():
        return False
    try:
        result = read_result(path)
    except ConfigError:
        return False  # unreadable or invalid: evaluate again and replace it
    return result.status == "ok" and result.protocol.hash == protocol_hash and result.encoder.fingerprint == fingerprint


__all__ = ["OutputLayout", "finished", "protocol_folder", "result_file_name", "safe_name"]
