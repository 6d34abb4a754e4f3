"""Reference PyTorch VAE variants (disentanglement_lib's architecture and losses), trained from the CLI.

Importing this package is cheap: torch is imported only when a training, export or plotting function
is first used. ``MODEL_NAMES`` lists the variants without importing torch; ``MODELS`` (the registry of
:class:`reference_models.variants.Variant`) and the functions below are loaded on first access.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Registry names of the reference models, in the order of Locatello et al. (2019), plus the plain VAE.
MODEL_NAMES: tuple[str, ...] = (
    "vae",
    "beta_vae",
    "annealed_vae",
    "factor_vae",
    "beta_tcvae",
    "dip_vae_i",
    "dip_vae_ii",
)

# Public name -> module that defines it; resolved lazily so `import reference_models` stays torch-free.
_LAZY = {
    "MODELS": "reference_models.variants",
    "get_variant": "reference_models.variants",
    "train": "reference_models.training",
    "TrainResult": "reference_models.training",
    "export_encoder": "reference_models.export",
    "load_run": "reference_models.checkpoint",
    "latent_traversal": "reference_models.traversal",
}

__all__ = ["MODEL_NAMES"] + list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reference_models' has no attribute {name!r}")
