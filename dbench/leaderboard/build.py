"""Build the leaderboard: read result files, rank them by the challenge rule, write README.md and index.html.

Results are only compared with results of the same protocol (name, version and hash), dataset and
representation: each such group is one table. Within a group, entries are ranked on the protocol's
``ranking`` scores (or, for a protocol without one, on every score all its entries report) with
:func:`~dbench.leaderboard.ranking.challenge_ranking`. Reference baselines (``"baseline": true``) are
ranked like any entry, each as its own participant, and marked as baselines.

A file that fails validation, whose protocol hash does not match its resolved protocol, or whose
parameters differ from its protocol's is refused: one line each, naming the file; the pages are still
built from the valid files. Evaluations with status ``failed`` are listed below their table, unranked.
Submission order (the tie-break) is the order of the files' paths: ``dbench score`` names its result
files ``NNN-<submission>-...json`` in submission order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from dbench._json import canonical_json
from dbench.errors import ConfigError
from dbench.evaluation.result import EvaluationResult, read_result
from dbench.leaderboard.ranking import (
    MEAN_RANK,
    POSITION,
    challenge_ranking,
    rank_column,
)


@dataclass(frozen=True)
class LoadedResult:
    """A validated result file and its path relative to the results folder (its submission order)."""

    path: str
    result: EvaluationResult


@dataclass
class BuildReport:
    """What a build read, refused and wrote."""

    n_files: int
    n_ranked: int
    refused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# Reading


def protocol_conflict(result: EvaluationResult) -> str | None:
    """Why ``result`` does not follow the protocol it names (None when it does).

    A result made with ``--set``, ``--seed`` or another override still names its protocol, but its
    numbers are not comparable with the protocol's other results.
    """
    from dbench.protocols import hash_resolved

    record = result.protocol
    resolved = record.resolved
    if hash_resolved(resolved) != record.hash:
        return "protocol.hash does not match protocol.resolved (was the file edited?)"
    label = f"protocol {record.name} v{record.version}"
    if list(result.seeds) != list(resolved.get("seeds", [])):
        return f"seeds {list(result.seeds)} differ from {label}'s {resolved.get('seeds')}"
    if result.dataset not in resolved.get("datasets", []):
        return f"dataset {result.dataset!r} is not one of {label}'s {resolved.get('datasets')}"
    if result.representation not in resolved.get("representation", []):
        return f"representation {result.representation!r} is not one of {label}'s {resolved.get('representation')}"
    protocol_metrics = resolved.get("metrics", {})
    for metric in result.scores:
        if metric not in protocol_metrics:
            return f"metric {metric!r} is not part of {label}"
        if result.metric_params and result.metric_params.get(metric) != protocol_metrics[metric]:
            return f"metric_params.{metric} differ from {label}'s (evaluated with overrides?)"
    return None


def collect_results(results_dir: str | Path) -> tuple[list[LoadedResult], list[str]]:
    """Every ``*.json`` under ``results_dir`` (recursively, sorted by path): valid ones and refusals."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(f"--results {root}: no such folder; give the folder holding result JSON files")
    loaded: list[LoadedResult] = []
    refused: list[str] = []
    for path in sorted(root.rglob("*.json")):
        relative = path.relative_to(root).as_posix()
        try:
            result = read_result(path)
        except ConfigError as exc:
            refused.append(str(exc))
            continue
        conflict = protocol_conflict(result)
        if conflict:
            refused.append(f"{path}: {conflict}")
            continue
        loaded.append(LoadedResult(relative, result))
    return loaded, refused


# ------------------------------------------------------------------------------------------------
# Ranking into a plain data structure both renderers use


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _participant(result: EvaluationResult) -> str:
    if result.baseline:
        return f"baseline:{result.entry_name}"
    if result.submission and result.submission.team:
        return f"team:{result.submission.team}"
    return f"entry:{result.entry_name}"


def _score_columns(results: list[EvaluationResult]) -> tuple[list[str], str]:
    """The scores a group is ranked on, and where that list came from."""
    ranking = results[0].protocol.resolved.get("ranking")
    if ranking:
        return list(ranking), "the protocol's ranking scores"
    common = None
    for result in results:
        keys = {f"{metric}.{key}" for metric, values in result.scores.items() for key in values}
        common = keys if common is None else common & keys
    return sorted(common or ()), "every score all entries report (the protocol lists no ranking scores)"


def _group(results: list[LoadedResult]) -> dict[str, Any]:
    first = results[0].result
    record = first.protocol
    ranked_results = [r for r in results if r.result.status != "failed"]
    columns, columns_from = _score_columns([r.result for r in ranked_results] or [first])
    group: dict[str, Any] = {
        "id": f"{record.name}-v{record.version}-{first.dataset}-{first.representation}-{record.hash[:8]}",
        "title": f"{record.name} v{record.version} · {first.dataset} · {first.representation} representation",
        "protocol": record.name,
        "version": record.version,
        "hash": record.hash,
        "dataset": first.dataset,
        "representation": first.representation,
        "seeds": list(first.seeds),
        "columns": columns,
        "columns_from": columns_from,
        "rows": [],
        "unranked": [
            {"entry": r.result.entry_name, "file": r.path, "reason": r.result.error or "; ".join(r.result.errors.values())}
            for r in results
            if r.result.status == "failed"
        ],
    }
    if not ranked_results or not columns:
        return group
    frame = pd.DataFrame(
        {
            "index": range(len(ranked_results)),
            "participant": [_participant(r.result) for r in ranked_results],
            "order": range(len(ranked_results)),
            **{c: [r.result.score(c)[0] for r in ranked_results] for c in columns},
        }
    )
    ranked = challenge_ranking(frame, columns)
    for _, row in ranked.iterrows():
        loaded = ranked_results[int(row["index"])]
        result = loaded.result
        submission = result.submission
        group["rows"].append(
            {
                "position": int(row[POSITION]),
                "entry": result.entry_name,
                "team": (submission.team if submission else None) or "",
                "code_url": (submission.code_url if submission else None) or "",
                "baseline": result.baseline,
                "status": result.status,
                "mean_rank": float(row[MEAN_RANK]),
                "ranks": {c: int(row[rank_column(c)]) for c in columns},
                "scores": {c: [_finite_or_none(v) for v in result.score(c)] for c in columns},
                "file": loaded.path,
            }
        )
    n_entries, n_kept = len(ranked_results), len(group["rows"])
    group["n_hidden"] = n_entries - n_kept  # participants' other, lower-ranked entries
    return group


