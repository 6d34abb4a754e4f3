"""Closed-form checks of the reference VAEs' loss terms (reference_models/losses.py)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reference_models import losses  # noqa: E402 - imports torch: only after the importorskip


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _correlated_posteriors(n: int, correlation: float, sigma: float, seed: int):
    """Posterior means drawn from N(0, [[1, r], [r, 1]]), a common std ``sigma``, and one sample each."""
    g = _generator(seed)
    chol = torch.linalg.cholesky(torch.tensor([[1.0, correlation], [correlation, 1.0]], dtype=torch.float64))
    mean = torch.randn((n, 2), generator=g, dtype=torch.float64) @ chol.T
    logvar = torch.full_like(mean, 2.0 * math.log(sigma))
    z = mean + sigma * torch.randn((n, 2), generator=g, dtype=torch.float64)
    return z, mean, logvar


def test_gaussian_kl_matches_torch_distributions():
    g = _generator(0)
    mean = torch.randn((32, 10), generator=g, dtype=torch.float64)
    logvar = torch.randn((32, 10), generator=g, dtype=torch.float64)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1).mean()
    assert torch.allclose(losses.gaussian_kl(mean, logvar), expected, rtol=1e-12)
    assert float(losses.gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3))) == 0.0


def test_bernoulli_loss_is_summed_binary_cross_entropy():
    g = _generator(1)
    images = torch.rand((3, 1, 4, 4), generator=g, dtype=torch.float64)
    logits = torch.randn((3, 1, 4, 4), generator=g, dtype=torch.float64)
    p = torch.sigmoid(logits)
    expected = -(images * torch.log(p) + (1 - images) * torch.log(1 - p)).reshape(3, -1).sum(dim=1)
    assert torch.allclose(losses.bernoulli_reconstruction_loss(images, logits), expected, rtol=1e-10)
    # Zero logits: every pixel costs log 2, whatever the image.
    assert torch.allclose(
        losses.bernoulli_reconstruction_loss(images, torch.zeros_like(logits)),
        torch.full((3,), 16 * math.log(2.0), dtype=torch.float64),
    )


def test_gaussian_log_density_matches_torch_normal():
    x, mean, logvar = torch.tensor([0.3, -1.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.5, -1.0])
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)
    assert torch.allclose(losses.gaussian_log_density(x, mean, logvar), expected)


@pytest.mark.parametrize("correlation", [0.0, 0.6, 0.9])
def test_minibatch_total_correlation_matches_gaussian_closed_form(correlation):
    # The aggregate posterior of the batch is ~N(0, C + sigma^2 I); its TC is -1/2 log det(corr).
    sigma = 0.3
    z, mean, logvar = _correlated_posteriors(3000, correlation, sigma, seed=2)
    effective = correlation / (1.0 + sigma**2)
    expected = -0.5 * math.log(1.0 - effective**2)
    estimate = float(losses.total_correlation(z, mean, logvar, num_components=z.shape[0]))
    assert estimate == pytest.approx(expected, abs=0.04)


def test_total_correlation_without_constants_is_dlib_offset():
    z, mean, logvar = _correlated_posteriors(64, 0.5, 0.5, seed=3)
    normalised = losses.total_correlation(z, mean, logvar, num_components=64 * 1000)
    constant_free = losses.total_correlation(z, mean, logvar)
    # dlib drops (D - 1) * log(batch_size * dataset_size); D = 2 here.
    assert float(normalised - constant_free) == pytest.approx(math.log(64 * 1000), rel=1e-12)


def test_kl_decomposition_sums_to_the_kl_estimate():
    z, mean, logvar = _correlated_posteriors(2000, 0.7, 0.4, seed=4)
    terms = losses.kl_decomposition(z, mean, logvar, num_components=z.shape[0])
    total = terms["index_code_mi"] + terms["total_correlation"] + terms["dimension_wise_kl"]
    assert float(total) == pytest.approx(float(terms["kl"]), abs=1e-9)
    # The Monte-Carlo KL agrees with the analytic one within sampling noise.
    assert float(terms["kl"]) == pytest.approx(float(losses.gaussian_kl(mean, logvar)), rel=0.05)
    assert float(terms["index_code_mi"]) > 0.0 and float(terms["total_correlation"]) > 0.0


def test_beta_tcvae_with_beta_one_is_the_plain_kl():
    z, mean, logvar = _correlated_posteriors(64, 0.7, 0.4, seed=5)
    kl = losses.gaussian_kl(mean, logvar)
    regularizer, tc = losses.beta_tcvae_regularizer(kl, z, mean, logvar, beta=1.0)
    assert float(regularizer) == float(kl)
    heavier, _ = losses.beta_tcvae_regularizer(kl, z, mean, logvar, beta=6.0)
    assert float(heavier) == pytest.approx(float(kl + 5.0 * tc), rel=1e-12)


def test_dip_penalty_on_a_known_covariance():
    covariance = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, -0.25], [0.0, -0.25, 0.5]], dtype=torch.float64)
    # Off-diagonal squares: 2 * (0.25 + 0.0625) = 0.625; diagonal deviations: 1 + 0 + 0.25 = 1.25.
    assert float(losses.dip_covariance_penalty(covariance, 3.0, 7.0)) == pytest.approx(3 * 0.625 + 7 * 1.25)
    assert float(losses.dip_covariance_penalty(torch.eye(4), 10.0, 100.0)) == 0.0


def test_dip_covariances_match_numpy():
    g = _generator(6)
    mean = torch.randn((50, 4), generator=g, dtype=torch.float64)
    logvar = torch.randn((50, 4), generator=g, dtype=torch.float64)
    kl = losses.gaussian_kl(mean, logvar)
    cov_mean = np.cov(mean.numpy(), rowvar=False, bias=True)
    assert np.allclose(losses.covariance_of_mean(mean).numpy(), cov_mean)
    reg_i, penalty_i = losses.dip_i_regularizer(kl, mean, 2.0, 20.0)
    expected_i = losses.dip_covariance_penalty(torch.from_numpy(cov_mean), 2.0, 20.0)
    assert float(penalty_i) == pytest.approx(float(expected_i)) and float(reg_i) == pytest.approx(float(kl + expected_i))
    _, penalty_ii = losses.dip_ii_regularizer(kl, mean, logvar, 2.0, 2.0)
    cov_z = cov_mean + np.diag(np.exp(logvar.numpy()).mean(axis=0))
    assert float(penalty_ii) == pytest.approx(float(losses.dip_covariance_penalty(torch.from_numpy(cov_z), 2.0, 2.0)))


def test_permute_dims_keeps_marginals_and_breaks_dependence():
    g = _generator(7)
    base = torch.randn((4000, 1), generator=g, dtype=torch.float64)
    z = torch.cat([base, base + 0.1 * torch.randn((4000, 1), generator=g, dtype=torch.float64), -base], dim=1)
    permuted = losses.permute_dims(z, _generator(8))
    assert torch.equal(torch.sort(permuted, dim=0).values, torch.sort(z, dim=0).values)
    correlation = np.corrcoef(permuted.numpy(), rowvar=False)
    assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.06
    assert np.corrcoef(z.numpy(), rowvar=False)[0, 1] > 0.99


def test_anneal_capacity_is_linear_then_flat():
    assert losses.anneal_capacity(25.0, 0, 100_000) == 0.0
    assert losses.anneal_capacity(25.0, 50_000, 100_000) == pytest.approx(12.5)
    assert losses.anneal_capacity(25.0, 300_000, 100_000) == 25.0
    kl = torch.tensor(10.0)
    assert float(losses.annealed_regularizer(kl, 12.5, 1000.0)) == pytest.approx(2500.0)


def test_factor_vae_discriminator_terms():
    undecided = torch.zeros((8, 2))
    assert float(losses.factor_vae_discriminator_loss(undecided, undecided)) == pytest.approx(math.log(2.0))
    confident_real = torch.tensor([[20.0, -20.0]]).repeat(8, 1)
    confident_fake = torch.tensor([[-20.0, 20.0]]).repeat(8, 1)
    # Clipping at 1e-6 bounds the loss below by -log(1 - 1e-6).
    assert float(losses.factor_vae_discriminator_loss(confident_real, confident_fake)) < 1e-5
    assert float(losses.factor_vae_tc(confident_real)) == pytest.approx(40.0)


def test_importing_reference_models_does_not_import_torch():
    code = "import sys, reference_models; print('torch' in sys.modules, len(reference_models.MODEL_NAMES))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "7"]
