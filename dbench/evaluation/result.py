"""The versioned result of one evaluation, and writing it atomically."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import dbench

SCHEMA_VERSION = 1


@dataclass
class EvaluationResult:
    """Everything needed to reproduce and compare one evaluation (one dataset, one representation).

    ``scores`` maps metric -> key -> value; with several seeds it holds the mean over seeds,
    ``scores_std`` the standard deviation and ``per_seed`` the individual runs. ``errors`` maps a
    metric that could not be scored to its one-line reason (the other metrics are still reported).
    """

    dataset: str
    representation: str
    seeds: list[int]
    backend: str
    protocol: dict[str, Any]
    encoder: dict[str, Any]
    metric_params: dict[str, dict[str, Any]]
    scores: dict[str, dict[str, float]]
    seconds: dict[str, float]
    n_encoded: int
    scores_std: dict[str, dict[str, float]] | None = None
    per_seed: list[dict[str, Any]] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    submission: dict[str, Any] | None = None
    baseline: bool = False
    environment: dict[str, Any] = field(default_factory=lambda: environment_info())
    # Arrays for plots (e.g. DCI's importance matrix); kept in memory, never written to the JSON.
    artifacts: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    dbench_version: str = dbench.__version__
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("artifacts")
        return _jsonable(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvaluationResult":
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"result has schema_version {data.get('schema_version')!r}; this dbench reads version {SCHEMA_VERSION}"
            )
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"result has unknown keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON atomically: a killed run never leaves a half-written file."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike) -> "EvaluationResult":
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def environment_info() -> dict[str, Any]:
    """Versions and hardware that can change numbers (torch only if already imported: never import it here)."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    for name in ("scipy", "sklearn", "torch", "cupy"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "unknown")
    torch = sys.modules.get("torch")
    if torch is not None:
        info["cuda_available"] = bool(torch.cuda.is_available())
    return info


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
