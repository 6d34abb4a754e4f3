"""Latent traversals: vary one latent at a time around the encoding of a few images and decode.

The picture of Higgins et al. 2017 (Fig. 1): for each seed image, a block of ``num_latent`` rows; row
``j`` sets latent ``j`` to evenly spaced values in ``[-value_range, value_range]`` while the other
latents stay at the seed image's posterior mean. Decoded probabilities (sigmoid of the logits) are
tiled into one grid image.
"""

from __future__ import annotations

import numpy as np
import torch

from dbench.datasets.base import GroundTruthDataset, num_observations


def traversal_codes(base_codes: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Codes ``(n_images, D, n_values, D)``: ``base_codes[i]`` with latent ``j`` replaced by each value."""
    n_images, dims = base_codes.shape
    codes = base_codes[:, None, None, :].expand(n_images, dims, values.numel(), dims).clone()
    index = torch.arange(dims)
    codes[:, index, :, index] = values.to(codes.dtype)
    return codes


@torch.no_grad()
def latent_traversal(
    model: torch.nn.Module, images: torch.Tensor, *, value_range: float = 2.0, n_values: int = 10
) -> np.ndarray:
    """Decoded traversals, float32 ``(n_images, D, n_values, C, H, W)`` in [0, 1]."""
    mean, _ = model.encoder(images)
    values = torch.linspace(-value_range, value_range, n_values)
    codes = traversal_codes(mean, values)
    decoded = torch.sigmoid(model.decoder(codes.reshape(-1, mean.shape[1])))
    return decoded.reshape(*codes.shape[:3], *decoded.shape[1:]).numpy()


def tile_grid(frames: np.ndarray, *, gap: int = 2, block_gap: int = 6) -> np.ndarray:
    """Tile ``(n_images, D, n_values, C, H, W)`` into one ``(rows, cols, C)`` image (white gaps).

    Columns are the traversal values, rows the latents; seed images are stacked with a wider gap.
    """
    n_images, dims, n_values, channels, height, width = frames.shape
    block_height = dims * height + (dims - 1) * gap
    total_height = n_images * block_height + (n_images - 1) * block_gap
    total_width = n_values * width + (n_values - 1) * gap
    grid = np.ones((total_height, total_width, channels), dtype=np.float32)
    for i in range(n_images):
        for j in range(dims):
            for k in range(n_values):
                top = i * (block_height + block_gap) + j * (height + gap)
                left = k * (width + gap)
                grid[top : top + height, left : left + width] = frames[i, j, k].transpose(1, 2, 0)
    return grid


def seed_indices(dataset: GroundTruthDataset, n_images: int, seed: int = 0) -> np.ndarray:
    """Sorted flat indices of ``n_images`` distinct observations drawn uniformly with a seeded generator."""
    rng = np.random.default_rng(seed)
    total = num_observations(dataset)
    return np.sort(rng.choice(total, size=min(n_images, total), replace=False)).astype(np.int64)


def seed_images(dataset: GroundTruthDataset, n_images: int, seed: int = 0) -> np.ndarray:
    """``n_images`` distinct observations drawn uniformly with a seeded generator (see :func:`seed_indices`)."""
    return dataset.images(seed_indices(dataset, n_images, seed))
