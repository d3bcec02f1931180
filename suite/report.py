"""The engine of ``pruning-suite report``: ranking tables computed from submission files.

Tables are never typed by hand. Each table holds the rankable (non-smoke) runs of one protocol
version and target, one row per method (name, version and, when a row would otherwise mix them,
config), ranked by the mean final-epoch test top-1 over seeds. Only valid files are ranked; every
invalid file is reported with its problems. Wang et al. (arXiv 2301.05219) ask for the final
epoch's accuracy (never the best epoch's), several seeds, and the spread across them; so a cell
is ``mean ± sample std`` (``ddof=1``), with ``n/a`` for the std of a single run.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from .protocol import canonical_json
from .submission import Submission
from .validate import Problem, check_paths

__all__ = [
    "FORMATS",
    "HEADERS",
    "MethodRow",
    "Table",
    "build_tables",
    "format_macs",
    "load_submissions",
    "render",
]

FORMATS = ("github", "latex", "html", "csv")
"""Output formats of :func:`render`."""

HEADERS = (
    "Method",
    "Seeds",
    "Top-1 (%)",
    "Delta vs dense (pp)",
    "Sparsity (%)",
    "MACs",
    "Speedup",
)
"""Column headers of every rendered table (CSV uses machine-readable names instead)."""

_CSV_HEADERS = (
    "protocol",
    "protocol_version",
    "target",
    "method",
    "method_version",
    "config",
    "seeds",
    "top1_mean",
    "top1_sample_std",
    "delta_top1_vs_dense",
    "sparsity_percent",
    "macs_pruned",
    "speedup",
    "smoke_runs_not_ranked",
)
_ALIGN = ("left", "right", "right", "right", "right", "right", "right")
_STATISTIC = "final-epoch test top-1, mean ± sample std over seeds"


@dataclass(frozen=True)
class MethodRow:
    """One method's aggregate over its runs (seeds) in one table.

    Attributes:
        method: Method name (the plugin name).
        version: Method version.
        config: Canonical JSON of the method's config.
        label: What the Method column shows (``name version``, plus the config when needed).
        seeds: Sorted seeds of the runs.
        top1_mean: Mean final-epoch test top-1, percent.
        top1_std: Sample standard deviation (ddof=1) of it, percent; None for a single run.
        delta_top1: ``top1_mean`` minus the table's mean dense test top-1, percentage points.
        sparsity: Mean sparsity (removed fraction of parameters), percent.
        macs_pruned: Mean MACs per example of the pruned model.
        speedup: Mean speedup (dense MACs / pruned MACs).
    """

    method: str
    version: str
    config: str
    label: str
    seeds: tuple[int, ...]
    top1_mean: float
    top1_std: float | None
    delta_top1: float
    sparsity: float
    macs_pruned: float
    speedup: float


@dataclass
class Table:
    """One ranking table: one protocol version and target.

    Attributes:
        protocol: Protocol id.
        protocol_version: Protocol version.
        target: Target id.
        rows: Methods, best mean top-1 first.
        dense_top1: Mean dense test top-1 of the base model over the table's runs, percent.
        smoke_runs: Smoke runs of this protocol version and target (counted, never ranked).
        notes: Lines printed under the table.
    """

    protocol: str
    protocol_version: int
    target: str
    rows: list[MethodRow] = field(default_factory=list)
    dense_top1: float | None = None
    smoke_runs: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def caption(self) -> str:
        """The caption line: protocol@version, target and the statistic shown."""
        return f"{self.protocol}@{self.protocol_version}, target {self.target}: {_STATISTIC}"


def load_submissions(root: Path | str) -> tuple[list[Submission], list[Problem]]:
    """Read every submission under ``root`` (recursively, ``*.json``).

    Args:
        root: A folder (or a single file).

    Returns:
        The valid submissions, and every problem found (files with an error are not returned
        as submissions; warnings do not exclude a file).
    """
    results = check_paths([Path(root)])
    submissions = [r.submission for r in results if r.ok and r.submission is not None]
    problems = [p for r in results for p in r.problems]
    return submissions, problems


def build_tables(submissions: Sequence[Submission]) -> list[Table]:
    """Group submissions by (protocol id, protocol version, target id) and rank the methods.

    Args:
        submissions: Valid submissions; smoke runs are counted, never ranked.

    Returns:
        One :class:`Table` per group, sorted by protocol, version and target. A group with only
        smoke runs gives a table without rows.
    """
    groups: dict[tuple[str, int, str], list[Submission]] = defaultdict(list)
    for sub in submissions:
        groups[(sub.protocol.id, sub.protocol.version, sub.target.id)].append(sub)
    return [_build_table(key, subs) for key, subs in sorted(groups.items())]


def _build_table(key: tuple[str, int, str], subs: list[Submission]) -> Table:
    table = Table(*key)
    ranked = [s for s in subs if s.rankable and not s.smoke]
    table.smoke_runs = len(subs) - len(ranked)
    if ranked:
        table.dense_top1 = statistics.fmean(s.base_model.dense_test_top1 for s in ranked)
        table.rows = _rank(ranked, table.dense_top1)
    table.notes = _notes(table, ranked)
    return table


def _rank(subs: list[Submission], dense_top1: float) -> list[MethodRow]:
    by_method: dict[tuple[str, str, str], list[Submission]] = defaultdict(list)
    for sub in subs:
        by_method[(sub.method.name, sub.method.version, canonical_json(sub.method.config))].append(
            sub
        )
    configs_per_method = defaultdict(int)
    for name, version, _ in by_method:
        configs_per_method[(name, version)] += 1
    rows = [
        _method_row(key, runs, dense_top1, configs_per_method[key[:2]] > 1)
        for key, runs in by_method.items()
    ]
    return sorted(rows, key=lambda r: (-r.top1_mean, r.label))


def _method_row(
    key: tuple[str, str, str], runs: list[Submission], dense_top1: float, show_config: bool
) -> MethodRow:
    name, version, config = key
    top1 = [r.final.test_top1 for r in runs]
    mean = statistics.fmean(top1)
    return MethodRow(
        method=name,
        version=version,
        config=config,
        label=f"{name} {version}" + (f" {config}" if show_config else ""),
        seeds=tuple(sorted(r.seed for r in runs)),
        top1_mean=mean,
        top1_std=statistics.stdev(top1) if len(top1) > 1 else None,
        delta_top1=mean - dense_top1,
        sparsity=100 * statistics.fmean(r.pruning.sparsity for r in runs),
        macs_pruned=statistics.fmean(r.pruning.macs_pruned for r in runs),
        speedup=statistics.fmean(r.pruning.speedup for r in runs),
    )


def _notes(table: Table, ranked: list[Submission]) -> list[str]:
    notes = []
    if not ranked:
        notes.append("no rankable runs")
    dense = sorted({s.base_model.dense_test_top1 for s in ranked})
    if len(dense) > 1:
        shown = ", ".join(f"{d:.2f}" for d in dense)
        notes.append(
            f"warning: the runs disagree on the base model's dense test top-1 ({shown}); "
            f"the delta column uses their mean {table.dense_top1:.2f}"
        )
    hashes = sorted({s.protocol.content_hash for s in ranked})
    if len(hashes) > 1:
        notes.append(
            f"warning: {len(hashes)} different protocol contents share this id and version "
            f"({', '.join(h[:12] for h in hashes)}); the runs may not be comparable"
        )
    if table.smoke_runs:
        runs = "run" if table.smoke_runs == 1 else "runs"
        notes.append(f"{table.smoke_runs} smoke {runs} not rankable (not listed)")
    return notes


# --------------------------------------------------------------------------- rendering


def format_macs(macs: float) -> str:
    """A MAC count in human form: ``950``, ``2.5k``, ``1.23M``, ``412M``, ``4.1G``.

    Args:
        macs: Multiply-accumulates.

    Returns:
        Three significant digits with a k/M/G suffix (plain integer below 1000).
    """
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if macs >= scale:
            return (
                f"{macs / scale:.3g}{suffix}"
                if macs / scale < 100
                else f"{macs / scale:.0f}{suffix}"
            )
    return f"{macs:.0f}"


def _top1_cell(row: MethodRow, pm: str = "±") -> str:
    std = "n/a" if row.top1_std is None else f"{row.top1_std:.2f}"
    return f"{row.top1_mean:.2f} {pm} {std}"


def _cells(row: MethodRow, pm: str = "±") -> list[str]:
    return [
        row.label,
        str(len(row.seeds)),
        _top1_cell(row, pm),
        f"{round(row.delta_top1, 2) + 0.0:+.2f}",  # + 0.0 turns -0.00 into +0.00
        f"{row.sparsity:.2f}",
        format_macs(row.macs_pruned),
        f"{row.speedup:.2f}x",
    ]


def render(tables: Sequence[Table], fmt: str = "github") -> str:
    """Render ranking tables.

    Args:
        tables: What :func:`build_tables` returned.
        fmt: One of :data:`FORMATS`: ``github`` (Markdown), ``latex`` (a ``table`` environment
            with ``\\caption``), ``html`` (``<table>`` with ``<caption>``), or ``csv`` (one
            machine-readable table for all groups, with protocol, version and target columns and
            the statistic in the column names instead of a caption line).

    Returns:
        The text, ending with a newline.

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if fmt == "csv":
        return _render_csv(tables)
    if not tables:
        return "No valid submissions found.\n"
    renderer = {"github": _render_github, "latex": _render_latex, "html": _render_html}[fmt]
    return "\n".join(renderer(table) for table in tables)