def rank_results(results: list[LoadedResult]) -> list[dict[str, Any]]:
    """One ranked group per (protocol, version, hash, dataset, representation), in a stable order."""
    groups: dict[tuple, list[LoadedResult]] = {}
    for loaded in results:
        r = loaded.result
        key = (r.protocol.name, r.protocol.version, r.dataset, r.representation, r.protocol.hash)
        groups.setdefault(key, []).append(loaded)
    ranked = [_group(groups[key]) for key in sorted(groups)]
    titles = [g["title"] for g in ranked]
    for group in ranked:
        if titles.count(group["title"]) > 1:  # same protocol version, other numbers: say which
            group["title"] += f" · hash {group['hash'][:8]}"
    return ranked


# ------------------------------------------------------------------------------------------------
# Rendering

RANKING_RULE = (
    "Entries are ranked by the NeurIPS 2019 Disentanglement Challenge rule: per score, rank = 1 + the "
    "number of entries with a strictly higher score (ties share a rank); each participant's entry with "
    "the lowest mean rank is kept; the kept entries are ranked again and ordered by mean rank, ties "
    "broken by submission order."
)


def format_score(mean: float | None, std: float | None) -> str:
    """``0.812 ± 0.013`` (the ± part only with several seeds); an en dash for a missing score."""
    if mean is None:
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _md_escape(text: str) -> str:
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def render_markdown(groups: list[dict[str, Any]], refused: list[str]) -> str:
    """The leaderboard as a GitHub Markdown page."""
    lines = [
        "# dbench leaderboard",
        "",
        ("Generated by `dbench leaderboard build`; do not edit by hand. The interactive version is "
         "[index.html](index.html)."),
        "",
        RANKING_RULE + (" Baselines are reference models, ranked like any entry and marked *(baseline)*. "
                        "Scores with several metric seeds show mean ± standard deviation."),
        "",
    ]
    if not groups:
        lines += [("No results yet: run `dbench evaluate ENCODER --protocol challenge --out "
                   "leaderboard/results/NAME.json`, then `dbench leaderboard build --results leaderboard/results/`."), ""]
    for group in groups:
        lines += [
            f"## {_md_escape(group['title'])}",
            "",
            (f"Protocol hash `{group['hash'][:12]}`, metric seeds {group['seeds']}; ranked on "
             f"{group['columns_from']}."),
            "",
        ]
        if group["rows"]:
            header = ["Rank", "Entry", "Team", "Mean rank", *group["columns"]]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join(["---:", "---", "---", "---:"] + ["---:"] * len(group["columns"])) + "|")
            for row in group["rows"]:
                entry = _md_escape(row["entry"])
                if row["code_url"]:
                    entry = f"[{entry}]({row['code_url']})"
                if row["baseline"]:
                    entry += " *(baseline)*"
                if row["status"] == "partial":
                    entry += " *(partial)*"
                cells = [str(row["position"]), entry, _md_escape(row["team"]), f"{row['mean_rank']:.2f}"]
                cells += [format_score(*row["scores"][c]) for c in group["columns"]]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            if group.get("n_hidden"):
                lines += [f"{group['n_hidden']} further entries are not shown: only each participant's best counts.", ""]
        else:
            lines += ["No ranked entries.", ""]
        for item in group["unranked"]:
            lines.append(f"- Not ranked: {_md_escape(item['entry'])} (`{item['file']}`): evaluation failed: "
                         f"{_md_escape(item['reason'])}")
        if group["unranked"]:
            lines.append("")
    if refused:
        lines += ["## Refused result files", ""]
        lines += [f"- {_md_escape(line)}" for line in refused]
        lines.append("")
    return "\n".join(lines)


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``</script>`` can end it early)."""
    text = canonical_json(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(groups: list[dict[str, Any]], refused: list[str]) -> str:
    """The leaderboard as one self-contained HTML page (inline CSS and JS, no network)."""
    template = resources.files("dbench.leaderboard").joinpath("template.html").read_text(encoding="utf-8")
    data = {"groups": groups, "refused": refused, "ranking_rule": RANKING_RULE}
    return template.replace("/*LEADERBOARD_DATA*/{}", _json_for_script(data))


def build_leaderboard(results_dir: str | Path, out_dir: str | Path = "leaderboard") -> BuildReport:
    """Read every result under ``results_dir``; write ``README.md`` and ``index.html`` into ``out_dir``."""
    loaded, refused = collect_results(results_dir)
    groups = rank_results(loaded)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("README.md", render_markdown(groups, refused)), ("index.html", render_html(groups, refused))):
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    n_ranked = sum(len(g["rows"]) for g in groups)
    return BuildReport(n_files=len(loaded) + len(refused), n_ranked=n_ranked, refused=refused, written=written)


__all__ = [
    "RANKING_RULE",
    "BuildReport",
    "LoadedResult",
    "build_leaderboard",
    "collect_results",
    "format_score",
    "protocol_conflict",
    "rank_results",
    "render_html",
    "render_markdown",
]
