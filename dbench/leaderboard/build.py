"""Build the leaderboard: read result files, rank them by the challenge rule, write README.md and index.html.

Results are only compared with results of the same protocol (name, version and hash), dataset and
representation: each such group is one table. Within a group, entries are ranked on the protocol's
``ranking`` scores (or, for a protocol without one, on every score all its entries report) with
:func:`~dbench.leaderboard.ranking.challenge_ranking`. Reference baselines (``"baseline": true``) are
ranked like any entry, each as its own participant, and marked as baselines.

A file is refused, one line each naming the file, when it is not a regular file, is larger than
:data:`MAX_RESULT_BYTES` or nested deeper than :data:`MAX_RESULT_DEPTH` (checked before parsing),
fails validation, lacks a valid signature where one is required (:mod:`dbench.submissions.signing`),
has a protocol hash that does not match its resolved protocol, parameters that differ from its
protocol's, or a score that is not finite or outside its metric's declared range. The pages are still
built from the valid files. Evaluations with status ``failed`` are listed below their table, unranked.
Submission order (the tie-break) is the order of the files' paths: ``dbench score`` names its result
files ``<UTC time>-<team>-<name>-<hash>-...json``.

Every user-supplied string is cleaned and escaped (:mod:`dbench.leaderboard.text`); the pages are
written to a temporary file and renamed, so a reader, a concurrent build or a full disk never sees a
truncated page.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from dbench._json import canonical_json, loads_bounded
from dbench.errors import ConfigError
from dbench.evaluation.result import EvaluationResult, score_problem, validate_result
from dbench.leaderboard import text
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
    """What a build read, refused and wrote (``errors``: pages that could not be written)."""

    n_files: int
    n_ranked: int
    refused: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


#: A result file is a few kB; anything larger than this, or nested deeper, is not one dbench wrote.
MAX_RESULT_BYTES = 4 << 20
MAX_RESULT_DEPTH = 32
_CHALLENGE = re.compile(r"^challenge([_.-].*)?$")


def is_challenge_protocol(name: str) -> bool:
    """Whether results of protocol ``name`` must be signed by default (``challenge``, ``challenge-2026``...)."""
    return bool(_CHALLENGE.match(name))


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


def _read_bytes(path: Path) -> bytes:
    """A result file's bytes: a regular file (not a link, FIFO or device) under the size cap."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise ConfigError(f"{path}: {kind}; put the result file itself in the folder")
    if info.st_size > MAX_RESULT_BYTES:
        raise ConfigError(f"{path}: {info.st_size:,} bytes is larger than the {MAX_RESULT_BYTES:,}-byte limit for "
                          "a result file; it is not a file dbench wrote")
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_RESULT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read result file ({exc.strerror or exc})") from None


def read_result_file(path: Path) -> tuple[bytes, EvaluationResult]:
    """A result file's bytes and validated content, read with the size and depth caps (one-line ConfigError)."""
    data = _read_bytes(path)
    parsed = loads_bounded(data, source=str(path), max_bytes=MAX_RESULT_BYTES, max_depth=MAX_RESULT_DEPTH)
    return data, validate_result(parsed, str(path))


