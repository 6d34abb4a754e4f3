"""Learning-curve figure for the downstream task: test accuracy against the number of labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dbench.probes.summaries import learning_curves

if TYPE_CHECKING:
    from dbench.metrics._spec import Scored


def plot_learning_curves(
    result: Mapping[str, float],
    path: str | Path,
    *,
    factor_names: Sequence[str] | None = None,
) -> Path:
    """Write a PNG with one panel per predictor: per-factor and mean test accuracy against ``n`` (log axis).

    ``result`` is the downstream task's score dict. matplotlib is imported here (Agg backend), so
    importing dbench never pulls it in. Returns the path written.
    """
    curves = learning_curves(result)
    if not curves:
        raise ValueError("result holds no downstream accuracies (keys like 'logistic_regression_cv:100:mean_test_accuracy')")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves) + 1.5, 4), squeeze=False, sharey=True)
    for ax, (predictor, curve) in zip(axes[0], sorted(curves.items()), strict=True):
        for i in range(curve["factors"].shape[1]):
            label = factor_names[i] if factor_names is not None and i < len(factor_names) else f"factor {i}"
            ax.plot(curve["sizes"], curve["factors"][:, i], marker="o", linewidth=1, label=label)
        ax.plot(curve["sizes"], curve["mean"], color="black", linewidth=2.5, marker="s", label="mean")
        ax.set_xscale("log")
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("training labels n")
        ax.set_title(f"downstream task: {predictor}")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    # Outside the axes, so no curve is hidden behind it.
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_downstream(scored: Scored, folder: str | Path) -> Path | None:
    """The downstream task's plot (its ``MetricSpec.plot``): ``folder/downstream_task.png``.

    ``None`` when the scores hold no learning curve.
    """
    if not learning_curves(scored.scores):
        return None
    names = scored.artifacts.get("factor_names") or None
    return plot_learning_curves(scored.scores, Path(folder) / "downstream_task.png", factor_names=names)
