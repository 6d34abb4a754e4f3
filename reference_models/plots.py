"""Figures of a run directory: the latent-traversal grid and the training-loss curves (matplotlib Agg)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from dbench.errors import DbenchError
from reference_models.checkpoint import LOSSES_FILE, run_folder


def read_losses(run_dir: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Columns of ``losses.csv`` as float arrays; DbenchError when it is missing or empty."""
    path = run_folder(run_dir) / LOSSES_FILE
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
    """Latent-traversal figure of a trained run saved as PNG (dataset: the run's own unless given).

    See :func:`plot_traversal` for what the figure shows.
    """
    import torch

    from reference_models.checkpoint import load_run
    from reference_models.training import resolve_dataset
    from reference_models.traversal import latent_traversal, seed_indices

    if n_images < 1 or n_values < 2 or not value_range > 0:
        raise DbenchError(
            f"--n-images must be >= 1, --n-values >= 2 and --range > 0; got {n_images}, {n_values}, {value_range}"
        )
    config, model = load_run(run_dir)
    data = resolve_dataset(dataset if dataset is not None else config["dataset"])
    indices = seed_indices(data, n_images)
    images = torch.from_numpy(data.images(indices))
    frames = latent_traversal(model, images, value_range=value_range, n_values=n_values)
    with torch.no_grad():
        means = model.encoder(images)[0].numpy()
    title = f"{Path(run_dir).resolve().name}: {config.get('model', 'model')} on {data.name}, latent traversals"
    return plot_traversal(frames, images.numpy(), means, np.linspace(-value_range, value_range, n_values), path,
                          indices=indices, title=title)


def plot_traversal(
    frames: np.ndarray,
    seeds: np.ndarray,
    means: np.ndarray,
    values: np.ndarray,
    path: str | os.PathLike[str],
    *,
    indices: np.ndarray | None = None,
    title: str = "latent traversals",
) -> Path:
    """One block per seed image: the seed image (framed in red) beside its traversals.

    ``frames`` is ``(n_images, D, n_values, C, H, W)`` from
    :func:`~reference_models.traversal.latent_traversal`, ``seeds`` the seed images ``(n_images, C,
    H, W)``, ``means`` their posterior means ``(n_images, D)`` and ``values`` the traversed values.
    Row ``j`` of a block sets latent ``z{j}`` to each value (column labels) while the others stay at
    the seed image's mean; the row label gives that latent's own mean for the seed image, so a reader
    sees where the seed sits on each row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from reference_models.traversal import tile_grid

    n_images, dims, n_values, channels, height, width = frames.shape
    gap = 2
    fig, axes = plt.subplots(n_images, 1, figsize=(1.2 + 0.62 * (n_values + 1.4), 0.7 + n_images * (0.55 * dims + 0.55)),
                             squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        grid = tile_grid(frames[i : i + 1], gap=gap)
        # The seed image in a column of its own, left of the traversals, on the first row.
        seed_column = np.ones((grid.shape[0], width + 3 * gap, grid.shape[2]), dtype=np.float32)
        seed_column[:height, :width] = seeds[i].transpose(1, 2, 0)
        canvas = np.concatenate([seed_column, grid], axis=1)
        shown = canvas[..., 0] if channels == 1 else canvas
        ax.imshow(np.clip(shown, 0.0, 1.0), cmap="gray" if channels == 1 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.add_patch(Rectangle((-0.5, -0.5), width, height, fill=False, edgecolor="red", linewidth=1.6))
        left = width + 3 * gap
        ax.set_xticks([width / 2 - 0.5] + [left + k * (width + gap) + width / 2 - 0.5 for k in range(n_values)],
                      ["seed"] + [f"{v:+.2g}" for v in values], fontsize=7)
        ax.set_yticks([j * (height + gap) + height / 2 - 0.5 for j in range(dims)],
                      [f"z{j} (μ={means[i, j]:+.2f})" for j in range(dims)], fontsize=7)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        where = f", dataset index {int(indices[i])}" if indices is not None else ""
        ax.set_title(f"seed image {i + 1}{where}", fontsize=8, loc="left")
        ax.set_xlabel("value the row's latent is set to (the others stay at the seed's mean μ)", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
