"""Provenance a result can be cited with: when, how it was asked for, on what software and hardware.

* :func:`environment_info` -- the versions of every package that can change a number (read from
  ``importlib.metadata``: nothing is imported, so torch costs nothing when the run did not need it),
  Python, the platform, the CPU model and the GPU models (from the NVIDIA driver's ``/proc`` files or
  ``nvidia-smi``, never by importing torch or CuPy).
* :func:`provenance_info` -- the UTC time, the command line or Python call, the encoder file's
  SHA-256 and, for a trained reference-model run folder, its training configuration and step.

Both return plain JSON data; the result model stores them as ``environment`` and ``provenance``.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from dbench._json import file_sha256, read_json_bounded
from dbench.errors import ConfigError

#: Distributions whose versions a result records (None when not installed).
PACKAGES = ("dbench", "numpy", "scipy", "scikit-learn", "numba", "torch", "cupy-cuda12x", "cupy-cuda11x", "array-api-compat")

# The files of a trained reference-model run folder (written by ``dbench train``; dbench does not import
# the reference models, it only reads the folder).
_RUN_ENCODER_FILE = "encoder.pt"
_RUN_CONFIG_FILE = "config.json"


def package_versions() -> dict[str, str | None]:
    """``{distribution: version or None}`` for :data:`PACKAGES`, plus ``python``; nothing is imported."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if not name.startswith("cupy"):  # the CuPy builds are listed only when installed
                versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, ``sysctl`` on macOS, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown"


NVIDIA_PROC = Path("/proc/driver/nvidia/gpus")


@functools.lru_cache(maxsize=4)
def gpu_models(proc: Path = NVIDIA_PROC) -> tuple[str, ...]:
    """Models of the NVIDIA GPUs present, without importing torch or CuPy; empty when there are none.

    Read from the driver's ``<proc>/*/information`` files, else from ``nvidia-smi -L``.
    """
    models = []
    for info in sorted(Path(proc).glob("*/information")):
        try:
            for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model" and value.strip():
                    models.append(value.strip())
        except OSError:
            continue
    if models:
        return tuple(models)
    listing = _run(["nvidia-smi", "-L"]) if shutil.which("nvidia-smi") else None
    for line in (listing or "").splitlines():
        # "GPU 0: NVIDIA H200 (UUID: GPU-...)"
        name = line.partition(":")[2].split("(UUID")[0].strip()
        if name:
            models.append(name)
    return tuple(models)


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def environment_info() -> dict[str, Any]:
    """Versions and hardware that can change numbers (never imports torch or CuPy)."""
    versions = package_versions()
    info: dict[str, Any] = {
        "python": versions["python"],
        "platform": platform.platform(),
        # Kept at the top level as in schema 1 (numpy is always there: the metrics need it).
        "numpy": versions.get("numpy"),
        "versions": versions,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": list(gpu_models()),
    }
    torch = sys.modules.get("torch")  # already imported by a torch encoder: free to ask
    if torch is not None:
        info["cuda_available"] = bool(torch.cuda.is_available())
    return info


def utc_now() -> str:
    """The current time in UTC, ISO 8601 to the second (``2025-01-31T12:00:00Z``)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def encoder_file_info(spec: Any) -> dict[str, Any] | None:
    """``{"path", "sha256", "bytes"}`` of the file an encoder was loaded from (a run folder's encoder.pt).

    ``None`` for an in-memory encoder, or a path that is not a readable file.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return None
    path = Path(spec)
    if path.is_dir():
        path = path / _RUN_ENCODER_FILE
    if not path.is_file():
        return None
    try:
        return {"path": str(path.resolve()), "sha256": file_sha256(path), "bytes": path.stat().st_size}
    except OSError:
        return None


#: A run's config.json is a few kilobytes; a bigger one is not copied into results.
_MAX_CONFIG_BYTES = 256 << 10


def training_info(spec: Any) -> dict[str, Any] | None:
    """For a trained run folder: ``{"config": config.json, "step": the step its encoder.pt was exported at}``.

    ``dbench train`` exports ``encoder.pt`` when it finishes, at step ``config["steps"]``; an unfinished
    run records ``step: None``. ``None`` when ``spec`` is not a folder with a readable ``config.json``.
    """
    if not isinstance(spec, (str, os.PathLike)) or not Path(spec).is_dir():
        return None
    try:  # copied into every result: a huge or deep one would make results unreadable
        config = read_json_bounded(Path(spec) / _RUN_CONFIG_FILE, max_bytes=_MAX_CONFIG_BYTES)
    except ConfigError:  # missing, unreadable, too big, too deep or not JSON
        return None
    if not isinstance(config, dict):
        return None
    step = config.get("steps") if config.get("finished") else None
    return {"config": config, "step": step if isinstance(step, int) else None}


def provenance_info(*, invocation: str | None, encoder_spec: Any) -> dict[str, Any]:
    """When and how an evaluation was run and which encoder file it scored (plain JSON data)."""
    return {
        "created_utc": utc_now(),
        "invocation": invocation,
        "encoder_file": encoder_file_info(encoder_spec),
        "training": training_info(encoder_spec),
    }


__all__ = [
    "PACKAGES",
    "cpu_model",
    "encoder_file_info",
    "environment_info",
    "gpu_models",
    "package_versions",
    "provenance_info",
    "training_info",
    "utc_now",
]
