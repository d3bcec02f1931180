"""The leaderboard in a real browser: headless Chromium opens the built site from disk, runs its
script, and the test reads the resulting DOM (rows, ranks, links, the filter and the sort) and
saves screenshots under the test's temporary folder. Skipped where Chromium is not installed
(Debian: apt-get install -y chromium); the HTML and link checks of test_site.py need no browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pruning_suite.leaderboard import build_site
from tests.leaderboard.site_kit import PageChecker, protocol, write_results

CHROMIUM = next(
    (
        found
        for name in ("chromium", "chromium-browser", "google-chrome")
        if (found := shutil.which(name))
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium); "
    "tests/leaderboard/test_site.py checks the HTML and the links without it",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    results = write_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("browser") / "site"
    build_site([results], out, [protocol()])
    return out


def _chromium(profile: Path, *args: str) -> str:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=3000", *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class DomRows(PageChecker):
    """The rendered DOM's ranked rows: label, rank, hidden or not, run links; and body flags."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.body: dict = {}
        self._cells: list[str] | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        super().handle_starttag(tag, attrs)
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if tag == "tr" and found.get("class") == "row":
            self.rows.append(
                {"label": found["data-label"], "hidden": "hidden" in found, "links": []}
            )
            self._cells = []
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
            self._in_cell = True
        elif tag == "a" and self._cells is not None:
            self.rows[-1]["links"].append(found["href"])

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._cells is not None:
            self._cells[-1] += data

    def handle_endtag(self, tag: str) -> None:
        super().handle_endtag(tag)
        if tag == "td":
            self._in_cell = False
        if tag == "tr" and self._cells is not None:
            self.rows[-1]["rank"] = self._cells[0].strip()
            self._cells = None


def _dom(site: Path, tmp_path: Path, query: str = "") -> DomRows:
    url = (site / "protocols" / "my-digits-v1.html").as_uri() + query
    parsed = DomRows()
    parsed.feed(_chromium(tmp_path / "profile", "--dump-dom", url))
    return parsed


def _ranked(dom: DomRows) -> list[tuple[str, str]]:
    return [(row["label"], row["rank"]) for row in dom.rows if row["rank"]]


def test_the_browser_shows_ranked_rows_with_shared_ranks_and_run_links(site, tmp_path) -> None:
    dom = _dom(site, tmp_path)
    assert dom.body.get("data-ready") == "1"  # the script ran
    closed = _ranked(dom)[:4]
    assert closed == [
        ("l1norm v1.0", "1-2"),
        ("taylor v1.0", "1-2"),
        ("random v1.0", "3"),
        ("<script>alert(1)</script> v1.0", "4"),  # shown as text, never run
    ]
    first = dom.rows[0]
    assert len(first["links"]) == 3 and all(link.startswith("../runs/") for link in first["links"])
    assert all((site / "protocols" / link).resolve().is_file() for link in first["links"])


def test_the_filter_from_the_address_hides_other_rows(site, tmp_path) -> None:
    dom = _dom(site, tmp_path, "?q=random")
    shown = [row["label"] for row in dom.rows if not row["hidden"]]
    assert shown == ["random v1.0"]
    assert dom.body.get("data-rows-shown") == "1"


def test_sorting_from_the_address_reorders_the_rows(site, tmp_path) -> None:
    dom = _dom(site, tmp_path, "?sort=3")  # Top-1 ascending
    assert [label for label, _ in _ranked(dom)[:4]] == [
        "<script>alert(1)</script> v1.0",
        "random v1.0",
        "taylor v1.0",
        "l1norm v1.0",
    ]


def test_screenshots_of_the_index_and_a_protocol_page(site, tmp_path) -> None:
    from PIL import Image

    for name, page in (
        ("index", site / "index.html"),
        ("protocol", site / "protocols" / "my-digits-v1.html"),
    ):
        shot = tmp_path / f"{name}.png"
        _chromium(
            tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri()
        )
        image = Image.open(shot).convert("L")
        assert image.size == (1280, 1800)
        low, high = image.getextrema()
        assert high - low > 100  # not a blank page
