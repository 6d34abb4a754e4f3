"""Heatmap of a DCI importance matrix (latents x factors), written as a PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dbench._array import to_numpy

if TYPE_CHECKING:
    from dbench.metrics._spec import Scored


def plot_importance_matrix(
    importance: Any,
    factor_names: Sequence[str] | None = None,
    path: str | Path = "dci_importance.png",
    *,
    scores: Mapping[str, float] | None = None,
    seed: int | None = None,
) -> Path:
    """Save the importance matrix ``(n_latents, n_factors)`` from ``dbench.metrics._dci.dci_importance``.

    Rows are latents ``z0, z1, ...`` (the names the traversal plots use), columns factors by name; a
    disentangled, complete code shows one bright cell per row and per column. Cells carry their
    values when the matrix is small enough to read them; ``scores`` (DCI's) and the metric ``seed``
    they come from, when given, go in the title.
    Returns the written path.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    matrix = np.asarray(to_numpy(importance), dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"importance must be 2-D (n_latents, n_factors); got shape {matrix.shape}")
    n_latents, n_factors = matrix.shape
    names = list(factor_names) if factor_names is not None else [f"factor {j}" for j in range(n_factors)]
    if len(names) != n_factors:
        raise ValueError(f"factor_names has {len(names)} names but importance has {n_factors} factors")
    fig, ax = plt.subplots(figsize=(2.2 + 0.85 * n_factors, 1.6 + 0.38 * n_latents))
    top = float(matrix.max()) if matrix.size and np.isfinite(matrix.max()) and matrix.max() > 0 else 1.0
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=top, aspect="auto")
    ax.set_xticks(range(n_factors), names, rotation=45, ha="right")
    ax.set_yticks(range(n_latents), [f"z{i}" for i in range(n_latents)])
    ax.set_xlabel("factor")
    ax.set_ylabel("latent")
    if n_latents <= 30 and n_factors <= 12:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5,
                    color="black" if value > 0.6 * top else "white")
    title = "DCI importance matrix" + (f" (seed {seed})" if seed is not None else "")
    shown = ("disentanglement", "completeness", "informativeness_test")
    parts = [f"{key} {scores[key]:.3f}" for key in shown if scores and key in scores]
    if parts:
        title += "\n" + ", ".join(parts)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="importance (gradient-boosted trees)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_dci(scored: Scored, folder: str | Path) -> Path | None:
    """DCI's plot (its ``MetricSpec.plot``): ``folder/dci_importance.png`` from the score's artifacts.

    ``None`` when ``scored`` holds no importance matrix (a result read back from JSON has no arrays).
    """
    if "importance" not in scored.artifacts:
        return None
    return plot_importance_matrix(
        scored.artifacts["importance"],
        factor_names=scored.artifacts.get("factor_names") or None,
        path=Path(folder) / "dci_importance.png",
        scores=scored.scores,
        seed=scored.artifacts.get("seed"),
    )
