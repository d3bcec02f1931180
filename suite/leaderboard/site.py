"""``pruning-suite leaderboard DIR... --out SITE``: a static results site built from submissions.

The site is plain files (HTML, CSS, one script, SVG inside the pages, CSV and JSON downloads)
that any web server or GitHub Pages can host, or a browser can open from disk; links are
relative. It is built from validated submissions only, ranked by
:func:`pruning_suite.report.tables.build_tables` (the one ranking) and rendered with Jinja2
templates (autoescaping every string from a submission):

``index.html``
    the protocols and their targets, what each table certifies and who ranks first; the files
    ``validate`` refused, with why.
``protocols/<protocol>-v<version>.html``
    Pareto charts (top-1 vs MACs, parameters, measured latency per device) with 95% CI bars,
    the frontier and the published references apart; then per target the ranked tables (closed
    division first, open and scratch setups apart), rows listed apart, the published references
    (marked "not ranked"), measured latency per device beside MAC speedup, and downloads.
``runs/<run-id>.html`` and ``runs/<run-id>.json``
    one page per run (provenance, certification, rule findings, curves) and its file.
``tables/<slug>.csv|json``, ``data/leaderboard.csv|json``
    every table for download.

Sorting and filtering are done by ``leaderboard.js`` in the browser; a page also reads them from
its address (``?q=l1norm&sort=3&desc=1``), so a filtered view can be linked. The output is the
same bytes for the same submissions (no dates, sorted order), so a committed site can be
checked fresh by a test. SITE is rewritten whole: a folder that is not empty must hold the
``.leaderboard`` marker of an earlier build, so no other folder is ever emptied.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import OutputError
from ..protocol.catalogue import any_protocol, known_protocol
from ..protocol.spec import ComparisonProtocol
from ..record.submission import Submission
from ..report.rows import Table
from ..report.tables import build_tables
from ..validate import FileResult, Problem, check_paths
from .pareto import protocol_charts
from .runs import run_context
from .tables import table_context, table_csv, table_json, tables_csv

__all__ = ["MARKER", "SiteResult", "build_site"]

MARKER = ".leaderboard"
"""The file that marks a folder as a site this command wrote (and may rewrite)."""

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class SiteResult:
    """What :func:`build_site` wrote.

    Attributes:
        out: The site's folder.
        pages: HTML pages written.
        tables: The ranking tables shown.
        refused: Files ``validate`` refused (not on the site but listed on its index).
        problems: Every problem ``validate`` found, errors and warnings.
    """

    out: Path
    pages: int
    tables: list[Table]
    refused: int
    problems: list[Problem]


def build_site(
    roots: Sequence[Path], out: Path, protocols: Sequence[ComparisonProtocol] = ()
) -> SiteResult:
    """Validate every submission under ``roots``, rank them, and write the site to ``out``.

    Args:
        roots: Results folders (or files), read together.
        out: The site's folder; created, or rewritten when it holds an earlier build.
        protocols: Protocols besides the shipped ones that runs may follow.

    Returns:
        What was written.

    Raises:
        OutputError: ``out`` is a non-empty folder that no earlier build wrote, or cannot be
            written.
    """
    results = check_paths(list(roots), protocols)
    runs = _newest_runs(results)
    tables = build_tables([sub for sub, _ in runs.values()], protocols)
    files = _site_files(roots, results, runs, tables, protocols)
    _write(out, files)
    pages = sum(name.endswith(".html") for name in files)
    refused = sum(not r.ok for r in results)
    return SiteResult(out, pages, tables, refused, [p for r in results for p in r.problems])


def _newest_runs(results: Sequence[FileResult]) -> dict[str, tuple[Submission, FileResult]]:
    """Run id -> (submission, its file result) for every valid file; of copies, the newest."""
    runs: dict[str, tuple[Submission, FileResult]] = {}
    valid = [r for r in results if r.ok and r.submission is not None]
    for result in sorted(
        valid, key=lambda r: (datetime.fromisoformat(r.submission.created), str(r.path))
    ):
        runs[result.submission.run_id] = (result.submission, result)
    return dict(sorted(runs.items()))


def _protocol_of(
    table: Table, protocols: Sequence[ComparisonProtocol]
) -> ComparisonProtocol | None:
    mine = (table.protocol, table.protocol_version)
    found = next((p for p in protocols if (p.id, p.version) == mine), None)
    return found or any_protocol(*mine)


def _page_name(protocol: str, version: int) -> str:
    """A file name for a protocol page: its id if file-safe, else a safe form plus a hash."""
    import hashlib

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in protocol).lstrip(".")
    if safe != protocol:
        safe = f"{safe}-{hashlib.sha256(protocol.encode()).hexdigest()[:8]}"
    return f"{safe}-v{version}.html"


def _site_files(
    roots: Sequence[Path],
    results: Sequence[FileResult],
    runs: dict[str, tuple[Submission, FileResult]],
    tables: list[Table],
    protocols: Sequence[ComparisonProtocol],
) -> dict[str, str | bytes]:
    """Every file of the site: relative path -> content."""
    from .render import render_page

    by_protocol: dict[tuple[str, int], list[Table]] = defaultdict(list)
    for table in tables:
        by_protocol[(table.protocol, table.protocol_version)].append(table)
    files: dict[str, str | bytes] = {}
    index_entries = []
    for (protocol_id, version), group in by_protocol.items():
        protocol = _protocol_of(group[0], protocols)
        name = _page_name(protocol_id, version)
        context = _protocol_page(protocol_id, version, group, protocol)
        files[f"protocols/{name}"] = render_page("protocol.html", context, root="../")
        index_entries.append(_index_entry(protocol_id, version, group, protocol, name))
        for table in group:
            files[f"tables/{table.slug}.csv"] = table_csv(table)
            files[f"tables/{table.slug}.json"] = _dumps(table_json(table, protocol))
    ranked_in = _ranked_in(tables, by_protocol)
    for run_id, (sub, result) in runs.items():
        protocol = known_protocol(sub, protocols)
        findings = [p for p in result.problems if p.severity != "error"]
        context = run_context(sub, protocol, findings, ranked_in.get(run_id))
        files[f"runs/{run_id}.html"] = render_page("run.html", context, root="../")
        files[f"runs/{run_id}.json"] = result.path.read_bytes()
    refused = _refused(roots, results)
    files["index.html"] = render_page(
        "index.html", {"protocols": index_entries, "refused": refused, "runs": len(runs)}, root=""
    )
    files["data/leaderboard.csv"] = tables_csv(tables)
    files["data/leaderboard.json"] = _dumps(
        [table_json(t, _protocol_of(t, protocols)) for t in tables]
    )
    for asset in ("style.css", "leaderboard.js"):
        files[asset] = (_HERE / "static" / asset).read_text(encoding="utf-8")
    files[MARKER] = f"written by pruning-suite {__version__} leaderboard; rebuilt whole\n"
    return files


def _protocol_page(
    protocol_id: str, version: int, group: list[Table], protocol: ComparisonProtocol | None
) -> dict[str, Any]:
    targets: dict[str, list[dict]] = defaultdict(list)
    for table in group:
        targets[table.target].append(table_context(table, protocol))
    return {
        "protocol": protocol_id,
        "version": version,
        "info": _protocol_info(protocol),
        "charts": protocol_charts(group, protocol),
        "targets": [{"id": target, "tables": found} for target, found in targets.items()],
    }


def _protocol_info(protocol: ComparisonProtocol | None) -> dict[str, str] | None:
    if protocol is None:
        return None
    return {
        "title": protocol.title,
        "description": protocol.description,
        "dataset": protocol.dataset.name,
        "architecture": protocol.architecture.name,
        "granularity": protocol.granularity,
        "seeds": str(protocol.seeds),
        "recipe": f"{protocol.retraining.epochs} epochs, LR {protocol.retraining.lr_schedule}",
    }


def _index_entry(
    protocol_id: str,
    version: int,
    group: list[Table],
    protocol: ComparisonProtocol | None,
    page: str,
) -> dict[str, Any]:
    return {
        "protocol": protocol_id,
        "version": version,
        "title": protocol.title if protocol else "",
        "href": f"protocols/{page}",
        "tables": [
            {
                "target": t.target,
                "certified": t.certified,
                "href": f"protocols/{page}#{t.slug}",
                "first": ", ".join(r.label for r in t.rows if r.rank.startswith("1")),
                "methods": " | ".join(r.label for r in [*t.rows, *t.incomplete]),
                "rows": len(t.rows),
                "apart": len(t.incomplete),
                "runs": sum(len(r.seeds) for r in [*t.rows, *t.incomplete]),
            }
            for t in group
        ],
    }


def _ranked_in(
    tables: list[Table], by_protocol: dict[tuple[str, int], list[Table]]
) -> dict[str, dict[str, str]]:
    """Run id -> the table row it is part of (title, link, rank)."""
    found = {}
    for table in tables:
        page = _page_name(table.protocol, table.protocol_version)
        for row in [*table.rows, *table.incomplete]:
            rank = row.rank or "not ranked (fewer seeds than required)"
            for run_id in row.run_ids:
                found[run_id] = {
                    "title": f"{table.title}: {row.label}",
                    "href": f"../protocols/{page}#{table.slug}",
                    "rank": rank,
                }
    return found


def _refused(roots: Sequence[Path], results: Sequence[FileResult]) -> list[dict[str, str]]:
    """Files with an error, shown by a path relative to the root they were found under."""
    refused = []
    for result in results:
        if result.ok:
            continue
        errors = [p for p in result.problems if p.severity == "error"]
        refused.append(
            {
                "path": _shown_path(result.path, roots),
                "problems": "; ".join(f"{p.where}: {p.message}" for p in errors[:3]),
            }
        )
    return sorted(refused, key=lambda r: r["path"])


def _shown_path(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        try:
            return str(Path(root.name) / path.relative_to(root))
        except ValueError:
            continue
    return path.name


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _write(out: Path, files: dict[str, str | bytes]) -> None:
    """Replace ``out``'s content with ``files``; refuse a non-empty folder without the marker."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise OutputError(
            f"{out} exists and is not a site written by 'pruning-suite leaderboard'",
            "name a new or empty folder for --out (the site is rewritten whole)",
        )
    try:
        if out.exists():
            for child in out.iterdir():
                shutil.rmtree(
                    child
                ) if child.is_dir() and not child.is_symlink() else child.unlink()
        for name, content in sorted(files.items()):
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
    except OSError as err:
        raise OutputError(
            f"cannot write the site to {out}: {err}", "pick a writable folder"
        ) from err
