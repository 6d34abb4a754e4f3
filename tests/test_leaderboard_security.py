"""The leaderboard against hostile result files: forged, edited, out of range, injected, huge, deep, racing."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from leaderboard_data import TEST_KEY, demo_results, resolved, result, write_results

from dbench.errors import ConfigError
from dbench.leaderboard.build import build_leaderboard, collect_results
from dbench.submissions.signing import signature_path, signature_text

KEY = TEST_KEY.encode()


@pytest.fixture(autouse=True)
def _scorer_key(monkeypatch):
    monkeypatch.setenv("DBENCH_SCORER_KEY", TEST_KEY)


def _entries(folder: Path, **options) -> tuple[list[str], list[str]]:
    loaded, refused = collect_results(folder, **options)
    return [r.result.entry_name for r in loaded], refused


def test_forged_and_edited_results_are_refused_naming_each(tmp_path):
    folder = tmp_path / "results"
    good = write_results(folder, demo_results()[:3])
    forged = folder / "forged.json"
    forged.write_text(json.dumps(result("forged", (1.0, 1.0, 1.0), team="mallory")), encoding="utf-8")  # no signature
    edited = folder / "edited.json"
    data = result("edited", (0.1, 0.1, 0.1), team="eve")
    edited.write_text(json.dumps(data), encoding="utf-8")
    signature_path(edited).write_text(signature_text(edited.read_bytes(), KEY))
    edited.write_text(json.dumps({**data, "scores": {**data["scores"], "mig": {"mig": 0.99}}}), encoding="utf-8")
    other_key = folder / "other-key.json"
    other_key.write_text(json.dumps(result("other", (0.9, 0.9, 0.9))), encoding="utf-8")
    signature_path(other_key).write_text(signature_text(other_key.read_bytes(), b"another-key-" * 4))
    made_up = folder / "made-up-signature.json"
    made_up.write_text(json.dumps(result("made-up", (0.9, 0.9, 0.9))), encoding="utf-8")
    real = json.loads(signature_text(made_up.read_bytes(), KEY))
    signature_path(made_up).write_text(json.dumps({**real, "hmac": "0" * 64}))

    names, refused = _entries(folder)
    assert len(good) == 3 and names == ["ada-v1", "beta-vae", "bob-v1"]  # the genuine ones, nothing else
    joined = "\n".join(refused)
    assert f"{forged}: unsigned (no forged.json.sig)" in joined
    assert f"{edited}: its signature does not match its content (the file was edited after scoring)" in joined
    assert f"{other_key}: signed with another scorer key" in joined
    assert f"{made_up}: its signature does not match its content" in joined


def _signed(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    signature_path(path).write_text(signature_text(path.read_bytes(), KEY))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: d["scores"]["mig"].update(mig=float("inf")), "score 'mig' = inf is not finite"),
    (lambda d: d["scores"]["mig"].update(mig=float("nan")), "score 'mig' = nan is not finite"),
    (lambda d: d["scores"]["dci"].update(disentanglement=1e3), "is outside its declared range [0.0, 1.0]"),
    (lambda d: d["scores"]["mig"].update(made_up=0.5), "score 'made_up' is not declared"),
])
def test_scores_outside_their_declaration_are_refused_even_when_signed(tmp_path, change, message):
    data = result("cheat", (0.5, 0.5, 0.5))
    change(data)
    path = _signed(tmp_path, "cheat", data)
    names, refused = _entries(tmp_path)
    assert names == [] and len(refused) == 1
    assert refused[0].startswith(f"{path}: scores: metrics.") and message in refused[0]


def test_a_spread_or_seed_score_out_of_range_is_refused(tmp_path):
    data = result("multi", (0.5, 0.5, 0.5), stds=(0.01, 0.01, 0.01))
    data["per_seed"][1] = copy.deepcopy(data["per_seed"][1])
    data["per_seed"][1]["scores"]["mig"]["mig"] = -3.0
    _signed(tmp_path, "seed", data)
    negative = result("neg-std", (0.5, 0.5, 0.5), stds=(0.01, 0.01, -0.01))
    _signed(tmp_path, "std", negative)
    _, refused = _entries(tmp_path)
    assert any("per_seed[1]: metrics.mig: score 'mig' = -3.0 is outside" in line for line in refused)
    assert any("scores_std.mig.mig = -0.01 is not a finite, non-negative spread" in line for line in refused)


def test_which_files_need_a_signature(tmp_path, monkeypatch):
    quick = resolved(name="quick", ranking=["mig.mig"])
    plain = tmp_path / "plain"
    write_results(plain, [result("a", (0.5, 0.5, 0.5), protocol=quick)], sign=False)
    assert _entries(plain)[0] == ["a"]  # a researcher's own board of a non-challenge protocol
    assert _entries(plain, require_signed=True)[1][0].endswith("only results written by `dbench score` are accepted")
    # Once the folder holds a signature, every file needs one (a forger cannot dodge by renaming the protocol).
    mixed = tmp_path / "mixed"
    write_results(mixed, [result("signed", (0.5, 0.5, 0.5))])
    (mixed / "zzz-quick.json").write_text(json.dumps(result("dodger", (0.9, 0.9, 0.9), protocol=quick)))
    names, refused = _entries(mixed)
    assert names == ["signed"] and "zzz-quick.json: unsigned" in refused[0]
    unsigned = tmp_path / "unsigned"
    write_results(unsigned, [result("u", (0.5, 0.5, 0.5))], sign=False)
    assert _entries(unsigned, require_signed=False)[0] == ["u"]
    monkeypatch.delenv("DBENCH_SCORER_KEY")
    monkeypatch.setenv("DBENCH_CONFIG_DIR", str(tmp_path / "no-config"))
    with pytest.raises(ConfigError, match="must be signed, but there is no scorer key to verify them"):
        collect_results(unsigned)
    assert not (tmp_path / "no-config").exists()  # verifying never creates a key


def test_sign_command_signs_valid_results_only(tmp_path, capsys):
    from dbench._cli.main import main

    (path,) = write_results(tmp_path / "results", [result("baseline", (0.5, 0.5, 0.5), baseline=True)], sign=False)
    bad = tmp_path / "results" / "bad.json"
    bad.write_text(json.dumps({**result("bad", (0.5, 0.5, 0.5)), "scores": {"mig": {"mig": 2.0}}}))
    assert main(["leaderboard", "sign", str(path), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"signed {path}" in captured.out and "not signed:" in captured.err and "bad.json" in captured.err
    assert signature_path(path).is_file() and not signature_path(bad).exists()
    assert _entries(tmp_path / "results", require_signed=True)[0] == ["baseline"]


# -- hostile text ------------------------------------------------------------------------------------

HOSTILE = {
    "name": "<script>window.__pwned=1</script>`code`*bold*",
    "team": "evil\n| fake | row | with | many | cells |\u202etxet",
    "code_url": "https://x/)<img/src=x/onerror=window.__pwned=2>|cell",
}


def _hostile_board(tmp_path: Path) -> Path:
    hostile = result("x", (0.9, 0.9, 0.9), team=HOSTILE["team"], code_url=HOSTILE["code_url"])
    hostile["submission"]["name"] = HOSTILE["name"]
    link = result("link", (0.8, 0.8, 0.8), team="![pic](https://evil.example/x.png)")
    link["submission"]["name"] = "[click](https://evil.example) &lt;b&gt; " + "long " * 500
    failed = result("f", (0, 0, 0), status="failed")
    failed["error"] = "<img src=x onerror=window.__pwned=3> | broken"
    write_results(tmp_path / "results", [hostile, link, *demo_results()[:2], failed])
    report = build_leaderboard(tmp_path / "results", tmp_path / "out")
    assert report.refused == [] and report.errors == []
    return tmp_path / "out"


def _tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


def test_markdown_renders_hostile_fields_as_text(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    readme = (_hostile_board(tmp_path) / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4  # header, rule, four ranked rows: the newline made no row
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(readme)
    tags = _tags(html)
    assert {tag for tag, _ in tags} <= {"h1", "h2", "p", "a", "table", "thead", "tbody", "tr", "th", "td", "ul", "li",
                                        "code", "em"}, tags
    assert set(re.findall(r"<em>(.*?)</em>", html)) <= {"(baseline)", "(partial)"}  # the page's own emphasis only
    assert all(not name.startswith("on") for _, attrs in tags for name, _ in attrs)
    assert html.count("<code>") == len(re.findall(r"(?<!\\)`", readme)) // 2  # only the page's own code spans
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    header_cells = html.split("<thead>")[1].count("<th")
    assert all(row.count("<td") == header_cells for row in rows)  # no cell broke out
    links = [part.split('"')[0] for part in html.split('href="')[1:]]
    assert links and all(link.startswith(("https://", "index.html")) for link in links)
    assert "https://x/%29%3Cimg/src=x/onerror=window.__pwned=2%3E%7Ccell" in links
    assert "\u202e" not in readme and "long long" in readme and "long " * 100 not in readme  # capped


def test_html_page_renders_hostile_fields_as_text_in_a_browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from test_leaderboard_browser import CHROMEDRIVER, CHROMIUM, FLAGS

    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver")
    from selenium.webdriver.chrome.service import Service

    out = _hostile_board(tmp_path)
    markdown_it = pytest.importorskip("markdown_it")
    rendered = out / "readme.html"
    rendered.write_text(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(
        (out / "README.md").read_text(encoding="utf-8")), encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        for page in ("index.html", "readme.html"):
            driver.get((out / page).as_uri())
            time.sleep(0.3)
            assert driver.execute_script("return window.__pwned === undefined"), page
            assert driver.execute_script("return document.querySelectorAll('img, iframe, [onerror]').length") == 0
            scripts = driver.execute_script("return document.querySelectorAll('script').length")
            assert scripts == (2 if page == "index.html" else 0)
            hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)")
            assert all(h.startswith(("https://", "file://")) for h in hrefs), hrefs
        driver.get((out / "index.html").as_uri())
        text = driver.execute_script("return document.body.innerText")
        assert "<script>window.__pwned=1</script>" in text  # shown, as text
    finally:
        driver.quit()


# -- huge, deep, special files -----------------------------------------------------------------------


def test_huge_deep_and_special_files_are_refused_and_the_rest_build(tmp_path):
    folder = tmp_path / "results"
    write_results(folder, demo_results()[:2])
    (folder / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "deep-object.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    huge = json.dumps({"x": "a" * (5 << 20)})
    (folder / "huge.json").write_text(huge)
    os.mkfifo(folder / "fifo.json")  # opening it would block forever
    (folder / "link.json").symlink_to("/dev/zero")
    report = build_leaderboard(folder, tmp_path / "out")
    assert report.n_ranked == 2 and (tmp_path / "out" / "README.md").is_file()
    joined = "\n".join(report.refused)
    assert "deep.json: nested 200000 levels deep (at most 32 allowed)" in joined
    assert "deep-object.json: nested 50000 levels deep" in joined
    assert f"huge.json: {len(huge):,} bytes is larger than the 4,194,304-byte limit" in joined
    assert "fifo.json: not a regular file" in joined and "link.json: a symbolic link" in joined
    assert all("\n" not in line for line in report.refused)


# -- writing pages -----------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_previous_page_whole(tmp_path, monkeypatch, capsys):
    import dbench.leaderboard.build as build

    write_results(tmp_path / "results", demo_results()[:3])
    build_leaderboard(tmp_path / "results", tmp_path / "out")
    before = {name: (tmp_path / "out" / name).read_bytes() for name in ("README.md", "index.html")}
    write_results(tmp_path / "results", demo_results())  # a bigger board, then the disk fills up

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build.os, "fsync", full)
    from dbench._cli.main import main

    assert main(["leaderboard", "build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "README.md: cannot write the page (No space left on device); the previous page is unchanged" in err
    assert {name: (tmp_path / "out" / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "index.html"]  # no temporaries


def test_concurrent_builds_never_show_a_truncated_page(tmp_path):
    boards = {}
    for name, results in (("a", demo_results()[:2]), ("b", demo_results())):
        write_results(tmp_path / name, results)
        build_leaderboard(tmp_path / name, tmp_path / f"expected-{name}")
        boards[name] = (tmp_path / f"expected-{name}" / "README.md").read_bytes()
    out = tmp_path / "out"
    build_leaderboard(tmp_path / "a", out)
    script = ("import sys\nfrom dbench.leaderboard.build import build_leaderboard\n"
              "for _ in range(15):\n    build_leaderboard(sys.argv[1], sys.argv[2])\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / name), str(out)], env=env)
             for name in ("a", "b")]
    seen = set()
    while any(p.poll() is None for p in procs):
        content = (out / "README.md").read_bytes()
        assert content in boards.values(), "a reader saw a page that is neither build's whole output"
        seen.add(content)
    assert all(p.returncode == 0 for p in procs)
    assert (out / "README.md").read_bytes() in boards.values()
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "index.html"]
