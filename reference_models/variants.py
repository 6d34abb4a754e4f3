"""The registry of VAE variants: each one's regulariser and its default hyperparameters.

Every variant shares the architecture and the Bernoulli reconstruction loss; it differs only in the
regulariser added to the reconstruction loss (dlib's ``BaseVAE.regularizer``). Defaults come from
disentanglement_lib's ``unsupervised_study_v1`` (Locatello et al. 2019): where the study sweeps six
values, the default is the third one (the lower median), e.g. beta = 4 from [1, 2, 4, 6, 8, 16];
values the study holds fixed are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from dbench.errors import ConfigError, DbenchError
from reference_models import MODEL_NAMES, losses


@dataclass(frozen=True)
class RegularizerInputs:
    """What a regulariser may look at for one batch.

    ``discriminator_logits`` are the FactorVAE discriminator's logits on ``z`` (None for other variants).
    """

    kl: torch.Tensor
    z: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    step: int
    discriminator_logits: torch.Tensor | None = None


#: Extra loss terms to log: detached scalar tensors (read together once per step) or plain floats.
Terms = dict[str, "torch.Tensor | float"]
Regularizer = Callable[[RegularizerInputs, Mapping[str, Any]], tuple[torch.Tensor, Terms]]


@dataclass(frozen=True)
class Variant:
    """One VAE variant: a registry name, its regulariser, default hyperparameters and the paper."""

    name: str
    regularizer: Regularizer
    defaults: Mapping[str, float | int] = field(default_factory=dict)
    extra_terms: tuple[str, ...] = ()
    adversarial: bool = False  # trains a total-correlation discriminator alongside (FactorVAE)
    reference: str = ""

    def resolve_hparams(self, overrides: Mapping[str, Any] | None) -> dict[str, float | int]:
        """Defaults updated by ``overrides``; unknown keys and non-numbers raise ConfigError."""
        resolved: dict[str, float | int] = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults)) or "none"
                raise ConfigError(f"unknown hyperparameter {key!r} for model {self.name!r}; known: {known}")
            resolved[key] = _coerce(key, value, type(self.defaults[key]))
        return resolved


def _coerce(key: str, value: Any, kind: type) -> float | int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"hyperparameter {key!r} must be a number; got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise ConfigError(f"hyperparameter {key!r} must be an integer; got {value!r}")
        return int(number)
    return number


def _vae(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    return inputs.kl, {}


def _beta_vae(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    return hp["beta"] * inputs.kl, {}


def _annealed_vae(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    capacity = losses.anneal_capacity(hp["c_max"], inputs.step, hp["iteration_threshold"])
    return losses.annealed_regularizer(inputs.kl, capacity, hp["gamma"]), {"capacity": capacity}


def _factor_vae(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    assert inputs.discriminator_logits is not None, "FactorVAE needs the discriminator's logits"
    tc = losses.factor_vae_tc(inputs.discriminator_logits)
    return inputs.kl + hp["gamma"] * tc, {"tc_estimate": tc.detach()}


def _beta_tcvae(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    reg, tc = losses.beta_tcvae_regularizer(inputs.kl, inputs.z, inputs.mean, inputs.logvar, hp["beta"])
    return reg, {"tc_estimate": tc.detach()}


def _dip_vae_i(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    lambda_d = hp["lambda_d_factor"] * hp["lambda_od"]
    reg, penalty = losses.dip_i_regularizer(inputs.kl, inputs.mean, hp["lambda_od"], lambda_d)
    return reg, {"dip_penalty": penalty.detach()}


def _dip_vae_ii(inputs: RegularizerInputs, hp: Mapping[str, Any]) -> tuple[torch.Tensor, Terms]:
    lambda_d = hp["lambda_d_factor"] * hp["lambda_od"]
    reg, penalty = losses.dip_ii_regularizer(inputs.kl, inputs.mean, inputs.logvar, hp["lambda_od"], lambda_d)
    return reg, {"dip_penalty": penalty.detach()}


_VARIANTS = (
    Variant("vae", _vae, reference="Kingma & Welling 2014, Auto-Encoding Variational Bayes"),
    Variant(
        "beta_vae",
        _beta_vae,
        defaults={"beta": 4.0},  # sweep [1, 2, 4, 6, 8, 16]
        reference="Higgins et al. 2017, beta-VAE (Eq. 4)",
    ),
    Variant(
        "annealed_vae",
        _annealed_vae,
        # c_max sweep [5, 10, 25, 50, 75, 100]; gamma and iteration_threshold fixed in the study.
        defaults={"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100_000},
        extra_terms=("capacity",),
        reference="Burgess et al. 2018, Understanding disentangling in beta-VAE (Eq. 8)",
    ),
    Variant(
        "factor_vae",
        _factor_vae,
        defaults={"gamma": 30.0},  # sweep [10, 20, 30, 40, 50, 100]
        extra_terms=("tc_estimate", "discriminator_loss"),
        adversarial=True,
        reference="Kim & Mnih 2018, Disentangling by Factorising (Eq. 2)",
    ),
    Variant(
        "beta_tcvae",
        _beta_tcvae,
        defaults={"beta": 4.0},  # sweep [1, 2, 4, 6, 8, 10]
        extra_terms=("tc_estimate",),
        reference="Chen et al. 2018, Isolating Sources of Disentanglement in VAEs (Eq. 4, alpha = gamma = 1)",
    ),
    Variant(
        "dip_vae_i",
        _dip_vae_i,
        defaults={"lambda_od": 5.0, "lambda_d_factor": 10.0},  # lambda_od sweep [1, 2, 5, 10, 20, 50]
        extra_terms=("dip_penalty",),
        reference="Kumar et al. 2018, DIP-VAE (Eq. 6)",
    ),
    Variant(
        "dip_vae_ii",
        _dip_vae_ii,
        defaults={"lambda_od": 5.0, "lambda_d_factor": 1.0},  # lambda_od sweep [1, 2, 5, 10, 20, 50]
        extra_terms=("dip_penalty",),
        reference="Kumar et al. 2018, DIP-VAE (Eq. 7)",
    ),
)

#: Registry name -> Variant.
MODELS: dict[str, Variant] = {variant.name: variant for variant in _VARIANTS}
assert tuple(MODELS) == MODEL_NAMES, "reference_models.MODEL_NAMES must list the registry in order"


def get_variant(name: str) -> Variant:
    """The variant registered as ``name``; DbenchError naming the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise DbenchError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
