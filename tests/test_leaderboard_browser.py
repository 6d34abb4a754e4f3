"""The leaderboard page in a real headless browser: no console errors, sortable columns, a plot, a screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` package; skipped
cleanly without them. Set ``DBENCH_SCREENSHOT_DIR`` to keep the screenshot (e.g. as a CI artifact).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from leaderboard_data import TEST_KEY, demo_results, result, write_results

from dbench.leaderboard.build import build_leaderboard

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs chromium and chromedriver (apt-get install -y chromium chromium-driver)",
)

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1100",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The demo leaderboard (plus a three-seed table) open in headless Chromium."""
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("board")
    write_results(root / "results", demo_results() + [result("multi", (0.5, 0.5, 0.5), team="m", stds=(0.01, 0.02, 0.03))])
    build_leaderboard(root / "results", root / "out", key=TEST_KEY.encode())

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={root / 'profile'}")  # fresh profile every run
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get((root / "out" / "index.html").as_uri())
        yield driver, root
    finally:
        driver.quit()


def _entries(driver, table_index=0):
    from selenium.webdriver.common.by import By

    table = driver.find_elements(By.CSS_SELECTOR, "table.board")[table_index]
    return [row.get_attribute("data-entry") for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def _header(driver, label, table_index=0):
    from selenium.webdriver.common.by import By

    table = driver.find_elements(By.CSS_SELECTOR, "table.board")[table_index]
    (th,) = [th for th in table.find_elements(By.CSS_SELECTOR, "thead th") if th.text.rstrip(" ▲▼") == label]
    return th


def test_page_loads_without_console_errors(page):
    driver, _ = page
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert driver.title == "dbench leaderboard"
    assert driver.execute_script("return document.querySelectorAll('table.board').length") == 2


def test_rows_start_in_rank_order_with_baselines_marked(page):
    from selenium.webdriver.common.by import By

    driver, _ = page
    # The three-seed table sorts first (groups are ordered by protocol hash); find the demo table.
    tables = driver.find_elements(By.CSS_SELECTOR, "table.board")
    index = next(i for i, _ in enumerate(tables) if "ada-v2" in _entries(driver, i))
    assert _entries(driver, index) == ["ada-v2", "carol", "bob-v1", "factor-vae", "beta-vae"]
    baselines = tables[index].find_elements(By.CSS_SELECTOR, "tbody tr.baseline")
    assert [row.get_attribute("data-entry") for row in baselines] == ["factor-vae", "beta-vae"]
    # The hostile team name is shown as text, not run as a script.
    assert "carol <script>alert(1)</script>" in tables[index].text


def test_clicking_a_header_reorders_rows(page):
    driver, _ = page
    index = next(i for i in range(2) if "ada-v2" in _entries(driver, i))
    header = _header(driver, "mig.mig", index)
    header.find_element("css selector", "button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _entries(driver, index) == ["carol", "bob-v1", "ada-v2", "factor-vae", "beta-vae"]
    header.find_element("css selector", "button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _entries(driver, index) == ["beta-vae", "factor-vae", "ada-v2", "bob-v1", "carol"]
    _header(driver, "Entry", index).find_element("css selector", "button").click()
    assert _entries(driver, index) == ["ada-v2", "beta-vae", "bob-v1", "carol", "factor-vae"]
    _header(driver, "Rank", index).find_element("css selector", "button").click()
    assert _entries(driver, index) == ["ada-v2", "carol", "bob-v1", "factor-vae", "beta-vae"]


def test_scores_show_spread_and_the_plot_has_a_bar_per_score(page):
    from selenium.webdriver.common.by import By

    driver, _ = page
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.board td")]
    assert any(text.startswith("0.500 ± 0.010") for text in cells)
    figures = driver.find_elements(By.CSS_SELECTOR, "section figure svg")
    assert len(figures) == 2
    bars = [len(svg.find_elements(By.CSS_SELECTOR, "rect.bar")) for svg in figures]
    assert sorted(bars) == [3, 15]  # rows x ranked scores
    assert len(driver.find_elements(By.CSS_SELECTOR, "rect.bar.baseline")) == 2 * 3
    whiskers = driver.find_elements(By.CSS_SELECTOR, "line.whisker")
    assert len(whiskers) == 3


def test_screenshot_is_a_png(page):
    driver, root = page
    shot = root / "leaderboard.png"
    assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    keep = os.environ.get("DBENCH_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "leaderboard.png")
