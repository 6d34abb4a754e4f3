"""Result-file schema, refusing bad files, grouping and ranking results, and the rendered pages."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from leaderboard_data import RANKING, TEST_KEY, demo_results, resolved, result, write_results

from dbench.errors import ConfigError
from dbench.evaluation.result import read_result, validate_result
from dbench.leaderboard.build import (
    build_leaderboard,
    collect_results,
    format_score,
    rank_results,
    render_html,
)


@pytest.fixture(autouse=True)
def _scorer_key(monkeypatch):
    """The demo results are signed with TEST_KEY; the build verifies with the same key."""
    monkeypatch.setenv("DBENCH_SCORER_KEY", TEST_KEY)


# ------------------------------------------------------------------------------------------------
# Schema


def test_demo_results_are_valid():
    for data in demo_results():
        parsed = validate_result(data)
        assert parsed.schema_version == 1
    multi = validate_result(result("m", (0.5, 0.4, 0.3), stds=(0.01, 0.02, 0.03)))
    assert multi.score("dci.disentanglement") == (0.4, 0.02)
    assert math.isnan(multi.score("sap.sap")[0])  # NaN when absent


def _broken(**changes):
    data = result("x", (0.5, 0.5, 0.5))
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize("changes, expected", [
    ({"colour": "red"}, "r.json: colour: unknown key"),
    ({"dataset": _DELETE}, "r.json: dataset: Field required"),
    ({"schema_version": 3}, "r.json: schema_version: 3 is not supported; this dbench reads versions 1, 2"),
    ({"status": "done"}, "r.json: status: Input should be 'ok', 'partial' or 'failed'"),
    ({"status": "failed"}, "status is 'failed' but neither error nor errors says why"),
    ({"error": "boom"}, "status is 'ok' but error/errors are set"),
    ({"protocol__hash": "abc"}, "r.json: protocol.hash: String should match pattern"),
    ({"seeds": [0, 1]}, "2 seeds need scores_std"),
    ({"scores__mig": {"mig": "high"}}, "r.json: scores.mig.mig: Input should be a valid number"),
    ({"submission__code_url": "javascript:alert(1)"}, "r.json: submission.code_url: String should match pattern"),
    ({"representation": "both"}, "r.json: representation: Input should be 'mean' or 'sampled'"),
    ({"baseline": "yes"}, "r.json: baseline: Input should be a valid boolean"),
])
def test_invalid_results_give_one_line_naming_the_key(changes, expected):
    with pytest.raises(ConfigError) as info:
        validate_result(_broken(**changes), "r.json")
    assert "\n" not in str(info.value)
    assert expected in str(info.value)


def test_per_seed_must_match_seeds():
    data = result("m", (0.5, 0.4, 0.3), stds=(0.01, 0.02, 0.03))
    data["per_seed"] = data["per_seed"][:2]
    with pytest.raises(ConfigError, match="per_seed must hold one run per seed"):
        validate_result(data, "r.json")
    data = result("m", (0.5, 0.4, 0.3), stds=(0.01, 0.02, 0.03))
    data["scores_std"]["mig"]["other"] = 0.1
    with pytest.raises(ConfigError, match=r"scores_std.mig has keys missing from scores: other"):
        validate_result(data, "r.json")


def test_read_result_names_unreadable_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        read_result(bad)
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read result file"):
        read_result(tmp_path / "missing.json")


def test_result_writer_output_is_accepted_by_the_schema(tmp_path):
    """What dbench.evaluation.result writes is what the leaderboard reads (one model, both ways)."""
    from dbench.evaluation.result import EvaluationResult

    data = result("w", (0.5, 0.4, 0.3))
    fields = {k: v for k, v in data.items() if k not in ("schema_version", "dbench_version")}
    path = EvaluationResult(**fields).write(tmp_path / "w.json")
    assert read_result(path).entry_name == "w"


# ------------------------------------------------------------------------------------------------
# Collecting and refusing


def test_bad_files_are_refused_by_name_and_the_rest_are_ranked(tmp_path):
    good = demo_results()[:3]
    edited = result("edited", (0.9, 0.9, 0.9))
    edited["protocol"]["resolved"]["metrics"]["mig"]["n_bins"] = 10  # hash no longer matches
    overridden = result("overridden", (0.9, 0.9, 0.9))
    overridden["metric_params"]["mig"] = {"n_train": 500, "n_bins": 20}
    reseeded = result("reseeded", (0.9, 0.9, 0.9))
    reseeded["seeds"] = [7]
    paths = write_results(tmp_path, [*good, edited, overridden, reseeded, {"schema_version": 1}])
    (tmp_path / "notes.json").write_text("[1, 2", encoding="utf-8")

    loaded, refused = collect_results(tmp_path)
    assert [item.path for item in loaded] == [p.name for p in paths[:3]]
    assert len(refused) == 5
    assert all("\n" not in line for line in refused)
    joined = "\n".join(refused)
    assert f"{paths[3]}: protocol.hash does not match protocol.resolved" in joined
    assert f"{paths[4]}: metric_params.mig differ from protocol challenge v1's" in joined
    assert f"{paths[5]}: seeds [7] differ from protocol challenge v1's [0]" in joined
    assert f"{paths[6]}: " in joined and "notes.json: not valid JSON" in joined


def test_missing_results_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"--results .*no such folder"):
        collect_results(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------
# Ranking into groups


def _groups(tmp_path, results):
    write_results(tmp_path / "results", results)
    loaded, refused = collect_results(tmp_path / "results")
    assert refused == []
    return rank_results(loaded)


def test_demo_board_ranks_best_entry_per_participant(tmp_path):
    (group,) = _groups(tmp_path, demo_results())
    assert group["columns"] == RANKING
    rows = group["rows"]
    assert [r["entry"] for r in rows] == ["ada-v2", "carol", "bob-v1", "factor-vae", "beta-vae"]
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5]
    # Among the kept entries: ada-v2 ranks 1, 1, 3 -> 5/3.
    assert rows[0]["ranks"] == {"factor_vae.eval_accuracy": 1, "dci.disentanglement": 1, "mig.mig": 3}
    assert rows[0]["mean_rank"] == pytest.approx(5 / 3)
    assert [r["baseline"] for r in rows] == [False, False, False, True, True]
    assert group["n_hidden"] == 2
    assert group["unranked"] == [{"entry": "dave", "file": "007-dave.json", "reason": "encoder raised RuntimeError"}]


def test_results_of_different_protocols_or_representations_are_not_mixed(tmp_path):
    other = resolved(name="quick", ranking=["mig.mig"])
    sampled = result("s", (0.1, 0.1, 0.1))
    sampled["representation"] = "sampled"
    sampled["protocol"]["resolved"] = resolved(representation=["mean", "sampled"])
    from dbench.protocols import hash_resolved

    sampled["protocol"]["hash"] = hash_resolved(sampled["protocol"]["resolved"])
    groups = _groups(tmp_path, [result("a", (0.5, 0.5, 0.5)), result("b", (0.2, 0.2, 0.2), protocol=other), sampled])
    assert [(g["protocol"], g["representation"], [r["entry"] for r in g["rows"]]) for g in groups] == [
        ("challenge", "mean", ["a"]),
        ("challenge", "sampled", ["s"]),
        ("quick", "mean", ["b"]),
    ]
    assert groups[2]["columns"] == ["mig.mig"]


def test_protocol_without_ranking_ranks_on_scores_all_entries_report(tmp_path):
    plain = resolved(name="plain", ranking=None)
    first, second = result("a", (0.5, 0.5, 0.5), protocol=plain), result("b", (0.6, 0.4, 0.5), protocol=plain)
    del second["scores"]["mig"], second["metric_params"]["mig"]
    (group,) = _groups(tmp_path, [first, second])
    assert group["columns"] == ["dci.disentanglement", "factor_vae.eval_accuracy"]
    assert "protocol lists no ranking scores" in group["columns_from"]


def test_missing_score_of_a_partial_result_ranks_last_on_that_metric(tmp_path):
    partial = result("p", (0.9, 0.9, 0.9))
    del partial["scores"]["mig"]
    partial.update(status="partial", errors={"mig": "failed to converge"})
    (group,) = _groups(tmp_path, [partial, result("q", (0.1, 0.1, 0.1))])
    by_entry = {r["entry"]: r for r in group["rows"]}
    assert by_entry["p"]["ranks"]["mig.mig"] == 2 and by_entry["p"]["scores"]["mig.mig"] == [None, None]
    assert by_entry["p"]["status"] == "partial"


# ------------------------------------------------------------------------------------------------
# Pages


def test_format_score():
    assert format_score(0.81234, None) == "0.812"
    assert format_score(0.81234, 0.0126) == "0.812 ± 0.013"
    assert format_score(None, None) == "–"


def test_build_writes_markdown_with_ranks_spreads_and_baselines(tmp_path):
    results = demo_results() + [result("multi", (0.5, 0.5, 0.5), team="m", stds=(0.01, 0.02, 0.03))]
    write_results(tmp_path / "results", results)
    report = build_leaderboard(tmp_path / "results", tmp_path / "out")
    assert report.refused == [] and report.n_files == len(results) and report.n_ranked == 6
    readme = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| ")]
    assert table[0] == "| Rank | Entry | Team | Mean rank | " + " | ".join(c.replace("_", "\\_") for c in RANKING) + " |"
    assert "| 1 | ada-v2 | ada | 1.67 | 0.900 | 0.500 | 0.150 |" in table
    assert "| [bob-v1](https://example.org/bob) | bob |" in readme
    assert "factor-vae *(baseline)*" in readme
    # Several seeds make another protocol hash, hence a table of its own.
    assert "| 1 | multi | m | 1.00 | 0.500 ± 0.010 | 0.500 ± 0.020 | 0.500 ± 0.030 |" in table
    assert "carol &lt;script&gt;alert\\(1\\)&lt;/script&gt;" in readme  # escaped, not raw HTML
    assert "<" not in readme.replace("<!--", "")
    assert "Not ranked: dave (007-dave.json): evaluation failed" in readme


def test_build_is_deterministic_and_self_contained(tmp_path):
    write_results(tmp_path / "results", demo_results())
    build_leaderboard(tmp_path / "results", tmp_path / "a")
    build_leaderboard(tmp_path / "results", tmp_path / "b")
    for name in ("README.md", "index.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    html = (tmp_path / "a" / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html), "page must not load anything"
    assert "@import" not in html and "url(" not in html
    # The only closing script tags are the page's own two; the team name's is escaped inside JSON.
    assert html.count("</script>") == 2
    data = re.search(r'<script id="leaderboard-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    parsed = json.loads(data)
    assert [r["entry"] for r in parsed["groups"][0]["rows"]][:2] == ["ada-v2", "carol"]
    assert parsed["groups"][0]["rows"][1]["team"] == "carol <script>alert(1)</script>"


def test_empty_results_give_pages_that_say_so(tmp_path):
    (tmp_path / "results").mkdir()
    report = build_leaderboard(tmp_path / "results", tmp_path / "out")
    assert report.n_files == 0 and report.n_ranked == 0
    assert "No results yet" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert '"groups":[]' in render_html([], [])


def test_cli_build_exit_status(tmp_path, capsys):
    from dbench._cli.main import main

    write_results(tmp_path / "results", demo_results()[:3])
    assert main(["leaderboard", "build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "3 ranked entries from 3 result files" in capsys.readouterr().out
    (tmp_path / "results" / "zzz.json").write_text("{}", encoding="utf-8")
    assert main(["leaderboard", "build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("refused: ") and "zzz.json" in captured.err and captured.err.count("\n") == 1
    assert (tmp_path / "out" / "index.html").is_file()
    assert main(["leaderboard", "build", "--results", str(tmp_path / "nowhere")]) != 0
    assert "no such folder" in capsys.readouterr().err


def test_committed_leaderboard_pages_are_current():
    """leaderboard/ in the repository is what `dbench leaderboard build --results leaderboard/results` renders."""
    repo = Path(__file__).resolve().parent.parent
    pages = repo / "leaderboard"
    if not (pages / "README.md").is_file():
        pytest.skip("no generated leaderboard/ in this checkout")
    results = pages / "results"
    loaded, refused = collect_results(results) if results.is_dir() else ([], [])
    from dbench.leaderboard.build import render_markdown

    assert (pages / "README.md").read_text(encoding="utf-8") == render_markdown(rank_results(loaded), refused)
