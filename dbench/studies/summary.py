"""Mean, standard deviation and 95% confidence interval over seeds, from an aggregate table.

Two levels, by what the seeds are:

* ``"encoder"``: per encoder (and protocol, dataset, representation, score), over its metric seeds; the
  encoder's metadata label its rows.
* ``"config"``: per training configuration -- every metadata column except ``train_seed`` and
  ``finished``, e.g. model and hyperparameters -- over its training seeds. Each encoder first counts
  as the mean over its metric seeds, so ``n`` is the number of trained models and the spread is the
  spread between training seeds. This is the default when the table knows training seeds.

The confidence interval is Student's t: ``mean ± t(0.975, n - 1) · std / sqrt(n)``; with one seed the
standard deviation and the interval are NaN (written as an en dash in the Markdown and HTML tables).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

Level = Literal["encoder", "config"]

#: Columns that identify one evaluation set-up besides the encoder.
SETUP_COLUMNS = ["protocol", "setup_hash", "dataset", "representation"]
#: Metadata that do not define a training configuration.
NOT_CONFIG = ("train_seed", "finished")


def config_columns(frame: pd.DataFrame, meta_columns: list[str]) -> list[str]:
    """Metadata columns that describe a training configuration and vary or are set somewhere."""
    return [c for c in meta_columns if c not in NOT_CONFIG and c in frame and frame[c].notna().any()]


def default_level(frame: pd.DataFrame, meta_columns: list[str]) -> Level:
    """``"config"`` when training seeds and a configuration are known, else ``"encoder"``."""
    has_seeds = "train_seed" in frame and frame["train_seed"].notna().any()
    return "config" if has_seeds and config_columns(frame, meta_columns) else "encoder"


def encoder_means(frame: pd.DataFrame, meta_columns: list[str]) -> pd.DataFrame:
    """One row per encoder x set-up x score: the mean over metric seeds (metadata kept)."""
    keys = ["encoder", "fingerprint", *SETUP_COLUMNS, "score_name"]
    meta = [c for c in meta_columns if c in frame]
    grouped = frame.groupby(keys, dropna=False, sort=False)
    means = grouped["score"].mean().rename("score").reset_index()
    if meta:
        means = means.merge(grouped[meta].first().reset_index(), on=keys, how="left")
    return means


def summarise(frame: pd.DataFrame, *, meta_columns: list[str] | None = None, level: Level | None = None) -> pd.DataFrame:
    """The summary table (see the module docstring): the group columns, then n, mean, std, ci95_low, ci95_high."""
    import pandas as pd

    meta_columns = list(meta_columns) if meta_columns is not None else [
        c for c in frame.columns if c not in _base_columns()]
    level = level or default_level(frame, meta_columns)
    if level == "config":
        data = encoder_means(frame, meta_columns)
        groups = [*config_columns(frame, meta_columns), *SETUP_COLUMNS, "score_name"]
    else:
        data = frame  # an encoder's metadata are the same in all its rows: they only label the group
        groups = ["encoder", "fingerprint", *[c for c in meta_columns if c in frame], *SETUP_COLUMNS, "score_name"]
    if data.empty:
        return pd.DataFrame(columns=[*groups, "n", "mean", "std", "ci95_low", "ci95_high"])
    stats = data.groupby(groups, dropna=False, sort=True)["score"].agg(["count", "mean", "std"]).reset_index()
    stats = stats.rename(columns={"count": "n"})
    half = [_t975(n) * s / math.sqrt(n) if n > 1 else math.nan for n, s in zip(stats["n"], stats["std"], strict=True)]
    stats["ci95_low"] = stats["mean"] - half
    stats["ci95_high"] = stats["mean"] + half
    return stats


def _t975(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def _base_columns() -> tuple[str, ...]:
    from dbench.studies.aggregate import BASE_COLUMNS

    return BASE_COLUMNS


# ------------------------------------------------------------------------------------------------
# Markdown and HTML


def _cell(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.3f}" if not math.isfinite(std) else f"{mean:.3f} ± {std:.3f}"


def _interval(low: float, high: float) -> str:
    return "–" if not (math.isfinite(low) and math.isfinite(high)) else f"[{low:.3f}, {high:.3f}]"


def wide_tables(summary: pd.DataFrame, scores: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Two tables with a row per group and a column per score: "mean ± std", and the 95% interval; and the
    group columns that have one value in every row (said once, in the caption), with that value."""
    import pandas as pd

    chosen = summary[summary["score_name"].isin(scores)]
    row_keys = [c for c in summary.columns if c not in ("score_name", "n", "mean", "std", "ci95_low", "ci95_high",
                                                         "fingerprint", "setup_hash")]
    # A column with one value in every row (the protocol, the training steps of every model ...) is said
    # once, in the caption, instead of in every row.
    drop = [c for c in row_keys if c not in ("encoder", "dataset", "representation") and chosen[c].nunique(dropna=False) <= 1]
    common = {c: chosen[c].iloc[0] for c in drop if not chosen.empty}
    row_keys = [c for c in row_keys if c not in drop]
    spread, interval = [], []
    for key, rows in chosen.groupby(row_keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(row_keys, key, strict=True))
        by_score = {r.score_name: r for r in rows.itertuples()}
        ns = sorted({int(r.n) for r in by_score.values()})
        ident["n"] = "/".join(str(n) for n in ns)
        spread.append({**ident, **{s: _cell(by_score[s].mean, by_score[s].std) if s in by_score else "–"
                                   for s in scores}})
        interval.append({**ident, **{s: _interval(by_score[s].ci95_low, by_score[s].ci95_high) if s in by_score
                                     else "–" for s in scores}})
    columns = [*row_keys, "n", *scores]
    return pd.DataFrame(spread, columns=columns), pd.DataFrame(interval, columns=columns), common


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``frame`` (text cells, numbers as they print)."""
    def text(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(text(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---:" if c == "n" else "---" for c in frame.columns) + " |"
    body = ["| " + " | ".join(text(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_summary(summary: pd.DataFrame, out_dir: str | os.PathLike[str], *, scores: list[str], level: Level,
                  title: str = "Study summary") -> list[Path]:
    """``summary.csv`` (every score), ``summary.md`` and ``summary.html`` (the chosen scores)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, html_path = out / "summary.csv", out / "summary.md", out / "summary.html"
    summary.to_csv(csv_path, index=False)
    spread, interval, common = wide_tables(summary, scores)
    over = "training seeds (each model averaged over its metric seeds)" if level == "config" else "metric seeds"
    intro = f"n = number of {over}; ± is the standard deviation (ddof = 1)."
    if common:
        intro += " Every row: " + ", ".join(f"{k} = {_plain_value(v)}" for k, v in common.items()) + "."
    md_path.write_text(
        f"# {title}\n\n{intro}\n\n## Mean ± standard deviation\n\n{markdown_table(spread)}\n\n"
        f"## 95% confidence interval of the mean (Student's t)\n\n{markdown_table(interval)}\n",
        encoding="utf-8",
    )
    html_path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>"
        "<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{padding:2px 8px;"
        "border-bottom:1px solid #ccc;text-align:right}}</style></head><body>\n<h1>{0}</h1><p>{1}</p>\n"
        "<h2>Mean ± standard deviation</h2>\n{2}\n<h2>95% confidence interval of the mean (Student's t)</h2>\n{3}\n"
        "</body></html>\n".format(_escape(title), _escape(intro), spread.to_html(index=False, na_rep="–"),
                                  interval.to_html(index=False, na_rep="–")),
        encoding="utf-8",
    )
    return [csv_path, md_path, html_path]


def _plain_value(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:g}"
    return str(value)


def _escape(text: str) -> str:
    import html

    return html.escape(text)


__all__ = ["config_columns", "default_level", "encoder_means", "markdown_table", "summarise", "wide_tables",
           "write_summary"]
