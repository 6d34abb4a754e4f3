"""The study plots of an aggregate table (matplotlib, Agg backend, PNG), one set per dataset x representation.

* :func:`plot_metric_agreement` -- Spearman rank correlation between scores across all encoders
  (Locatello et al. 2019, Fig. 3's metric-agreement heatmap), values annotated.
* :func:`plot_score_distributions` -- each score's distribution per model variant and value of its
  swept hyperparameter (box plots with every trained model as a point), or per encoder over metric
  seeds when the encoders carry no model metadata.
* :func:`plot_variance_shares` -- when training seeds are known, the share of each score's variance
  explained by the model variant, by its hyperparameters, by the training seed and by the metric seed
  (nested sums of squares; the four shares add up to one).

Each encoder counts as the mean over its metric seeds, except in the variance shares, where the metric
seed is one of the sources.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbench.studies.summary import encoder_means

if TYPE_CHECKING:
    import pandas as pd

#: Nested sources of variance, outermost first, and their labels.
VARIANCE_SOURCES = (
    ("model", "model variant"),
    ("hyperparameters", "hyperparameters (within variant)"),
    ("train_seed", "training seed"),
    ("metric_seed", "metric seed"),
)
_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52")
_SHORT = ("variant", "hyperparameters", "training seed", "metric seed")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._") or "_"


def _setups(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(file-name part, title part, rows) per protocol x dataset x representation."""
    several = frame["protocol"].nunique() > 1
    out = []
    for (protocol, dataset, representation), rows in frame.groupby(["protocol", "dataset", "representation"],
                                                                    sort=True):
        name = f"{protocol}-{dataset}-{representation}" if several else f"{dataset}-{representation}"
        label = f"{dataset}, {representation} representation" + (f", protocol {protocol}" if several else "")
        out.append((name, label, rows))
    return out


def swept_hyperparameters(rows: pd.DataFrame, meta_columns: list[str]) -> list[str]:
    """Metadata columns that vary among the encoders of ``rows`` (model, seeds and bookkeeping excluded)."""
    skip = {"model", "train_seed", "finished", "train_dataset", "train_batch_size"}
    out = []
    for column in meta_columns:
        if column in skip or column not in rows:
            continue
        if rows.drop_duplicates("fingerprint")[column].dropna().nunique() > 1:
            out.append(column)
    return out


# ------------------------------------------------------------------------------------------------
# Metric agreement


def plot_metric_agreement(frame: pd.DataFrame, out_dir: str | os.PathLike[str], *, scores: list[str],
                          meta_columns: list[str]) -> list[Path]:
    """One heatmap per set-up of the Spearman correlation between ``scores`` across encoders."""
    plt = _pyplot()
    written = []
    for name, label, rows in _setups(frame):
        wide = encoder_means(rows, meta_columns).pivot_table(index="fingerprint", columns="score_name", values="score")
        present = [s for s in scores if s in wide.columns]
        if len(present) < 2 or len(wide) < 3:
            continue
        wide = wide[present]
        rho = wide.corr(method="spearman", min_periods=3)
        n = len(present)
        size = max(4.5, 0.75 * n + 2.5)
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        image = ax.imshow(rho.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        for i in range(n):
            for j in range(n):
                value = rho.iat[i, j]
                text = "n/a" if not math.isfinite(value) else f"{value:.2f}"
                colour = "white" if math.isfinite(value) and abs(value) > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
        labels = [_score_label(s) for s in present]
        ax.set_xticks(range(n), labels, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), labels)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("Spearman rank correlation ρ")  # noqa: RUF001 - the Greek rho of the statistic
        ax.set_title(f"Rank agreement between metrics across {len(wide)} encoders\n({label})", fontsize=11)
        fig.tight_layout()
        path = Path(out_dir) / f"agreement-{_slug(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        plt.close(fig)
        written.append(path)
    return written


def _score_label(score: str) -> str:
    """``dci.disentanglement`` -> ``DCI disentanglement``; ``mig.mig`` -> ``MIG``."""
    metric, _, key = score.partition(".")
    names = {"mig": "MIG", "dci": "DCI", "sap": "SAP", "beta_vae": "β-VAE", "factor_vae": "FactorVAE",
             "irs": "IRS", "modularity": "Modularity", "few_shot": "few-shot", "unsupervised": "unsupervised",
             "downstream_task": "downstream"}
    name = names.get(metric, metric)
    if key.lower() == metric.lower() or not key:
        return name
    return f"{name} {key.replace('_', ' ')}"


# ------------------------------------------------------------------------------------------------
# Distributions


def _value_label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}" \
        if isinstance(value, float) else str(value)


