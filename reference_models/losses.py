"""Loss terms of the VAE variants as small pure torch functions.

Every function maps tensors to tensors and has no state, so each term can be checked against a closed
form. Conventions follow disentanglement_lib (Locatello et al. 2019, ``methods/unsupervised/vae.py``):
per-sample sums over pixels / latents, then a mean over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_reconstruction_loss(images: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Per-sample Bernoulli negative log-likelihood ``(N,)``, summed over pixels.

    ``-sum_p [x_p log sigmoid(l_p) + (1 - x_p) log(1 - sigmoid(l_p))]`` computed from logits in the
    numerically stable form (dlib's ``bernoulli_loss`` with ``activation="logits"`` and
    ``subtract_true_image_entropy=False``). Grey pixels in [0, 1] are allowed as soft targets.
    """
    per_pixel = F.binary_cross_entropy_with_logits(logits, images, reduction="none")
    return per_pixel.reshape(per_pixel.shape[0], -1).sum(dim=1)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Batch mean of KL(N(mean, diag(exp(logvar))) || N(0, I)), summed over latents (a scalar).

    ``0.5 * sum_j (mean_j^2 + exp(logvar_j) - logvar_j - 1)`` (Kingma & Welling 2014, Appendix B).
    """
    return 0.5 * (mean.square() + logvar.exp() - logvar - 1.0).sum(dim=1).mean()


def sample_gaussian(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Reparameterised sample ``mean + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` from ``generator``."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * eps


def gaussian_log_density(samples: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(samples; mean, exp(logvar)) (broadcasting; no sum over dimensions)."""
    diff = samples - mean
    return -0.5 * (diff.square() * torch.exp(-logvar) + logvar + _LOG_2PI)


def anneal_capacity(c_max: float, step: int, iteration_threshold: int) -> float:
    """Capacity ``C = min(c_max, c_max * step / iteration_threshold)``, linear from 0 (dlib's ``anneal``)."""
    return min(float(c_max), float(c_max) * float(step) / float(iteration_threshold))


def annealed_regularizer(kl: torch.Tensor, capacity: float, gamma: float) -> torch.Tensor:
    """``gamma * |KL - C|``: Eq. 8 of Burgess et al. 2018, "Understanding disentangling in beta-VAE"."""
    return gamma * torch.abs(kl - capacity)


