"""Plots of one result: the score overview, DCI's importance matrix, the probes' learning curves.

``scores.png`` shows every score of the printed table (probes by their summary keys, as the table
shows them): scores declared in [0, 1] share one axis; the others (counts of active latents, total
correlations...) get their own panel with its own axis, so nothing is dropped or clipped. Each bar is
labelled with its value; error bars are the table's ``±`` (over metric seeds, or a probe's draws),
said in the figure. The title names encoder, dataset, representation, protocol and seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dbench.evaluation.result import EvaluationResult
from dbench.results.table import MAX_KEYS_SHOWN, printed_rows, spread_legend

Row = tuple[str, str, float, float | None]


def write_plots(result: EvaluationResult, out_dir: Path) -> list[Path]:
    """Write the plots a person would rather look at; returns the paths written.

    ``scores.png`` is left out when the result has no score at all (every metric failed).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    overview = plot_scores(result, out_dir / "scores.png")
    if overview is not None:
        paths.append(overview)
    from dbench.metrics import METRIC_NAMES, get_metric  # lazy: only plotting needs the registry

    # Each metric's own figure (DCI's importance matrix, the probes' learning curves), if it has one;
    # a result read back from another version may name a metric this one does not know: no figure.
    for name, scores in result.scores.items():
        if name not in METRIC_NAMES:
            continue
        plot = get_metric(name).plot
        if plot is not None:
            path = plot(_first_seed(result, name, scores), out_dir)
            if path is not None:
                paths.append(path)
    return [Path(p) for p in paths]


#: The panels of ``scores.png``, in order: (kind, x-axis label).
PANELS = (
    ("unit", "score (declared range [0, 1])"),
    ("count", "number of latents"),
    ("other", "value (each on its own scale: see its metric's documentation)"),
)


def _first_seed(result: EvaluationResult, name: str, scores: dict[str, float]) -> Any:
    """What a metric's own figure draws: with several seeds, the first seed's scores and arrays, named as such.

    The pipeline keeps a metric's arrays (DCI's importance matrix) from the first seed only, so its
    figure shows that seed throughout rather than mixing its matrix with the mean over seeds.
    """
    from dbench.metrics import Scored

    artifacts = dict(result.artifacts.get(name, {}))
    if len(result.seeds) > 1 and result.per_seed:
        scores = result.per_seed[0].scores.get(name, scores)
        artifacts["seed"] = result.seeds[0]
    return Scored(scores, artifacts)


def score_kind(metric: str, key: str, value: float) -> str:
    """``unit`` (declared within [0, 1]), ``count`` (a number of latents) or ``other`` (unbounded, signed...)."""
    from dbench.metrics import METRIC_NAMES, get_metric

    if metric not in METRIC_NAMES:  # a result of another dbench version: judge by the value
        return "unit" if 0.0 <= value <= 1.0 else "other"
    try:
        declared = get_metric(metric).score_key(key)
    except ValueError:
        return "unit" if 0.0 <= value <= 1.0 else "other"
    if declared.low >= 0.0 and declared.high <= 1.0:
        return "unit"
    if declared.higher_is_better is None and key.startswith("num_"):
        return "count"
    return "other"


def plotted_rows(result: EvaluationResult) -> tuple[dict[str, list[Row]], int]:
    """The printed table's rows by panel kind, and how many probe training accuracies were left out.

    A metric summarised in the table (a probe with many keys) is shown by its held-out accuracies:
    its training accuracies stay in the table and the JSON.
    """
    rows, _ = printed_rows(result)
    summarised = {metric for metric, keys in result.scores.items() if len(keys) > MAX_KEYS_SHOWN}
    metrics_order = list(dict.fromkeys(r[0] for r in rows))
    panels: dict[str, list[Row]] = {kind: [] for kind, _ in PANELS}
    left_out = 0
    # A summarised metric's keys in their natural order (5, 46, 460 labels; a file read back is sorted as text).
    rows = sorted(rows, key=lambda r: (metrics_order.index(r[0]), _natural(r[1]) if r[0] in summarised else ()))
    for metric, key, value, spread, _ in rows:
        if metric in summarised and "train" in key:
            left_out += 1
            continue
        panels[score_kind(metric, key, float(value))].append((metric, key, float(value), spread))
    return panels, left_out