def plot_score_distributions(frame: pd.DataFrame, out_dir: str | os.PathLike[str], *, scores: list[str],
                             meta_columns: list[str]) -> list[Path]:
    """Per set-up and score: box plots per model variant and hyperparameter value, points for models."""
    plt = _pyplot()
    import numpy as np

    written = []
    for name, label, rows in _setups(frame):
        means = encoder_means(rows, meta_columns)
        has_models = "model" in means and means["model"].notna().any()
        for score in scores:
            data = means[means["score_name"] == score]
            if data.empty:
                continue
            if has_models:
                fig, note = _by_model(plt, np, data, meta_columns, score)
            else:
                fig, note = _by_encoder(plt, np, rows[rows["score_name"] == score], score)
            import textwrap

            width = int(fig.get_figwidth() * 11)  # characters of a 9-point line across the figure
            # Title and note as figure texts (tight_layout makes room for a suptitle again, on top of rect).
            wrapped = textwrap.fill(note, width)
            fig.text(0.5, 0.985, f"{_score_label(score)} ({label})", ha="center", va="top", fontsize=11)
            fig.text(0.5, 0.93, wrapped, ha="center", va="top", fontsize=8, color="dimgray")
            fig.tight_layout(rect=(0, 0, 1, 0.935 - 0.04 * (wrapped.count("\n") + 1)))
            path = Path(out_dir) / f"distribution-{_slug(name)}-{_slug(score)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=150)
            plt.close(fig)
            written.append(path)
    return written


def _by_model(plt: Any, np: Any, data: pd.DataFrame, meta_columns: list[str], score: str) -> tuple[Any, str]:
    panels: list[tuple[Any, str | None, list[tuple[str, Any]]]] = []  # (model, swept hyperparameter, boxes)
    for model in sorted(data["model"].dropna().unique(), key=str):
        rows = data[data["model"] == model]
        swept = swept_hyperparameters(rows, meta_columns)
        hp = swept[0] if swept else None
        if hp is None:
            panels.append((model, hp, [(_configuration_label(rows, meta_columns), rows)]))
        else:
            panels.append((model, hp, [(_value_label(v), rows[rows[hp] == v]) for v in sorted(rows[hp].dropna().unique())]))
    # Each panel as wide as its boxes need, so a model without a swept hyperparameter is one narrow box.
    ratios = [len(groups) + 0.6 for _, _, groups in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.5, 0.75 * sum(ratios) + 1.3), 4.2), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": ratios})
    rng = np.random.default_rng(0)  # jitter of the points only
    for ax, (model, hp, groups) in zip(axes[0], panels, strict=True):
        values = [g["score"].to_numpy() for _, g in groups]
        ax.boxplot(values, widths=0.55, whis=(0, 100), showfliers=False, medianprops={"color": "black"},
                   boxprops={"color": "#4C72B0"}, whiskerprops={"color": "#4C72B0"}, capprops={"color": "#4C72B0"})
        for i, v in enumerate(values, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, size=v.size), v, s=14, color="#DD8452", zorder=3,
                       edgecolor="black", linewidth=0.4)
        ax.set_xticks(range(1, len(groups) + 1), [g for g, _ in groups])
        ax.set_xlabel(hp if hp is not None else "")
        ax.set_title(str(model), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"{_score_label(score)}\n(mean over metric seeds)")
    return fig, "box: quartiles over training seeds, whiskers to the extremes; point: one trained model"


def _configuration_label(rows: pd.DataFrame, meta_columns: list[str]) -> str:
    """The one configuration of a model's runs, one ``name = value`` a line (its hyperparameters as trained)."""
    skip = {"model", "train_seed", "finished", "train_dataset", "train_batch_size", "steps"}
    first = rows.drop_duplicates("fingerprint")
    parts = [f"{c} = {_value_label(first[c].dropna().iloc[0])}" for c in meta_columns
             if c not in skip and c in first and first[c].notna().any()]
    return "\n".join(parts) if parts else "one configuration"


