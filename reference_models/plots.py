"""Figures of a run directory: the latent-traversal grid and the training-loss curves (matplotlib Agg)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from dbench.errors import DbenchError
from reference_models.checkpoint import LOSSES_FILE


def save_grid_png(grid: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Save a ``(H, W, C)`` image in [0, 1] as PNG (grey for one channel)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image as mpimg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = grid[..., 0] if grid.shape[-1] == 1 else grid
    mpimg.imsave(path, np.clip(array, 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0)
    return path


def read_losses(run_dir: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Columns of ``losses.csv`` as float arrays; DbenchError when it is missing or empty."""
    path = Path(run_dir) / LOSSES_FILE
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DbenchError(f"no {LOSSES_FILE} in {run_dir}; pass a `dbench train --out` directory") from None
    if not rows:
        raise DbenchError(f"{path} has no logged steps yet")
    return {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` steps (shorter at the start), to read noisy per-step losses."""
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def plot_losses(run_dir: str | os.PathLike[str], path: str | os.PathLike[str], *, window: int = 50) -> Path:
    """One panel per loss term against the step (raw in light colour, moving average on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_losses(run_dir)
    steps = columns.pop("step")
    names = list(columns)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.9 * len(names)), sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], names, strict=True):
        axis.plot(steps, columns[name], color="0.8", linewidth=0.6)
        axis.plot(steps, moving_average(columns[name], window), color="C0", linewidth=1.2)
        axis.set_ylabel(name)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(f"{Path(run_dir).name}: training losses (moving average over {window} steps)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_traversal(
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    n_images: int = 3,
    value_range: float = 2.0,
    n_values: int = 10,
    dataset=None,
) -> Path:
    """Latent-traversal grid of a trained run saved as PNG (dataset: the run's own unless given)."""
    import torch

    from reference_models.checkpoint import load_run
    from reference_models.training import resolve_dataset
    from reference_models.traversal import latent_traversal, seed_images, tile_grid

    if n_images < 1 or n_values < 2 or not value_range > 0:
        raise DbenchError(f"need n_images >= 1, n_values >= 2, range > 0; got {n_images}, {n_values}, {value_range}")
    config, model = load_run(run_dir)
    data = resolve_dataset(dataset if dataset is not None else config["dataset"])
    images = torch.from_numpy(seed_images(data, n_images))
    frames = latent_traversal(model, images, value_range=value_range, n_values=n_values)
    return save_grid_png(tile_grid(frames), path)
