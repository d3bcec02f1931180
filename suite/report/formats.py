"""Report formats: how ranking tables are written (``pruning-suite report --format NAME``).

A :class:`ReportFormat` turns every table of :func:`~pruning_suite.report.tables.build_tables`
into one text. The suite registers ``github`` (Markdown), ``latex``, ``html`` and ``csv`` through
the ``register_report_formats`` hook (:mod:`pruning_suite.report.builtin`); a plugin registers
its own the same way. Every string taken from a submission is shown on one line (escaped) in every
format; Markdown and HTML escape ``<``, ``>`` and ``&`` (and Markdown ``[``, ``]``), so a name
cannot inject a tag or a link; CSV cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``) get a leading ``'``. Rows with fewer seeds than the protocol
requires are written apart, under "Not ranked". Every caption names the statistic and the rank
test; the cells come from :mod:`.cells`. Torch-free.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tabulate import tabulate

from ..errors import PluginError, PruningSuiteError
from ..text import one_line
from .cells import HEADERS, all_cells, dense_cells, format_macs, headers, signed
from .stats import RANK_TEST
from .text import STATISTIC

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
    "rank_welch_t_test_alpha_0.05",
    "top1_ci95_low",
    "top1_ci95_high",
    "params_pruned",
    "dense_top1",
    "params_dense",
    "macs_dense",
    "latency_device",
    "measured_speedup_batch1",
    "measured_speedup_batch64",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _tabulate(rows: list[list[str]], headers: Sequence[str], tablefmt: str) -> str:
    # Cells are formatted already: keep "+1.50" and "40.00" as written (no number parsing).
    align = ["right", "left", *["right"] * (len(headers) - 2)]
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True, colalign=align)


NOT_RANKED = "Not ranked (fewer seeds than the protocol requires):"
"""The line above the rows a table lists apart (:attr:`Table.incomplete`)."""

_MARKDOWN_ESCAPES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "[": "\\[", "]": "\\]", "|": "\\|"}


def _markdown(text: str) -> str:
    """A submission string as inert Markdown: one line, no tag, no link, no cell break."""
    return "".join(_MARKDOWN_ESCAPES.get(char, char) for char in one_line(text))


def _with_dense(table: Table, rows: Sequence[MethodRow], pm: str = "±") -> list[list[str]]:
    """The ranked rows under the dense base model's line; rows listed apart without it."""
    cells = all_cells(rows, table, pm)
    return [dense_cells(table), *cells] if rows is table.rows else cells


def _render_github(table: Table) -> str:
    protocol, target = _markdown(table.protocol), _markdown(table.target)
    parts = [
        f"**{protocol}@{table.protocol_version}**, target **{target}**, "
        f"{_markdown(table.certified)}: {STATISTIC}; {RANK_TEST}",
        "",
    ]
    for heading, rows in (("", table.rows), (NOT_RANKED, table.incomplete)):
        if rows:
            cells = _with_dense(table, rows)
            for row in cells:
                row[1] = _markdown(row[1])
            parts += [heading, ""] if heading else []
            parts += [_tabulate(cells, headers(table), "github"), ""]
    parts += [f"- {_markdown(note)}" for note in table.notes]
    return "\n".join(parts) + "\n"


