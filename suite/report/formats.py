"""Report formats: how ranking tables are written (``pruning-suite report --format NAME``).

A :class:`ReportFormat` turns every table of :func:`~pruning_suite.report.tables.build_tables`
into one text. The suite registers ``github`` (Markdown), ``latex``, ``html`` and ``csv`` through
the ``register_report_formats`` hook (:mod:`pruning_suite.report.builtin`); a plugin registers
its own the same way. Every string taken from a submission is shown on one line (escaped) in every
format; Markdown and HTML escape ``<``, ``>`` and ``&`` (and Markdown ``[``, ``]``), so a name
cannot inject a tag or a link; CSV cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``) get a leading ``'``. Rows with fewer seeds than the protocol
requires are written apart, under "Not ranked". Torch-free.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabulate import tabulate

from .text import STATISTIC, one_line

if TYPE_CHECKING:
    from .rows import MethodRow, Table

__all__ = [
    "BUILTIN_FORMATS",
    "FORMATS",
    "HEADERS",
    "ReportFormat",
    "find_format",
    "format_macs",
    "render",
]


@dataclass(frozen=True)
class ReportFormat:
    """One way to write ranking tables, registered by name (hook ``register_report_formats``).

    Attributes:
        name: The ``--format`` value.
        description: One line for help texts.
        render: All tables (as :func:`~pruning_suite.report.tables.build_tables` returns them,
            possibly none) to one text ending with a newline.
    """

    name: str
    description: str
    render: Callable[[Sequence[Table]], str]


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

CSV_HEADERS = (
    "protocol",
    "protocol_version",
    "target",
    "division",
    "setup",
    "method",
    "method_version",
    "config",
    "seeds",
    "seeds_required",
    "top1_mean",
    "top1_sample_std",
    "delta_top1_vs_dense",
    "sparsity_percent",
    "macs_pruned",
    "speedup",
    "smoke_runs_not_ranked",
    "ranked",
)
_ALIGN = ("left", "right", "right", "right", "right", "right", "right")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


def _signed(value: float) -> str:
    """Two decimals with a sign; ``+ 0.0`` turns a rounded ``-0.00`` into ``+0.00``."""
    return f"{round(value, 2) + 0.0:+.2f}"


def _seeds_cell(row: MethodRow) -> str:
    """``3``, or ``2 of 3`` when the shipped protocol asks for more seeds than the row has."""
    n = len(row.seeds)
    required = row.seeds_required
    return f"{n} of {required}" if required is not None and n < required else str(n)


def _cells(row: MethodRow, pm: str = "±") -> list[str]:
    return [
        row.label,
        _seeds_cell(row),
        _top1_cell(row, pm),
        _signed(row.delta_top1),
        f"{row.sparsity:.2f}",
        format_macs(row.macs_pruned),
        f"{row.speedup:.2f}x",
    ]


def _tabulate(rows: list[list[str]], headers: Sequence[str], tablefmt: str) -> str:
    # Cells are formatted already: keep "+1.50" and "40.00" as written (no number parsing).
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True, colalign=_ALIGN)


NOT_RANKED = "Not ranked (fewer seeds than the protocol requires):"
"""The line above the rows a table lists apart (:attr:`Table.incomplete`)."""

_MARKDOWN_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "[": "\\[", "]": "\\]", "|": "\\|"}


def _markdown(text: str) -> str:
    """A submission string as inert Markdown: one line, no tag, no link, no cell break."""
    return "".join(_MARKDOWN_ESCAPES.get(char, char) for char in one_line(text))


def _render_github(table: Table) -> str:
    protocol, target = _markdown(table.protocol), _markdown(table.target)
    parts = [
        f"**{protocol}@{table.protocol_version}**, target **{target}**, "
        f"{_markdown(table.certified)}: {STATISTIC}",
        "",
    ]
    for heading, rows in (("", table.rows), (NOT_RANKED, table.incomplete)):
        if rows:
            cells = [_cells(r) for r in rows]
            for row in cells:
                row[0] = _markdown(row[0])
            parts += ([heading, ""] if heading else []) + [_tabulate(cells, HEADERS, "github"), ""]
    parts += [f"- {_markdown(note)}" for note in table.notes]
    return "\n".join(parts) + "\n"


def _render_html(table: Table) -> str:
    """One ``<section>`` per table: the table (or, without rows, its caption), then the notes."""
    caption = html.escape(table.caption)
    if table.rows:
        body = _tabulate(_html_cells(table.rows), HEADERS, "html")
        head = body.replace("<table>", f"<table>\n<caption>{caption}</caption>", 1)
    else:
        head = f"<p><strong>{caption}</strong></p>"
    apart = []
    if table.incomplete:
        apart = [f"<p>{html.escape(NOT_RANKED)}</p>"]
        apart.append(_tabulate(_html_cells(table.incomplete), HEADERS, "html"))
    notes = [f"<p>{html.escape(note)}</p>" for note in table.notes]
    return "\n".join(["<section>", head, *apart, *notes, "</section>"]) + "\n"


def _html_cells(rows: Sequence[MethodRow]) -> list[list[str]]:
    return [_cells(row) for row in rows]  # tabulate's "html" format escapes every cell


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
    for heading, method_rows in (("", table.rows), (NOT_RANKED, table.incomplete)):
        if method_rows:
            if heading:
                lines.append(rf"\par{{\small {_latex_escape(heading)}}}")
            rows = [[_latex_escape(c) for c in _cells(r, pm="@PM@")] for r in method_rows]
            tabular = _tabulate(rows, [_latex_escape(h) for h in HEADERS], "latex_raw")
            lines.append(tabular.replace("@PM@", r"$\pm$"))
    lines += [rf"\par{{\footnotesize {_latex_escape(note)}}}" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _csv_text(text: str) -> str:
    """A submission string as a CSV cell: one line, never run as a spreadsheet formula."""
    text = one_line(text)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _render_csv(tables: Sequence[Table]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for table in tables:
        ranked = {id(row) for row in table.rows}
        for row in [*table.rows, *table.incomplete]:
            writer.writerow(
                [
                    _csv_text(table.protocol),
                    table.protocol_version,
                    _csv_text(table.target),
                    table.division,
                    table.setup or "",
                    _csv_text(row.method),
                    _csv_text(row.version),
                    _csv_text(row.config),
                    len(row.seeds),
                    "" if row.seeds_required is None else row.seeds_required,
                    f"{row.top1_mean:.2f}",
                    "n/a" if row.top1_std is None else f"{row.top1_std:.2f}",
                    _signed(row.delta_top1),
                    f"{row.sparsity:.2f}",
                    f"{row.macs_pruned:.0f}",
                    f"{row.speedup:.2f}",
                    table.smoke_runs,
                    "true" if id(row) in ranked else "false",
                ]
            )
    return out.getvalue()


def _each_table(renderer: Callable[[Table], str]) -> Callable[[Sequence[Table]], str]:
    """A format that writes the tables one after the other, or says that there are none."""

    def render_all(tables: Sequence[Table]) -> str:
        if not tables:
            return "No valid submissions found.\n"
        return "\n".join(renderer(table) for table in tables)

    return render_all


BUILTIN_FORMATS = (
    ReportFormat(
        "github",
        "Markdown tables (GitHub flavour), a caption line and notes each",
        _each_table(_render_github),
    ),
    ReportFormat(
        "latex",
        "a LaTeX table environment per table, with \\caption and notes",
        _each_table(_render_latex),
    ),
    ReportFormat(
        "html",
        "a <section> per table: the <table> with its <caption>, then the notes",
        _each_table(_render_html),
    ),
    ReportFormat(
        "csv",
        "one machine-readable table for all groups, the statistic in the column names",
        _render_csv,
    ),
)
"""The suite's own formats, registered by :mod:`pruning_suite.report.builtin`."""