def _pairwise_log_q(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log q(z_j,l | x_i)`` for every pair of batch items: ``(N_j, N_i, D)``."""
    return gaussian_log_density(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))


def _aggregate_log_densities(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, num_components: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minibatch estimates of ``log q(z_j)`` and ``sum_l log q(z_j,l)`` (each ``(N,)``).

    q(z) is the aggregate posterior, a mixture of the batch's posteriors normalised by
    ``num_components``; ``None`` drops the ``-log num_components`` constants as dlib does.
    """
    log_q_pairs = _pairwise_log_q(z, mean, logvar)
    log_qz = torch.logsumexp(log_q_pairs.sum(dim=2), dim=1)
    log_qz_marginals = torch.logsumexp(log_q_pairs, dim=1)  # (N, D)
    if num_components is not None:
        log_norm = math.log(num_components)
        log_qz = log_qz - log_norm
        log_qz_marginals = log_qz_marginals - log_norm
    return log_qz, log_qz_marginals.sum(dim=1)


def total_correlation(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, *, num_components: float | None = None
) -> torch.Tensor:
    """Minibatch-weighted-sampling estimate of the total correlation ``KL(q(z) || prod_l q(z_l))``.

    Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", Section 3 / Appendix C.1:
    ``E_j[log q(z_j) - sum_l log q(z_j,l)]`` with each aggregate density replaced by the batch mixture
    ``log sum_i q(z_j | x_i) - log num_components``. With ``num_components=None`` the constant
    ``(D - 1) * log num_components`` is dropped (dlib's ``total_correlation``; gradients are the same).
    Pass ``batch_size * dataset_size`` for Chen et al.'s normalisation, or the batch size when the batch
    itself is the population.
    """
    log_qz, log_prod_qz = _aggregate_log_densities(z, mean, logvar, num_components)
    return (log_qz - log_prod_qz).mean()


def kl_decomposition(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, *, num_components: float
) -> dict[str, torch.Tensor]:
    """ELBO KL-term decomposition of Chen et al. 2018 (Eq. 2), each term a batch-mean scalar.

    ``index_code_mi = E[log q(z|x) - log q(z)]``, ``total_correlation = E[log q(z) - sum_l log q(z_l)]``,
    ``dimension_wise_kl = E[sum_l log q(z_l) - log p(z)]`` and ``kl = E[log q(z|x) - log p(z)]``, the
    single-sample Monte-Carlo KL whose value the three terms sum to.
    """
    log_qz, log_prod_qz = _aggregate_log_densities(z, mean, logvar, num_components)
    log_qz_given_x = gaussian_log_density(z, mean, logvar).sum(dim=1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    return {
        "index_code_mi": (log_qz_given_x - log_qz).mean(),
        "total_correlation": (log_qz - log_prod_qz).mean(),
        "dimension_wise_kl": (log_prod_qz - log_pz).mean(),
        "kl": (log_qz_given_x - log_pz).mean(),
    }


def beta_tcvae_regularizer(
    kl: torch.Tensor, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """β-TCVAE regulariser ``KL + (beta - 1) * TC`` and the TC estimate.

    Chen et al. 2018 Eq. 4 with alpha = gamma = 1 equals the ELBO plus ``(beta - 1) * TC``; this is
    dlib's ``BetaTCVAE.regularizer`` (analytic KL, constant-free minibatch-weighted TC).
    """
    tc = total_correlation(z, mean, logvar)
    return kl + (beta - 1.0) * tc, tc


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each latent column independently across the batch (Kim & Mnih 2018, Algorithm 1).

    Every column keeps its multiset of values (so each marginal q(z_j) is kept) while the dependence
    between columns is broken: the result is a sample of ``prod_j q(z_j)``.
    """
    n, dims = z.shape
    order = torch.argsort(torch.rand((n, dims), generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, order)


def factor_vae_tc(logits_real: torch.Tensor) -> torch.Tensor:
    """Density-ratio estimate of TC: ``E[logit_0 - logit_1]`` on codes from q(z) (Kim & Mnih 2018, Eq. 3)."""
    return (logits_real[:, 0] - logits_real[:, 1]).mean()


def factor_vae_discriminator_loss(logits_real: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    """Discriminator cross-entropy ``-(0.5 E log D(z) + 0.5 E log(1 - D(z_perm)))`` to minimise.

    Probabilities are clipped to [1e-6, 1 - 1e-6] before the log, as dlib's ``make_discriminator``.
    """
    probs_real = torch.softmax(logits_real, dim=1).clamp(1e-6, 1.0 - 1e-6)
    probs_permuted = torch.softmax(logits_permuted, dim=1).clamp(1e-6, 1.0 - 1e-6)
    return -(0.5 * torch.log(probs_real[:, 0]).mean() + 0.5 * torch.log(probs_permuted[:, 1]).mean())


def covariance_of_mean(mean: torch.Tensor) -> torch.Tensor:
    """Batch covariance ``E[mu mu^T] - E[mu] E[mu]^T`` of the encoder means ``(D, D)`` (biased, 1/N)."""
    centred = mean - mean.mean(dim=0, keepdim=True)
    return centred.T @ centred / mean.shape[0]


def dip_covariance_penalty(covariance: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """``lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2``: DIP-VAE's deviation from I.

    Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
    Observations", Eq. 6 and 7.
    """
    diagonal = torch.diagonal(covariance)
    off_diagonal = covariance - torch.diag(diagonal)
    return lambda_od * off_diagonal.square().sum() + lambda_d * (diagonal - 1.0).square().sum()


def dip_i_regularizer(
    kl: torch.Tensor, mean: torch.Tensor, lambda_od: float, lambda_d: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DIP-VAE-I: ``KL + penalty(Cov[mu(x)])`` (Kumar et al. 2018, Eq. 6); also returns the penalty."""
    penalty = dip_covariance_penalty(covariance_of_mean(mean), lambda_od, lambda_d)
    return kl + penalty, penalty


def dip_ii_regularizer(
    kl: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, lambda_od: float, lambda_d: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """DIP-VAE-II: ``KL + penalty(E[diag exp(logvar)] + Cov[mu(x)])``, the covariance of q(z) (Eq. 7)."""
    covariance = torch.diag(logvar.exp().mean(dim=0)) + covariance_of_mean(mean)
    penalty = dip_covariance_penalty(covariance, lambda_od, lambda_d)
    return kl + penalty, penalty