def _render_html(table: Table) -> str:
    """One ``<section>`` per table: the table (or, without rows, its caption), then the notes."""
    caption = html.escape(table.caption)
    if table.rows:
        body = _tabulate(_with_dense(table, table.rows), headers(table), "html")
        head = body.replace("<table>", f"<table>\n<caption>{caption}</caption>", 1)
    else:
        head = f"<p><strong>{caption}</strong></p>"
    apart = []
    if table.incomplete:
        apart = [f"<p>{html.escape(NOT_RANKED)}</p>"]
        apart.append(_tabulate(_with_dense(table, table.incomplete), headers(table), "html"))
    notes = [f"<p>{html.escape(note)}</p>" for note in table.notes]
    return "\n".join(["<section>", head, *apart, *notes, "</section>"]) + "\n"


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
    "±": r"$\pm$",
    "·": r"$\cdot$",
    "√": r"$\surd$",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def _latex_tabular(table: Table, rows: Sequence[MethodRow]) -> list[str]:
    """A booktabs ``tabular``: header, the dense line (ranked rows only), the rows."""
    head = headers(table)
    lines = [
        rf"\begin{{tabular}}{{rl{'r' * (len(head) - 2)}}}",
        r"\toprule",
        " & ".join(_latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    if rows is table.rows:
        lines += [" & ".join(_latex_escape(c) for c in dense_cells(table)) + r" \\", r"\midrule"]
    for cells in all_cells(rows, table):
        cells[0] = cells[0].replace("-", "--")  # a shared rank "1-2" as an en dash
        lines.append(" & ".join(_latex_escape(c) for c in cells) + r" \\")
    return [*lines, r"\bottomrule", r"\end{tabular}"]


def _render_latex(table: Table) -> str:
    """A ``table`` environment: caption, ``\\label{tab:SLUG}``, booktabs rules (needs
    ``\\usepackage{booktabs}``), the dense base model's line above the ranked rows, the notes."""
    lines = [
        r"\begin{table}",
        r"\centering",
        rf"\caption{{{_latex_escape(table.caption)}}}",
        rf"\label{{tab:{table.slug}}}",
    ]
    for heading, method_rows in (("", table.rows), (NOT_RANKED, table.incomplete)):
        if method_rows:
            if heading:
                lines.append(rf"\par{{\small {_latex_escape(heading)}}}")
            lines += _latex_tabular(table, method_rows)
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
            writer.writerow(_csv_row(table, row, id(row) in ranked))
    return out.getvalue()


def _csv_row(table: Table, row: MethodRow, ranked: bool) -> list[object]:
    device = table.latency_device
    measured = {lat.batch_size: lat.speedup for lat in row.measured(device)} if device else {}
    ci = row.ci
    return [
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
        signed(row.delta_top1),
        f"{row.sparsity:.2f}",
        f"{row.macs_pruned:.0f}",
        f"{row.speedup:.2f}",
        table.smoke_runs,
        "true" if ranked else "false",
        row.rank,
        "" if ci is None else f"{ci[0]:.2f}",
        "" if ci is None else f"{ci[1]:.2f}",
        f"{row.params:.0f}",
        "" if table.dense_top1 is None else f"{table.dense_top1:.2f}",
        "" if table.dense_params is None else f"{table.dense_params:.0f}",
        "" if table.dense_macs is None else f"{table.dense_macs:.0f}",
        _csv_text(device or "") if measured else "",
        f"{measured[1]:.2f}" if 1 in measured else "",
        f"{measured[64]:.2f}" if 64 in measured else "",
    ]


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
        "a LaTeX table environment per table (booktabs), with \\caption, \\label and notes",
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
        PluginError: ``fmt`` names no registered format, or the format (a plugin's code) raised
            or returned something other than text; the message names the plugin.
    """
    chosen = fmt if isinstance(fmt, ReportFormat) else find_format(fmt)
    try:
        text = chosen.render(tables)
    except PruningSuiteError:
        raise
    except Exception as err:
        detail = " ".join(str(err).split())[:200]
        raise _format_error(chosen.name, f"raised {type(err).__name__}: {detail}") from err
    if not isinstance(text, str):
        raise _format_error(chosen.name, f"returned {type(text).__name__}, not text")
    return text


def _format_error(name: str, what: str) -> PluginError:
    from ..contract import plugins

    plugin = plugins.load_registry().report_formats.origin(name) or "?"
    return PluginError(
        f"report format {name!r} (plugin {plugin!r}) {what}",
        f"fix or uninstall the plugin {plugin!r}, or choose another --format "
        "('pruning-suite plugins' lists every format and its plugin)",
    )
