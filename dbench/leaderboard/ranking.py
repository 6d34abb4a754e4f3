"""The NeurIPS 2019 Disentanglement Challenge ranking rule, as pure functions on DataFrames.

The challenge scored every submission on several metrics and combined them by rank, not by value, so
that no metric's scale dominates:

1. for each scored metric, an entry's rank is ``1 +`` the number of entries with a strictly higher
   score (equal scores share a rank, "competition ranking"; a missing score, NaN, ranks below every
   number);
2. an entry's *mean rank* is the average of its per-metric ranks;
3. each participant keeps one entry, the one with the lowest mean rank (ties: the earlier
   submission);
4. the kept entries are ranked again by the same rule among themselves, and ordered by mean rank,
   ties broken by submission order.

Higher scores are better for every metric ranked here (all of dbench's headline scores are).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MEAN_RANK = "mean_rank"
POSITION = "position"


def rank_column(name: str) -> str:
    """Name of the column holding the per-metric rank of score column ``name``."""
    return f"rank[{name}]"


def competition_ranks(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """``1 +`` the number of strictly higher scores, per entry; NaN counts as lower than any number.

    >>> competition_ranks([0.5, 0.9, 0.5, float("nan")]).tolist()
    [2, 1, 2, 4]
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    # NaN -> -inf: below every number and equal to the other missing scores.
    keyed = np.where(np.isnan(values), -np.inf, values)
    ascending = np.sort(keyed)
    n_strictly_higher = keyed.size - np.searchsorted(ascending, keyed, side="right")
    return 1 + n_strictly_higher


def metric_ranks(entries: pd.DataFrame, score_columns: Sequence[str]) -> pd.DataFrame:
    """Per-metric competition ranks of ``entries`` (same index, one ``rank[...]`` column per score)."""
    _check_columns(entries, score_columns)
    return pd.DataFrame(
        {rank_column(c): competition_ranks(entries[c].to_numpy(dtype=np.float64)) for c in score_columns},
        index=entries.index,
    )


def mean_ranks(entries: pd.DataFrame, score_columns: Sequence[str]) -> pd.Series:
    """Average of the per-metric ranks of each entry."""
    ranks = metric_ranks(entries, score_columns)
    # Rank sums are exact integers, so equal rank multisets give bit-identical means (ties stay ties).
    return (ranks.sum(axis=1) / len(score_columns)).rename(MEAN_RANK)


def challenge_ranking(
    entries: pd.DataFrame,
    score_columns: Sequence[str],
    *,
    participant: str = "participant",
    order: str = "order",
) -> pd.DataFrame:
    """Rank ``entries`` by the challenge rule; one row per participant, best first.

    Parameters
    ----------
    entries
        One row per evaluated entry, with the score columns, a ``participant`` column (who submitted
        it) and an ``order`` column (submission order: smaller is earlier).
    score_columns
        The scores to rank on, higher is better.

    Returns
    -------
    DataFrame
        The kept entries (each participant's best), with their original columns plus
        ``rank[<score>]`` per score (ranks among the kept entries), ``mean_rank`` and ``position``
        (1, 2, ... in final order), sorted by position.
    """
    _check_columns(entries, [*score_columns, participant, order])
    if not score_columns:
        raise ValueError("score_columns is empty; name at least one score to rank on")
    if entries.empty:
        return entries.assign(
            **{rank_column(c): pd.Series(dtype=np.int64) for c in score_columns},
            **{MEAN_RANK: pd.Series(dtype=np.float64), POSITION: pd.Series(dtype=np.int64)},
        )
    # Stage 1: rank every entry, keep each participant's lowest mean rank (earliest on ties).
    table = entries.assign(**{MEAN_RANK: mean_ranks(entries, score_columns)})
    best = (
        table.sort_values([MEAN_RANK, order], kind="stable")
        .drop_duplicates(subset=participant, keep="first")
        .drop(columns=MEAN_RANK)
    )
    # Stage 2: rank the kept entries among themselves and order them.
    kept = pd.concat([best, metric_ranks(best, score_columns)], axis=1)
    kept[MEAN_RANK] = mean_ranks(best, score_columns)
    kept = kept.sort_values([MEAN_RANK, order], kind="stable")
    kept[POSITION] = np.arange(1, len(kept) + 1)
    return kept


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"entries have no column(s) {', '.join(map(repr, missing))}; columns: {', '.join(map(str, frame.columns))}"
        )


__all__ = [
    "MEAN_RANK",
    "POSITION",
    "challenge_ranking",
    "competition_ranks",
    "mean_ranks",
    "metric_ranks",
    "rank_column",
]