def _natural(key: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key reading the numbers in ``key`` as numbers (``knn:5`` before ``knn:50``, ``all`` last)."""
    parts = []
    for part in key.split(":"):
        parts.append((0, int(part)) if part.isdigit() else (1, part) if part != "all" else (0, 10**12))
    return tuple(parts)


def title(result: EvaluationResult) -> str:
    """``encoder on dataset`` and, on a second line, representation, protocol and seeds."""
    seeds = ", ".join(map(str, result.seeds))
    plural = "s" if len(result.seeds) > 1 else ""
    return (f"{result.encoder.name} on {result.dataset}\n"
            f"{result.representation} representation, protocol {result.protocol.name} v{result.protocol.version}, "
            f"seed{plural} {seeds}")


def plot_scores(result: EvaluationResult, path: str | Path) -> Path | None:
    """``scores.png``: horizontal bars of every score, one colour per metric (see the module docstring)."""
    by_kind, left_out = plotted_rows(result)
    panels = [(by_kind[kind], label) for kind, label in PANELS if by_kind[kind]]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every = [row for rows, _ in panels for row in rows]
    metrics = list(dict.fromkeys(m for m, *_ in every))
    colours = {m: plt.get_cmap("tab10" if len(metrics) <= 10 else "tab20")(i % 20) for i, m in enumerate(metrics)}
    heights = [len(rows) + 1.2 for rows, _ in panels]
    label_width = max(len(f"{m}.{k}") for m, k, *_ in every)
    fig, axes = plt.subplots(len(panels), 1, figsize=(5.0 + 0.065 * label_width, 0.24 * sum(heights) + 1.4),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (rows, xlabel) in zip(axes[:, 0], panels, strict=True):
        _bars(ax, rows, colours, kind=next(kind for kind, label in PANELS if label == xlabel))
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title(result), fontsize=9.5)
    footnotes = []
    if any(row[3] is not None for row in every):
        footnotes.append("error bars: " + "; ".join(line.split(" = ", 1)[-1] for line in spread_legend(result)))
    if left_out:
        footnotes.append(f"{left_out} probe training accuracies are in the printed table and the JSON result")
    for i, line in enumerate(footnotes):
        fig.text(0.01, 0.006 + 0.018 * i, line, fontsize=6.5, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.02 + 0.018 * len(footnotes), 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight", pad_inches=0.1)  # long labels never cut off
    plt.close(fig)
    return path


def _bars(ax, rows: list[Row], colours: dict, *, kind: str) -> None:
    """One panel: a bar per row, its value written at its end, error bars where a spread is known."""
    positions = range(len(rows))
    values = [r[2] for r in rows]
    spreads = [r[3] if r[3] is not None and math.isfinite(r[3]) else 0.0 for r in rows]
    ax.barh(positions, values, xerr=spreads if any(spreads) else None, color=[colours[r[0]] for r in rows],
            error_kw={"capsize": 2, "elinewidth": 0.8, "ecolor": "0.2"}, height=0.7)
    ax.set_yticks(list(positions), [f"{m}.{k}" for m, k, *_ in rows], fontsize=7.5)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    finite = [v + s for v, s in zip(values, spreads, strict=True) if math.isfinite(v)]
    low = min([0.0] + [v - s for v, s in zip(values, spreads, strict=True) if math.isfinite(v)])
    high = 1.0 if kind == "unit" else (max(finite) if finite else 1.0)
    span = (high - low) or 1.0
    # Room on the right for the value labels (and left of a negative bar), so nothing touches the frame.
    ax.set_xlim(low - 0.04 * span if low < 0 else low, high + 0.16 * span)
    if low < 0:
        ax.axvline(0.0, color="0.3", linewidth=0.8)
    for y, value, spread in zip(positions, values, spreads, strict=True):
        if kind == "count":  # a mean over seeds of a count need not be whole
            text = f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
        else:
            text = f"{value:.3f}" if abs(value) < 1000 else f"{value:.3g}"
        ax.text(max(value, 0.0) + spread + 0.01 * span, y, text, va="center", fontsize=6.5)


__all__ = ["PANELS", "plot_scores", "plotted_rows", "score_kind", "title", "write_plots"]