FORMATS = tuple(fmt.name for fmt in BUILTIN_FORMATS)
"""Names of the suite's own formats."""


def find_format(name: str) -> ReportFormat:
    """The report format registered as ``name`` (hook ``register_report_formats``).

    Raises:
        PluginError: No plugin registers ``name`` (with "did you mean" and the known names).
    """
    from ..contract import plugins

    return plugins.load_registry().report_formats.get(name)


def render(tables: Sequence[Table], fmt: str | ReportFormat = "github") -> str:
    """Render ranking tables.

    Args:
        tables: What :func:`~pruning_suite.report.tables.build_tables` returned.
        fmt: A :class:`ReportFormat` or a registered format's name: ``github`` (Markdown),
            ``latex`` (a ``table`` environment with ``\\caption``), ``html`` (a ``<section>`` per
            table: the ``<table>`` with its ``<caption>``, or only the caption when no run is
            rankable, then the notes as ``<p>``), ``csv`` (one machine-readable table for all
            groups, with protocol, version and target columns and the statistic in the column
            names instead of a caption line; groups without rankable runs have no rows), or a
            plugin's.

    Returns:
        The text, ending with a newline.

    Raises:
        PluginError: ``fmt`` names no registered format.
    """
    chosen = fmt if isinstance(fmt, ReportFormat) else find_format(fmt)
    return chosen.render(tables)
