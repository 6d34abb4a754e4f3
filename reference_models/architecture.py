"""The convolutional Gaussian encoder, deconvolutional decoder and FactorVAE discriminator.

These are the networks of disentanglement_lib's ``conv_encoder``, ``deconv_decoder`` and
``fc_discriminator`` (Locatello et al. 2019, Table 1 of Higgins et al. 2017 row 3, Kim & Mnih 2018
Appendix A), rewritten in PyTorch. TensorFlow's ``padding="same"`` is reproduced exactly: a 4x4
stride-2 convolution on an even size pads one pixel per side (PyTorch ``padding=1``), a 2x2 stride-2
one pads nothing, and a 4x4 stride-2 transposed convolution with ``padding=1`` doubles the size. The
spatial sizes are therefore 64 -> 32 -> 16 -> 8 -> 4 and back.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_LATENT = 10  # encoder.num_latent in unsupervised_study_v1/model_configs/shared.gin


class GaussianEncoder(nn.Module):
    """Images ``(N, C, 64, 64)`` in [0, 1] -> mean and log-variance ``(N, num_latent)`` of q(z|x)."""

    def __init__(self, num_channels: int = 1, num_latent: int = NUM_LATENT) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(num_channels, 32, kernel_size=4, stride=2, padding=1),  # 64 -> 32
            nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=4, stride=2, padding=1),  # 32 -> 16
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=2, stride=2),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=2, stride=2),  # 8 -> 4
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 256),
            nn.ReLU(),
        )
        self.mean = nn.Linear(256, num_latent)
        self.logvar = nn.Linear(256, num_latent)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.features(images)
        return self.mean(hidden), self.logvar(hidden)


class OutputDeconv(nn.ConvTranspose2d):
    """The decoder's last layer, a transposed convolution to the image's 1 or 3 channels.

    On CPU it runs ATen's GEMM + col2im kernel instead of oneDNN's, whose transposed convolution
    vectorises across output channels and is about 2x slower with so few of them (forward and backward
    of this layer at batch 64: 7.8 ms instead of 16.9 ms on one core). Parameters and their names are
    those of ``nn.ConvTranspose2d``, so checkpoints are unchanged; the output differs only in the order
    of floating-point summation. Other devices use the default kernel.
    """

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:  # noqa: A002 - nn.ConvTranspose2d's name
        if input.device.type != "cpu" or output_size is not None or self.groups != 1 or self.padding_mode != "zeros":
            return super().forward(input, output_size)
        return torch.ops.aten.slow_conv_transpose2d(
            input, self.weight, self.kernel_size, self.bias, self.stride, self.padding, self.output_padding, self.dilation
        )


class DeconvDecoder(nn.Module):
    """Latents ``(N, num_latent)`` -> Bernoulli logits ``(N, C, 64, 64)`` (dlib's ``deconv_decoder``)."""

    def __init__(self, num_channels: int = 1, num_latent: int = NUM_LATENT) -> None:
        super().__init__()
        self.dense = nn.Sequential(
            nn.Linear(num_latent, 256),
            nn.ReLU(),
            nn.Linear(256, 64 * 4 * 4),
            nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, kernel_size=4, stride=2, padding=1),  # 4 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1),  # 8 -> 16
            nn.ReLU(),
            nn.ConvTranspose2d(32, 32, kernel_size=4, stride=2, padding=1),  # 16 -> 32
            nn.ReLU(),
            OutputDeconv(32, num_channels, kernel_size=4, stride=2, padding=1),  # 32 -> 64
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden = self.dense(latents).reshape(-1, 64, 4, 4)
        return self.deconv(hidden)


class Discriminator(nn.Module):
    """FactorVAE's total-correlation discriminator: 6 dense layers of 1000 units, leaky ReLU 0.2.

    Returns logits ``(N, 2)``: column 0 scores "drawn from q(z)", column 1 "drawn from prod_j q(z_j)".
    The slope 0.2 is TensorFlow's ``tf.nn.leaky_relu`` default, which dlib uses.
    """

    def __init__(self, num_latent: int = NUM_LATENT, width: int = 1000, depth: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size_in = num_latent
        for _ in range(depth):
            layers += [nn.Linear(size_in, width), nn.LeakyReLU(0.2)]
            size_in = width
        layers.append(nn.Linear(size_in, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


class VAE(nn.Module):
    """Encoder plus decoder; the discriminator, when a variant needs one, is a separate module."""

    def __init__(self, num_channels: int = 1, num_latent: int = NUM_LATENT) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.num_latent = num_latent
        self.encoder = GaussianEncoder(num_channels, num_latent)
        self.decoder = DeconvDecoder(num_channels, num_latent)


def init_like_tensorflow(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, the initialisers of the ``tf.layers`` dlib builds on.

    PyTorch's default (Kaiming-uniform with a = sqrt(5)) gives other starting scales; matching TF keeps
    the trained models comparable with the published ones.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