def _tabulate(rows: list[list[str]], headers: Sequence[str], tablefmt: str) -> str:
    # Cells are formatted already: keep "+1.50" and "40.00" as written (no number parsing).
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True, colalign=_ALIGN)


def _render_github(table: Table) -> str:
    parts = [
        f"**{table.protocol}@{table.protocol_version}**, target **{table.target}**: {_STATISTIC}",
        "",
    ]
    if table.rows:
        parts += [_tabulate([_cells(r) for r in table.rows], HEADERS, "github"), ""]
    parts += [f"- {note}" for note in table.notes]
    return "\n".join(parts) + "\n"


def _render_html(table: Table) -> str:
    caption = f"<caption>{html.escape(table.caption)}</caption>"
    body = _tabulate([_cells(r) for r in table.rows], HEADERS, "html") if table.rows else ""
    body = (
        body.replace("<table>", f"<table>\n{caption}", 1)
        if body
        else f"<table>\n{caption}\n</table>"
    )
    notes = "".join(f"<p>{html.escape(note)}</p>\n" for note in table.notes)
    return f"{body}\n{notes}"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _render_latex(table: Table) -> str:
    caption = _latex_escape(table.caption).replace("±", r"$\pm$")
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{caption}}}"]
    if table.rows:
        rows = [[_latex_escape(c) for c in _cells(r, pm="@PM@")] for r in table.rows]
        tabular = _tabulate(rows, [_latex_escape(h) for h in HEADERS], "latex_raw")
        lines.append(tabular.replace("@PM@", r"$\pm$"))
    lines += [rf"\par{{\footnotesize {_latex_escape(note)}}}" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _render_csv(tables: Sequence[Table]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADERS)
    for table in tables:
        for row in table.rows:
            writer.writerow(
                [
                    table.protocol,
                    table.protocol_version,
                    table.target,
                    row.method,
                    row.version,
                    row.config,
                    len(row.seeds),
                    f"{row.top1_mean:.2f}",
                    "n/a" if row.top1_std is None else f"{row.top1_std:.2f}",
                    f"{row.delta_top1:.2f}",
                    f"{row.sparsity:.2f}",
                    f"{row.macs_pruned:.0f}",
                    f"{row.speedup:.2f}",
                    table.smoke_runs,
                ]
            )
    return out.getvalue()
