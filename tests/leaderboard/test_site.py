"""pruning-suite leaderboard: a static site from validated submissions, checked without a browser:
every page parses, every link resolves, ranks are build_tables' ranks, strings are escaped."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pruning_suite.cli.main import main
from pruning_suite.errors import OutputError
from pruning_suite.leaderboard import MARKER, build_site
from pruning_suite.report.tables import build_tables, load_submissions
from tests.leaderboard.site_kit import HOSTILE, broken_links, check_page, protocol, write_results


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    results = write_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("site") / "site"
    built = build_site([results], out, [protocol()])
    return {"results": results, "out": out, "built": built}


def _protocol_page(site) -> str:
    return (site["out"] / "protocols" / "my-digits-v1.html").read_text(encoding="utf-8")


def test_the_site_has_its_pages_and_downloads(site) -> None:
    out = site["out"]
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"index.html", "style.css", "leaderboard.js", MARKER} <= names
    assert {"data/leaderboard.csv", "data/leaderboard.json", "protocols/my-digits-v1.html"} <= names
    runs = [n for n in names if n.startswith("runs/") and n.endswith(".html")]
    assert len(runs) == 3 * 4 + 1 + 3  # four methods x 3 seeds, one single run, the open row
    assert all(name[:-5] + ".json" in names for name in runs)
    assert site["built"].refused == 1


def test_every_page_parses_and_every_link_resolves(site) -> None:
    pages = sorted(site["out"].rglob("*.html"))
    assert len(pages) == site["built"].pages == 1 + 1 + 16
    errors = {str(p): check_page(p).errors for p in pages}
    assert not {p: e for p, e in errors.items() if e}
    assert broken_links(site["out"]) == []


def test_ranks_are_the_tables_ranks(site) -> None:
    subs, _ = load_submissions(site["results"], [protocol()])
    closed = next(t for t in build_tables(subs, [protocol()]) if t.division == "closed")
    assert [(r.method, r.rank) for r in closed.rows] == [
        ("l1norm", "1-2"),
        ("taylor", "1-2"),
        ("random", "3"),
        (HOSTILE, "4"),
    ]
    data = json.loads((site["out"] / "tables" / f"{closed.slug}.json").read_text())
    assert [(r["method"], r["rank"]) for r in data["ranked"]] == [
        (r.method, r.rank) for r in closed.rows
    ]
    assert [r["method"] for r in data["not_ranked"]] == ["slimming"]
    page = _protocol_page(site)
    board = page.split(f'id="{closed.slug}"', 1)[1].split("</article>", 1)[0]
    assert board.count('<tr class="row"') == 5  # 4 ranked rows and 1 listed apart
    assert '<td data-key="1">1-2</td><td data-key="l1norm v1.0">l1norm v1.0</td>' in board


def test_published_references_are_drawn_apart_and_marked(site) -> None:
    page = _protocol_page(site)
    assert "<h4>Published (not ranked)</h4>" in page
    assert "A. Author 2024, Table 1" in page and "best-epoch test accuracy" in page
    # on the MACs and the params chart of each certification of the target (closed, open S3.1)
    assert page.count('<g class="point published"') == 4
    assert "published, not ranked: l1norm, target uniform-50: top-1 93.00, speedup 2.50x" in page


def test_measured_speedup_shows_beside_mac_speedup_per_device(site) -> None:
    page = _protocol_page(site)
    assert "<h4>Measured latency on cpu: Test CPU, 2 threads</h4>" in page
    assert "top-1 vs latency, batch 1" in page and "top-1 vs latency, batch 64" in page
    assert "<td>1.50x</td>" in page and "Measured speedup, batch 1 / 64" in page


def test_strings_from_submissions_are_escaped_everywhere(site) -> None:
    for path in site["out"].rglob("*.html"):
        assert "<script>alert" not in path.read_text(encoding="utf-8"), path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _protocol_page(site)


def test_downloads_hold_every_table(site) -> None:
    rows = list(csv.DictReader(io.StringIO((site["out"] / "data/leaderboard.csv").read_text())))
    assert {r["method"] for r in rows} == {"l1norm", "taylor", "random", HOSTILE, "slimming"}
    tables = json.loads((site["out"] / "data/leaderboard.json").read_text())
    assert [(t["division"], len(t["ranked"])) for t in tables] == [("closed", 4), ("open", 1)]
    run = next(iter(sorted((site["out"] / "runs").glob("*.json"))))
    assert json.loads(run.read_text())["run_id"] == run.stem


def test_run_page_shows_provenance_certification_findings_and_curves(site) -> None:
    subs, _ = load_submissions(site["results"] / "open", [protocol()])
    page = (site["out"] / "runs" / f"{subs[0].run_id}.html").read_text(encoding="utf-8")
    assert "open division, certified S3.1" in page
    assert "R-RETRAIN-3" in page  # the warning validate gives an open-division run
    assert "top-1 during retraining" in page and "learning rate" in page
    assert "checkpoint sha256 " + "c" * 64 in page
    assert f'href="{subs[0].run_id}.json" download' in page


def test_the_same_results_give_the_same_bytes(site, tmp_path) -> None:
    build_site([site["results"]], tmp_path / "again", [protocol()])
    first = {
        p.relative_to(site["out"]): p.read_bytes() for p in site["out"].rglob("*") if p.is_file()
    }
    again = {
        p.relative_to(tmp_path / "again"): p.read_bytes()
        for p in (tmp_path / "again").rglob("*")
        if p.is_file()
    }
    assert first == again


def test_a_folder_of_something_else_is_never_emptied(site, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a site written by"):
        build_site([site["results"]], tmp_path, [protocol()])
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_rebuild_removes_pages_of_runs_that_are_gone(site, tmp_path) -> None:
    out = tmp_path / "site"
    build_site([site["results"]], out, [protocol()])
    (out / "runs" / "000000000000.html").write_text("stale")
    build_site([site["results"]], out, [protocol()])
    assert not (out / "runs" / "000000000000.html").exists()


def test_command_line(site, tmp_path, capsys) -> None:
    out = tmp_path / "web"
    spec = tmp_path / "my-digits.toml"
    assert main(["leaderboard", str(site["results"]), "--out", str(out)]) == 0  # uncertified
    err = capsys.readouterr().err
    assert "wrote 18 pages" in err and "1 files refused" in err.replace(
        "1 file refused", "1 files refused"
    )
    assert (out / "index.html").is_file()
    assert main(["leaderboard", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert not spec.exists()
