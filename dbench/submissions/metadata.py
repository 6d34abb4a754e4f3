"""A submission: a folder or archive with a small metadata file and exactly one encoder artifact."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbench.errors import ConfigError
from dbench.evaluation.result import CODE_URL_PATTERN

METADATA_FILES = ("submission.yaml", "submission.yml", "submission.json")
# Artifact file name -> kind. Exactly one must be present.
ARTIFACTS = {
    "encoder.pt": "torchscript",
    "encoder.ts": "torchscript",
    "encoder.onnx": "onnx",
    "codes.npz": "codes",
    "encoder.py": "python",
}


class SubmissionMeta(BaseModel):
    """The metadata file: who submitted what."""

    model_config = ConfigDict(extra="forbid")

    name: str
    team: str
    description: str = ""
    code_url: str = Field(default="", pattern=CODE_URL_PATTERN)  # what a result file accepts


@dataclass(frozen=True)
class Submission:
    """A submission unpacked on disk."""

    source: Path
    root: Path
    meta: SubmissionMeta
    artifact: Path
    kind: str

    @property
    def fingerprint(self) -> str:
        """sha256 of the artifact's bytes (what is scored)."""
        digest = hashlib.sha256()
        with open(self.artifact, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


def open_submission(path: str | Path, workdir: str | Path | None = None) -> Submission:
    """Read a submission folder or archive (.zip, .tar, .tar.gz, .tgz); one-line ConfigError if malformed."""
    source = Path(path)
    if not source.exists():
        raise ConfigError(f"{source}: no such submission folder or archive")
    root = source if source.is_dir() else _unpack(source, Path(workdir or tempfile.mkdtemp(prefix="dbench-sub-")))
    meta_files = [root / n for n in METADATA_FILES if (root / n).is_file()]
    if not meta_files:
        raise ConfigError(f"{source}: no metadata file; add submission.yaml with name, team, description, code_url")
    try:
        raw = yaml.safe_load(meta_files[0].read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{meta_files[0]}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{meta_files[0]}: must be a mapping with name, team, description, code_url")
    unknown = sorted(set(map(str, raw)) - set(SubmissionMeta.model_fields))
    if unknown:
        raise ConfigError(f"{meta_files[0]}: unknown key {unknown[0]!r} (allowed keys: name, team, description, code_url)")
    try:
        meta = SubmissionMeta(**raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(
            f"{meta_files[0]}: {where}: {err['msg'].lower()} (allowed keys: name, team, description, code_url)"
        ) from None
    found = [root / n for n in ARTIFACTS if (root / n).is_file()]
    if len(found) != 1:
        names = ", ".join(ARTIFACTS)
        what = "no encoder artifact" if not found else f"{len(found)} artifacts ({', '.join(p.name for p in found)})"
        raise ConfigError(f"{source}: {what}; a submission holds exactly one of {names}")
    return Submission(source=source, root=root, meta=meta, artifact=found[0], kind=ARTIFACTS[found[0].name])


def _unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    _check_member(archive, member)
                zf.extractall(dest)
        elif name.endswith((".tar", ".tar.gz", ".tgz")):
            with tarfile.open(archive) as tf:
                for info in tf.getmembers():
                    _check_member(archive, info.name)
                    if not (info.isfile() or info.isdir()):
                        raise ConfigError(f"{archive}: archive member {info.name!r} is a link or device; not allowed")
                tf.extractall(dest)
        else:
            raise ConfigError(f"{archive}: not a folder, .zip or .tar(.gz) archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ConfigError(f"{archive}: corrupt archive ({exc.__class__.__name__})") from None
    entries = [p for p in dest.iterdir()]
    # An archive of a single folder is that folder.
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def _check_member(archive: Path, member: str) -> None:
    if member.startswith("/") or ".." in Path(member).parts:
        raise ConfigError(f"{archive}: archive member {member!r} points outside the archive; not allowed")


def cleanup(submission: Submission) -> None:
    """Remove an unpacked archive's temporary folder."""
    if submission.root != submission.source and submission.source.is_file():
        shutil.rmtree(submission.root, ignore_errors=True)
