"""Run-directory files: the training checkpoint (written atomically) and config.json.

A run directory holds ``config.json`` (what was trained), ``checkpoint.pt`` (model, optimiser and RNG
states plus the step, enough to resume bit-for-bit), ``losses.csv`` and ``encoder.pt`` (TorchScript).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dbench._json import write_atomic
from dbench.errors import DbenchError

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
LOSSES_FILE = "losses.csv"
ENCODER_FILE = "encoder.pt"
CHECKPOINT_FORMAT = "reference_models.checkpoint/1"


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it over ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one. The file gets the
    permissions ``open()`` would give it (the umask is honoured), so colleagues can read a run.
    """
    write_atomic(path, write)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint dict (see :func:`load_checkpoint`) atomically."""
    write_atomically(path, lambda tmp: torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp))


def load_checkpoint(path: Path, *, expected_model: str | None = None) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; DbenchError if it is corrupt or belongs to another model."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DbenchError(f"no checkpoint at {path}; train a model there first with `dbench train`") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a truncated or foreign file
        raise DbenchError(
            f"checkpoint {path} is truncated or corrupt ({type(exc).__name__}); train again with --restart (or delete it)"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DbenchError(f"{path} is not a reference_models checkpoint; use another --out folder (or --restart to replace it)")
    if expected_model is not None and payload.get("model") != expected_model:
        raise DbenchError(
            f"checkpoint {path} is from model {payload.get('model')!r}, not {expected_model!r}; "
            "use another --out directory"
        )
    return payload


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config.json`` atomically (sorted keys, human-readable)."""
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_atomically(run_dir / CONFIG_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def run_folder(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir`` as a Path; DbenchError (one line) when it is a file or does not exist."""
    path = Path(run_dir)
    if path.is_dir():
        return path
    what = "a file" if path.exists() else "not there"
    raise DbenchError(
        f"{path} is not a run folder ({what}); pass the folder that `dbench train --out` wrote "
        f"(it holds {CONFIG_FILE} and {ENCODER_FILE})"
    )


def read_config(run_dir: Path) -> dict[str, Any]:
    """Read ``config.json`` of a run directory; DbenchError when it is missing or malformed."""
    path = run_folder(run_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DbenchError(
            f"{run_dir} is not a run folder (no {CONFIG_FILE}); pass the folder `dbench train --out` wrote"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise DbenchError(f"cannot read {path} ({reason}); retrain with `dbench train --restart` if it is damaged") from None
    if not isinstance(config, dict) or "model" not in config:
        raise DbenchError(f"{path} has no 'model' entry; it was not written by `dbench train`")
    return config


def load_run(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], torch.nn.Module]:
    """The config and the trained VAE (encoder + decoder, CPU, eval mode) of a run directory."""
    from reference_models.architecture import VAE
    from reference_models.variants import get_variant

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    get_variant(config["model"])
    payload = load_checkpoint(run_dir / CHECKPOINT_FILE, expected_model=config["model"])
    model = VAE(num_channels=int(config["num_channels"]), num_latent=int(config["num_latent"]))
    model.load_state_dict(payload["model_state"])
    return config, model.eval()