def _by_encoder(plt: Any, np: Any, rows: pd.DataFrame, score: str) -> tuple[Any, str]:
    encoders = sorted(rows["encoder"].unique(), key=str)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(encoders) + 1.5), 4.2))
    values = [rows[rows["encoder"] == e]["score"].to_numpy() for e in encoders]
    ax.boxplot(values, widths=0.55, whis=(0, 100), showfliers=False, medianprops={"color": "black"})
    rng = np.random.default_rng(0)
    for i, v in enumerate(values, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, size=v.size), v, s=14, color="#DD8452", zorder=3, edgecolor="black",
                   linewidth=0.4)
    ax.set_xticks(range(1, len(encoders) + 1), encoders, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_xlabel("encoder")
    ax.set_ylabel(_score_label(score))
    ax.grid(axis="y", alpha=0.3)
    return fig, "box: quartiles over metric seeds, whiskers to the extremes; point: one metric seed"


# ------------------------------------------------------------------------------------------------
# Variance shares


def variance_shares(rows: pd.DataFrame, meta_columns: list[str]) -> dict[str, float] | None:
    """Shares of the variance of one score explained by each source of :data:`VARIANCE_SOURCES`.

    Nested sums of squares over the table's rows (one per encoder x metric seed): model variant, then
    hyperparameters within variant, training seed within configuration, metric seed within encoder.
    None when the score does not vary or no training seeds are known.
    """
    if "train_seed" not in rows or rows["train_seed"].isna().all():
        return None
    y = rows["score"].to_numpy(dtype=float)
    total = float(((y - y.mean()) ** 2).sum())
    if not math.isfinite(total) or total <= 0:
        return None
    model = rows["model"].astype(str) if "model" in rows else rows["encoder"].map(lambda _: "")
    config_cols = [c for c in meta_columns if c in rows and c not in ("model", "train_seed", "finished")]
    config = model + rows[config_cols].map(repr).agg("|".join, axis=1) if config_cols else model
    encoder = rows["fingerprint"].astype(str)
    level_means = [
        rows.assign(_g="").groupby("_g")["score"].transform("mean"),
        rows.assign(_g=model).groupby("_g")["score"].transform("mean"),
        rows.assign(_g=config).groupby("_g")["score"].transform("mean"),
        rows.assign(_g=encoder).groupby("_g")["score"].transform("mean"),
        rows["score"],
    ]
    shares = {}
    for (source, _), outer, inner in zip(VARIANCE_SOURCES, level_means[:-1], level_means[1:], strict=True):
        shares[source] = float(((inner.to_numpy() - outer.to_numpy()) ** 2).sum()) / total
    return shares


def plot_variance_shares(frame: pd.DataFrame, out_dir: str | os.PathLike[str], *, scores: list[str],
                         meta_columns: list[str]) -> list[Path]:
    """One stacked bar chart per set-up: for each score, the shares of :func:`variance_shares`."""
    plt = _pyplot()
    written = []
    for name, label, rows in _setups(frame):
        shares = {s: variance_shares(rows[rows["score_name"] == s], meta_columns) for s in scores}
        table = {s: v for s, v in shares.items() if v is not None}
        if not table:
            continue
        names = list(table)
        # Shares too narrow to label inside their segment are written out right of the bar.
        small = {s: ", ".join(f"{short} {table[s][source]:.1%}" for (source, _), short
                              in zip(VARIANCE_SOURCES, _SHORT, strict=True) if table[s][source] < 0.08) for s in names}
        width = 7.5 + (0.055 * max(len(t) for t in small.values()) if any(small.values()) else 0.0)
        fig, ax = plt.subplots(figsize=(width, 0.45 * len(names) + 2.0))
        left = [0.0] * len(names)
        for (source, text), colour in zip(VARIANCE_SOURCES, _COLOURS, strict=True):
            widths = [table[s][source] for s in names]
            ax.barh(range(len(names)), widths, left=left, color=colour, label=text, edgecolor="white", height=0.7)
            for i, (w, start) in enumerate(zip(widths, left, strict=True)):
                if w >= 0.08:
                    ax.text(start + w / 2, i, f"{w:.0%}", ha="center", va="center", fontsize=8, color="white")
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for i, s in enumerate(names):
            if small[s]:
                ax.text(1.01, i, small[s], ha="left", va="center", fontsize=7, color="dimgray",
                        transform=ax.get_yaxis_transform())
        ax.set_yticks(range(len(names)), [_score_label(s) for s in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_xlabel("share of the score's variance (nested sums of squares)")
        n_models = rows["fingerprint"].nunique()
        constant = [s for s in scores if s not in table and s in set(rows["score_name"])]
        note = f"; left out, constant: {', '.join(_score_label(s) for s in constant)}" if constant else ""
        ax.set_title(f"What the scores depend on: {n_models} trained models\n({label}{note})", fontsize=11)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22 if len(names) > 3 else -0.35), ncol=2, fontsize=8,
                  frameon=False)
        fig.tight_layout()
        path = Path(out_dir) / f"variance-{_slug(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def write_study_plots(frame: pd.DataFrame, out_dir: str | os.PathLike[str], *, scores: list[str],
                      meta_columns: list[str]) -> list[Path]:
    """All study plots of the table (those the data allow) under ``out_dir``."""
    written = []
    for plot in (plot_metric_agreement, plot_score_distributions, plot_variance_shares):
        written += plot(frame, out_dir, scores=scores, meta_columns=meta_columns)
    return written


__all__ = ["VARIANCE_SOURCES", "plot_metric_agreement", "plot_score_distributions", "plot_variance_shares",
           "swept_hyperparameters", "variance_shares", "write_study_plots"]
