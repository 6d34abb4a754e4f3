"""The challenge ranking rule on hand-made tables: ties, missing scores, several entries per participant."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dbench.leaderboard.ranking import (
    MEAN_RANK,
    POSITION,
    challenge_ranking,
    competition_ranks,
    mean_ranks,
    metric_ranks,
    rank_column,
)


def test_competition_ranks_count_strictly_higher_scores():
    assert competition_ranks([0.1, 0.9, 0.5]).tolist() == [3, 1, 2]
    # Ties share the best rank and the next rank skips ("1224" ranking).
    assert competition_ranks([0.7, 0.9, 0.7, 0.2]).tolist() == [2, 1, 2, 4]
    assert competition_ranks([0.3, 0.3, 0.3]).tolist() == [1, 1, 1]
    assert competition_ranks([]).tolist() == []


def test_missing_scores_rank_below_every_number_and_tie_with_each_other():
    assert competition_ranks([math.nan, 0.0, -1.0, math.nan]).tolist() == [3, 1, 2, 3]


def test_competition_ranks_match_brute_force_definition():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40) / 4  # many ties
    brute = [1 + sum(other > s for other in scores) for s in scores]
    assert competition_ranks(scores).tolist() == brute
    with pytest.raises(ValueError, match="one-dimensional"):
        competition_ranks(np.zeros((2, 2)))


def test_metric_and_mean_ranks():
    table = pd.DataFrame({"a": [0.9, 0.5, 0.5], "b": [0.1, 0.8, 0.3]}, index=["x", "y", "z"])
    ranks = metric_ranks(table, ["a", "b"])
    assert ranks[rank_column("a")].tolist() == [1, 2, 2]
    assert ranks[rank_column("b")].tolist() == [3, 1, 2]
    assert mean_ranks(table, ["a", "b"]).to_dict() == {"x": 2.0, "y": 1.5, "z": 2.0}
    with pytest.raises(ValueError, match=r"no column.*'c'"):
        metric_ranks(table, ["a", "c"])


def _entries(rows):
    return pd.DataFrame(rows, columns=["entry", "participant", "order", "m1", "m2", "m3"])


def test_one_entry_per_participant_ranked_by_mean_rank():
    entries = _entries([
        ("a", "alice", 0, 0.9, 0.9, 0.1),  # ranks 1 1 3 -> 5/3
        ("b", "bob", 1, 0.5, 0.5, 0.9),    # ranks 2 2 1 -> 5/3 (tie with a: a submitted first)
        ("c", "carol", 2, 0.1, 0.1, 0.5),  # ranks 3 3 2 -> 8/3
    ])
    ranked = challenge_ranking(entries, ["m1", "m2", "m3"])
    assert ranked["entry"].tolist() == ["a", "b", "c"]
    assert ranked[POSITION].tolist() == [1, 2, 3]
    assert ranked[MEAN_RANK].tolist() == pytest.approx([5 / 3, 5 / 3, 8 / 3])
    assert ranked[rank_column("m3")].tolist() == [3, 1, 2]


def test_submission_order_breaks_ties_whatever_the_row_order():
    entries = _entries([
        ("late", "p1", 5, 0.5, 0.5, 0.5),
        ("early", "p2", 1, 0.5, 0.5, 0.5),
    ])
    ranked = challenge_ranking(entries, ["m1", "m2"])
    assert ranked["entry"].tolist() == ["early", "late"]
    assert ranked[MEAN_RANK].tolist() == [1.0, 1.0]


def test_each_participant_keeps_the_best_entry_then_reranks():
    entries = _entries([
        # alice's first entry is her best; her second is worse than everything.
        ("alice-1", "alice", 0, 0.80, 0.70, 0.0),
        ("alice-2", "alice", 3, 0.10, 0.10, 0.0),
        # bob's two entries tie on mean rank over all entries: the earlier one is kept.
        ("bob-1", "bob", 1, 0.90, 0.20, 0.0),
        ("bob-2", "bob", 4, 0.20, 0.90, 0.0),
        ("carol-1", "carol", 2, 0.60, 0.60, 0.0),
    ])
    # Stage-1 ranks over all five entries (m1, m2): alice-1 (2,2), alice-2 (5,5), bob-1 (1,4),
    # bob-2 (4,1), carol-1 (3,3) -> means 2, 5, 2.5, 2.5, 3: keep alice-1, bob-1, carol-1.
    ranked = challenge_ranking(entries, ["m1", "m2"])
    assert ranked["entry"].tolist() == ["alice-1", "bob-1", "carol-1"]
    # Stage 2 among the kept: m1 ranks alice 2, bob 1, carol 3; m2 ranks alice 1, bob 3, carol 2.
    assert ranked[rank_column("m1")].tolist() == [2, 1, 3]
    assert ranked[rank_column("m2")].tolist() == [1, 3, 2]
    # Means: alice 1.5, bob 2.0, carol 2.5.
    assert ranked[MEAN_RANK].tolist() == [1.5, 2.0, 2.5]


def test_reranking_among_kept_entries_can_change_the_order():
    """A dropped entry no longer takes rank places from others: stage 2 ranks differ from stage 1."""
    entries = _entries([
        ("x-1", "x", 0, 0.9, 0.1, 0.0),
        ("x-2", "x", 1, 0.8, 0.0, 0.0),  # dropped: worse than x-1 on both
        ("y-1", "y", 2, 0.7, 0.5, 0.0),
    ])
    # Over all entries x-2 sits between x-1 and y-1 on m1: x-1 (1, 2), x-2 (2, 3), y-1 (3, 1).
    assert mean_ranks(entries, ["m1", "m2"]).tolist() == [1.5, 2.5, 2.0]
    # Without x-2, y-1 moves up on m1 and ties x-1; x-1 stays first as the earlier submission.
    ranked = challenge_ranking(entries, ["m1", "m2"])
    assert ranked["entry"].tolist() == ["x-1", "y-1"]
    assert ranked[rank_column("m1")].tolist() == [1, 2]
    assert ranked[MEAN_RANK].tolist() == [1.5, 1.5]


def test_missing_score_costs_that_metric_only():
    entries = _entries([
        ("full", "a", 0, 0.5, 0.5, 0.0),
        ("partial", "b", 1, math.nan, 0.9, 0.0),
        ("weak", "c", 2, 0.1, 0.1, 0.0),
    ])
    ranked = challenge_ranking(entries, ["m1", "m2"]).set_index("entry")
    assert ranked.loc["partial", rank_column("m1")] == 3
    assert ranked.loc["partial", rank_column("m2")] == 1
    assert ranked.loc["full", MEAN_RANK] == 1.5


def test_empty_table_and_bad_arguments():
    empty = challenge_ranking(_entries([]), ["m1"])
    assert empty.empty and {MEAN_RANK, POSITION, rank_column("m1")} <= set(empty.columns)
    with pytest.raises(ValueError, match="score_columns is empty"):
        challenge_ranking(_entries([("a", "p", 0, 1, 1, 1)]), [])
    with pytest.raises(ValueError, match=r"no column.*'team'"):
        challenge_ranking(_entries([("a", "p", 0, 1, 1, 1)]), ["m1"], participant="team")


def test_input_table_is_not_modified():
    entries = _entries([("a", "p", 0, 0.2, 0.3, 0.4), ("b", "q", 1, 0.3, 0.2, 0.1)])
    before = entries.copy()
    challenge_ranking(entries, ["m1", "m2", "m3"])
    pd.testing.assert_frame_equal(entries, before)
