"""Plots of one result: the score bars, DCI's importance matrix, the probes' learning curves."""

from __future__ import annotations

from pathlib import Path

from dbench.evaluation.result import EvaluationResult
from dbench.results.table import score_rows


def write_plots(result: EvaluationResult, out_dir: Path) -> list[Path]:
    """Write the plots a person would rather look at; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [_plot_score_table(result, out_dir / "scores.png")]
    from dbench.metrics import METRIC_NAMES, Scored, get_metric  # lazy: only plotting needs the registry

    # Each metric's own figure (DCI's importance matrix, the downstream learning curves), if it has one;
    # a result read back from another version may name a metric this one does not know: no figure.
    for name, scores in result.scores.items():
        if name not in METRIC_NAMES:
            continue
        plot = get_metric(name).plot
        if plot is not None:
            path = plot(Scored(scores, result.artifacts.get(name, {})), out_dir)
            if path is not None:
                paths.append(path)
    return [Path(p) for p in paths]


def _plot_score_table(result: EvaluationResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in score_rows(result) if 0.0 <= r[2] <= 1.0 and ":" not in r[1]]
    labels = [f"{m}.{k}" for m, k, *_ in rows]
    values = [r[2] for r in rows]
    errors = [r[3] or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    ax.barh(range(len(rows)), values, xerr=errors, color="#4C72B0")
    ax.set_yticks(range(len(rows)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score")
    ax.set_title(f"{result.encoder.name} on {result.dataset}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["write_plots"]
