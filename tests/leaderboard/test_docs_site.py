"""docs/leaderboard/ is what 'pruning-suite leaderboard submissions --out docs/leaderboard' writes
from the committed submissions, byte for byte: the published site cannot drift from its runs."""

from __future__ import annotations

from pathlib import Path

from pruning_suite.leaderboard import MARKER, build_site
from tests.leaderboard.site_kit import broken_links, check_page

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "pruning-suite leaderboard submissions --out docs/leaderboard"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_docs_leaderboard_is_fresh(tmp_path) -> None:
    committed = ROOT / "docs" / "leaderboard"
    assert (committed / MARKER).is_file(), f"no site in docs/leaderboard: run {COMMAND}"
    build_site([ROOT / "submissions"], tmp_path / "leaderboard")
    written, kept = _files(tmp_path / "leaderboard"), _files(committed)
    stale = sorted(
        name for name in written.keys() | kept.keys() if written.get(name) != kept.get(name)
    )
    assert not stale, f"docs/leaderboard differs from the submissions in {stale[:5]}: run {COMMAND}"


def test_docs_leaderboard_pages_parse_and_links_resolve() -> None:
    site = ROOT / "docs" / "leaderboard"
    assert not [p for p in site.rglob("*.html") if check_page(p).errors]
    assert broken_links(site) == []
