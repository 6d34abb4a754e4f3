"""An untrained convolutional encoder in PyTorch: disentanglement_lib's ``conv_encoder`` architecture.

The layers follow ``conv_encoder`` in disentanglement_lib (``methods/shared/architectures.py``; row 3
of Table 1 in Higgins et al. 2017, beta-VAE): four ReLU convolutions (32 4x4 stride 2, 32 4x4
stride 2, 64 2x2 stride 2, 64 2x2 stride 2; TensorFlow "same" padding, which is 1 pixel for the 4x4
layers and none for the 2x2 ones on 64x64 images), a 256-unit ReLU dense layer, and two linear heads
for the mean and log-variance of 10 latents.

The weights are PyTorch's default initialisation under a fixed seed (the global RNG is left as it
was), so every load gives the same encoder. Untrained, it is a baseline: a random but fixed
non-linear projection. ``forward`` returns ``(mean, logvar)``, so both the mean and the sampled
representation can be evaluated.

Use it with ``dbench check examples/torch_cnn_encoder.py``.
"""

from __future__ import annotations

import torch
from torch import nn

SEED = 0
NUM_LATENTS = 10


class ConvEncoder(nn.Module):
    """``(N, C, 64, 64)`` images -> ``(mean, logvar)``, each ``(N, num_latents)``."""

    def __init__(self, in_channels: int = 1, num_latents: int = NUM_LATENTS) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=4, stride=2, padding=1),  # 64 -> 32
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
        self.mean = nn.Linear(256, num_latents)
        self.logvar = nn.Linear(256, num_latents)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.features(images)
        return self.mean(hidden), self.logvar(hidden)


def get_encoder(in_channels: int = 1) -> ConvEncoder:
    """The encoder dbench loads from this file: the same weights on every call."""
    # fork_rng restores the global RNG afterwards, so loading the encoder does not reseed the caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return ConvEncoder(in_channels=in_channels).eval()
