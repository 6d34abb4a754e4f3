"""The score table of a result, as printed by ``dbench evaluate`` and ``dbench score``."""

from __future__ import annotations

from dbench.evaluation.result import EvaluationResult


def score_rows(result: EvaluationResult) -> list[tuple[str, str, float, float | None, float | None]]:
    """(metric, key, score, spread or None, seconds or None) for every reported score."""
    rows = []
    for metric, keys in result.scores.items():
        seconds = result.seconds.get(metric)
        for key, value in keys.items():
            spread = (result.scores_std or {}).get(metric, {}).get(key)
            rows.append((metric, key, value, spread, seconds))
            seconds = None  # show a metric's time once
    return rows


# A metric with more keys than this (the probes: per factor, per k, spreads) shows only its summary
# keys in the printed table; the JSON result always has every key.
MAX_KEYS_SHOWN = 8


def _is_summary_key(key: str) -> bool:
    return "mean" in key and not key.endswith((":std", ":ci95_low", ":ci95_high"))


def printed_rows(result: EvaluationResult) -> tuple[list[tuple[str, str, float, float | None, float | None]], int]:
    """The rows of the printed table and how many detail rows were left to the JSON result.

    A row's spread is the standard deviation over the metric seeds when there are several, else the
    summary key's own ``:std`` companion (a probe's spread over its training-set draws): see
    :func:`spread_legend`.
    """
    rows, hidden = [], 0
    for metric, keys in result.scores.items():
        metric_rows = [r for r in score_rows(result) if r[0] == metric]
        if len(keys) > MAX_KEYS_SHOWN:
            seconds = metric_rows[0][4]
            kept = [r for r in metric_rows if _is_summary_key(r[1])] or metric_rows[:MAX_KEYS_SHOWN]
            hidden += len(metric_rows) - len(kept)
            # A summary key's own ":std" companion (spread over draws) is shown as its ± spread.
            metric_rows = [
                (m, k, v, sp if sp is not None else keys.get(f"{k}:std"), seconds if i == 0 else None)
                for i, (m, k, v, sp, _) in enumerate(kept)
            ]
        rows.extend(metric_rows)
    return rows, hidden


def spread_legend(result: EvaluationResult) -> list[str]:
    """What the table's ``±`` means: over metric seeds, or over a probe's training-set draws."""
    if len(result.seeds) > 1:
        seeds = ", ".join(map(str, result.seeds))
        return [f"± = standard deviation (ddof=1) over the {len(result.seeds)} metric seeds {seeds}; scores are their means"]
    rows, _ = printed_rows(result)
    over_draws = sorted({metric for metric, _, _, spread, _ in rows if spread is not None})
    lines = []
    for metric in over_draws:
        draws = result.metric_params.get(metric, {}).get("n_draws")
        how_many = f"{draws} " if draws is not None else ""
        lines.append(f"± ({metric}) = standard deviation (ddof=1) over the probe's {how_many}training-set draws, one metric seed")
    return lines


def format_scores(result: EvaluationResult) -> str:
    """A plain-text table: metric, score, seconds; then encoding statistics and any errors."""
    rows, hidden = printed_rows(result)
    seeds = ",".join(str(s) for s in result.seeds)
    title = (
        f"{result.encoder.name} on {result.dataset} ({result.representation} representation, "
        f"protocol {result.protocol.name} v{result.protocol.version}, seed {seeds}, backend {result.backend})"
    )
    header = ("metric", "score", "seconds")
    body = []
    for metric, key, value, spread, seconds in rows:
        score = f"{value:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")
        body.append((f"{metric}.{key}", score, "" if seconds is None else f"{seconds:.2f}"))
    for metric, reason in result.errors.items():
        body.append((metric, "FAILED", reason))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(2)]
    lines = [title, ""]
    lines.append(f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]}")
    lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 7}")
    for name, score, elapsed in body:
        lines.append(f"{name:<{widths[0]}}  {score:>{widths[1]}}  {elapsed}")
    encode_s = result.seconds.get("encode", 0.0)
    rate = f", {result.n_encoded / encode_s:,.0f} images/s" if encode_s > 0 and result.n_encoded else ""
    lines.append("")
    lines.extend(spread_legend(result))
    lines.extend(f"note: {note}" for note in result.notes)
    if hidden:
        lines.append(f"({hidden} per-factor and spread scores more in the JSON result: --out FILE)")
    lines.append(f"encoded {result.n_encoded:,} images in {encode_s:.1f} s{rate}; total {result.seconds.get('total', 0.0):.1f} s")
    return "\n".join(lines)


__all__ = ["MAX_KEYS_SHOWN", "format_scores", "printed_rows", "score_rows", "spread_legend"]