def collect_results(results_dir: str | Path, *, require_signed: bool | None = None,
                    key: bytes | None = None) -> tuple[list[LoadedResult], list[str]]:
    """Every ``*.json`` under ``results_dir`` (recursively, sorted by path): valid ones and refusals.

    ``require_signed``: True refuses every file without a valid signature, False checks none, None
    (the default) requires them for challenge protocols (:func:`is_challenge_protocol`) and, once the
    folder holds any signature, for every file. ``key`` verifies them (default: the scorer's key).
    """
    from dbench.submissions.signing import SUFFIX, load_key, verify

    root = Path(results_dir)
    if not root.is_dir():
        raise ConfigError(f"--results {root}: no such folder; give the folder holding result JSON files")
    paths = sorted(root.rglob("*.json"))
    any_signed = require_signed is None and any(root.rglob(f"*.json{SUFFIX}"))
    loaded: list[LoadedResult] = []
    refused: list[str] = []
    for path in paths:
        relative = path.relative_to(root).as_posix()
        try:
            data, result = read_result_file(path)
        except ConfigError as exc:
            refused.append(str(exc))
            continue
        needed = require_signed if require_signed is not None else (any_signed or is_challenge_protocol(result.protocol.name))
        if needed:
            key = key or load_key(create=False)
            if key is None:
                raise ConfigError(
                    f"{path}: results of protocol {result.protocol.name!r} must be signed, but there is no scorer key "
                    f"to verify them; set DBENCH_SCORER_KEY or use the scorer's key file (--no-require-signed "
                    "builds an unverified board)")
            unsigned = verify(data, path, key)
            if unsigned:
                refused.append(f"{path}: {unsigned}")
                continue
        conflict = protocol_conflict(result)  # scores were checked by validate_result (score_problem)
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
        "title": text.clean(f"{record.name} v{record.version} · {first.dataset} · {first.representation} representation",
                            text.MAX_REASON),
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
            {"entry": text.clean(r.result.entry_name), "file": text.clean(r.path, text.MAX_REASON),
             "reason": text.clean(r.result.error or "; ".join(r.result.errors.values()), text.MAX_REASON)}
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
                "entry": text.clean(result.entry_name),
                "team": text.clean((submission.team if submission else None) or ""),
                "code_url": text.safe_url((submission.code_url if submission else None) or ""),
                "baseline": result.baseline,
                "status": result.status,
                "mean_rank": float(row[MEAN_RANK]),
                "ranks": {c: int(row[rank_column(c)]) for c in columns},
                "scores": {c: [_finite_or_none(v) for v in result.score(c)] for c in columns},
                "file": text.clean(loaded.path, text.MAX_REASON),
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
            f"## {text.markdown(group['title'], text.MAX_REASON)}",
            "",
            (f"Protocol hash `{group['hash'][:12]}`, metric seeds {group['seeds']}; ranked on "
             f"{group['columns_from']}."),
            "",
        ]
        if group["rows"]:
            header = ["Rank", "Entry", "Team", "Mean rank", *(text.markdown(c) for c in group["columns"])]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join(["---:", "---", "---", "---:"] + ["---:"] * len(group["columns"])) + "|")
            for row in group["rows"]:
                entry = text.markdown(row["entry"])
                if row["code_url"]:
                    entry = f"[{entry}]({row['code_url']})"  # safe_url: percent-encoded, http(s) only
                if row["baseline"]:
                    entry += " *(baseline)*"
                if row["status"] == "partial":
                    entry += " *(partial)*"
                cells = [str(row["position"]), entry, text.markdown(row["team"]), f"{row['mean_rank']:.2f}"]
                cells += [format_score(*row["scores"][c]) for c in group["columns"]]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            if group.get("n_hidden"):
                lines += [f"{group['n_hidden']} further entries are not shown: only each participant's best counts.", ""]
        else:
            lines += ["No ranked entries.", ""]
        for item in group["unranked"]:
            lines.append(f"- Not ranked: {text.markdown(item['entry'])} ({text.markdown(item['file'], text.MAX_REASON)}): "
                         f"evaluation failed: {text.markdown(item['reason'], text.MAX_REASON)}")
        if group["unranked"]:
            lines.append("")
    if refused:
        lines += ["## Refused result files", ""]
        lines += [f"- {text.markdown(line, text.MAX_REASON)}" for line in refused]
        lines.append("")
    return "\n".join(lines)


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``</script>`` can end it early)."""
    text = canonical_json(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(groups: list[dict[str, Any]], refused: list[str]) -> str:
    """The leaderboard as one self-contained HTML page (inline CSS and JS, no network)."""
    template = resources.files("dbench.leaderboard").joinpath("template.html").read_text(encoding="utf-8")
    data = {"groups": groups, "refused": [text.clean(line, text.MAX_REASON) for line in refused],
            "ranking_rule": RANKING_RULE}
    return template.replace("/*LEADERBOARD_DATA*/{}", _json_for_script(data))


def write_page(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename (never a truncated page)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a web server or a colleague may read the page
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_leaderboard(results_dir: str | Path, out_dir: str | Path = "leaderboard", *,
                      require_signed: bool | None = None, key: bytes | None = None) -> BuildReport:
    """Read every result under ``results_dir``; write ``README.md`` and ``index.html`` into ``out_dir``.

    ``require_signed`` and ``key``: see :func:`collect_results`. A page that cannot be written (a
    full disk) leaves the previous page in place and is reported in ``errors``.
    """
    loaded, refused = collect_results(results_dir, require_signed=require_signed, key=key)
    groups = rank_results(loaded)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, errors = [], []
    for name, render in (("README.md", render_markdown), ("index.html", render_html)):
        path = out / name
        try:
            write_page(path, render(groups, refused))
        except OSError as exc:
            errors.append(f"{path}: cannot write the page ({exc.strerror or exc}); the previous page is unchanged")
            continue
        written.append(path)
    n_ranked = sum(len(g["rows"]) for g in groups)
    return BuildReport(n_files=len(loaded) + len(refused), n_ranked=n_ranked, refused=refused, written=written,
                       errors=errors)


__all__ = [
    "RANKING_RULE",
    "BuildReport",
    "LoadedResult",
    "build_leaderboard",
    "collect_results",
    "format_score",
    "is_challenge_protocol",
    "protocol_conflict",
    "rank_results",
    "read_result_file",
    "render_html",
    "render_markdown",
    "score_problem",
    "write_page",
]
