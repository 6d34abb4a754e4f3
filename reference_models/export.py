"""TorchScript export of a trained encoder: ``images (N, C, 64, 64) float32 in [0, 1] -> (mean, logvar)``.

The TorchScript file needs only torch to load (no reference_models code), so dbench's encoder loader
can read ``encoder.pt`` from a run directory and choose the mean or a sample as the representation.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch

from reference_models.architecture import GaussianEncoder
from reference_models.checkpoint import write_atomically


def export_encoder(encoder: GaussianEncoder, path: str | os.PathLike[str]) -> Path:
    """Script a CPU copy of ``encoder`` (eval mode, standard weight layout) and save it atomically at ``path``.

    Training keeps the encoder's weights channels-last on CPU; the exported copy is converted back to
    the default layout, so the file does not depend on how it was trained.
    """
    path = Path(path)
    # torch >= 2.10 marks TorchScript deprecated, but it is still the one self-contained format that
    # dbench's encoder loader reads without the defining code; the warning is not actionable here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(copy.deepcopy(encoder).cpu().to(memory_format=torch.contiguous_format).eval())
        write_atomically(path, lambda tmp: torch.jit.save(scripted, str(tmp)))
    return path


def load_exported_encoder(path: str | os.PathLike[str]) -> torch.jit.ScriptModule:
    """Load an exported encoder onto the CPU (eval mode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()
