"""Learning-curve figure for the downstream task: test accuracy against the number of labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.probes.summaries import learning_curves

if TYPE_CHECKING:
    from dbench.metrics._spec import Scored


def plot_learning_curves(
    result: Mapping[str, float],
    path: str | Path,
    *,
    factor_names: Sequence[str] | None = None,
    seed: int | None = None,
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
        columns = {i: curve["factors"][:, i] for i in range(curve["factors"].shape[1])}
        _factor_lines(ax, curve["sizes"], columns, factor_names)
        ax.plot(curve["sizes"], curve["mean"], color="black", linewidth=2.5, marker="s", label="mean")
        ax.set_xscale("log")
        ax.set_xlabel("training labels n")
        _panel(ax, f"downstream task: {predictor}", seed)
    return _finish(fig, axes, path)


def _factor_lines(ax, x, columns: Mapping[int, object], names: Sequence[str] | None) -> None:
    """One thin line per factor, labelled by the factor's name."""
    for i, values in columns.items():
        label = names[i] if names is not None and i < len(names) else f"factor {i}"
        ax.plot(x, values, marker="o", markersize=3.5, linewidth=1, label=label)


def _panel(ax, title: str, seed: int | None) -> None:
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title + (f" (seed {seed})" if seed is not None else ""))
    ax.grid(True, alpha=0.3)


def _finish(fig, axes, path: Path) -> Path:
    """Shared y label, the legend outside the axes (so no curve is hidden behind it), saved and closed."""
    import matplotlib.pyplot as plt

    axes[0][0].set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_downstream(scored: Scored, folder: str | Path) -> Path | None:
    """The downstream task's plot (its ``MetricSpec.plot``): ``folder/downstream_task.png``.

    ``None`` when the scores hold no learning curve.
    """
    if not learning_curves(scored.scores):
        return None
    names = scored.artifacts.get("factor_names") or None
    return plot_learning_curves(scored.scores, Path(folder) / "downstream_task.png", factor_names=names,
                                seed=scored.artifacts.get("seed"))


def few_shot_curves(scores: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per probe: shot counts (``"all"`` last), mean accuracy and its spread over draws, per-factor accuracies.

    Read from the few-shot keys ``"{probe}:{shots}:mean_accuracy"`` (``:std``) and
    ``"{probe}:{shots}:accuracy_factor_{i}"``; continuous factors (R²) are not accuracies and are left out.
    """
    import re

    import numpy as np

    pattern = re.compile(r"^(?P<probe>[^:]+):(?P<shots>\d+|all):(?P<what>mean_accuracy(?::std)?|accuracy_factor_(?P<i>\d+))$")
    found: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in scores.items():
        match = pattern.match(key)
        if match:
            found.setdefault(match["probe"], {}).setdefault(match["shots"], {})[match["what"]] = float(value)
    curves: dict[str, dict[str, Any]] = {}
    for probe, per_shots in found.items():
        shots = sorted(per_shots, key=lambda k: (k == "all", int(k) if k != "all" else 0))
        if not all("mean_accuracy" in per_shots[k] for k in shots):
            continue
        factors = sorted({int(w.rsplit("_", 1)[1]) for k in shots for w in per_shots[k] if w.startswith("accuracy_factor_")})
        curves[probe] = {
            "shots": shots,
            "mean": np.array([per_shots[k]["mean_accuracy"] for k in shots]),
            "std": np.array([per_shots[k].get("mean_accuracy:std", 0.0) for k in shots]),
            "factors": {i: np.array([per_shots[k].get(f"accuracy_factor_{i}", np.nan) for k in shots]) for i in factors},
        }
    return curves


def plot_few_shot(scored: Scored, folder: str | Path) -> Path | None:
    """The few-shot probe's plot (its ``MetricSpec.plot``): ``folder/few_shot.png``.

    One panel per probe: test accuracy against labelled examples per class (the shot counts evenly
    spaced, as categories; ``all`` is the whole labelled pool of ``n_pool`` observations), per factor by
    name and their mean with its spread over the draws (±1 standard deviation, shaded). ``None`` when
    the scores hold no curve.
    """
    curves = few_shot_curves(scored.scores)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    names = scored.artifacts.get("factor_names") or None
    n_pool = scored.artifacts.get("n_pool")
    seed = scored.artifacts.get("seed")
    path = Path(folder) / "few_shot.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves) + 1.6, 3.8), squeeze=False, sharey=True)
    for ax, (probe, curve) in zip(axes[0], sorted(curves.items()), strict=True):
        shots = list(curve["shots"])
        x = np.arange(len(shots), dtype=float)
        _factor_lines(ax, x, curve["factors"], names)
        mean, std = curve["mean"], curve["std"]
        ax.fill_between(x, mean - std, mean + std, color="black", alpha=0.15, linewidth=0, label="mean ± 1 std over draws")
        ax.plot(x, mean, color="black", linewidth=2.2, marker="s", markersize=4, label="mean over factors")
        ax.set_xticks(x, [k if k != "all" else f"all\n({n_pool:,} pool)" if n_pool else "all" for k in shots])
        ax.set_xlabel("labelled examples per class")
        _panel(ax, f"few-shot {probe} probe", seed)
    return _finish(fig, axes, path)
