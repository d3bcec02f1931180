"""The engine of ``pruning-suite report``: ranking tables computed from submission files.

Tables are never typed by hand. Each table holds the rankable (non-smoke) runs of one protocol
version, target and certification (division and comparison setup, recomputed from each file's
fields by :func:`pruning_suite.rules.setups.certify`, never taken from the file), one row per method (name, version and, when a row would otherwise mix them,
config), ranked by the mean final-epoch test top-1 over seeds. Only valid files are ranked; every
invalid file is reported with its problems. Wang et al. (arXiv 2301.05219) ask for the final
epoch's accuracy (never the best epoch's), several seeds, and the spread across them; so a cell
is ``mean ± sample std`` (``ddof=1``), with ``n/a`` for the std of a single run.

Closed-division tables (S3.2 or stricter: the protocol's own retraining recipe) come first;
open-division runs are tabled apart under their own header and never ranked among closed ones.
The delta column is computed against the protocol's pinned base model (``base_reference``)
when it has one, never against a number a submission states; otherwise against the mean dense
accuracy of the table's runs, with a note.

A seed counts once per row: of several runs of one method and seed, the newest (``created``) is
kept and a note says how many were dropped. Under a protocol shipped with the suite, a row with
fewer seeds than the protocol asks for shows e.g. ``2 of 3``.

Every string taken from a submission (method names, ids, configs) is shown on one line, with
line breaks and other control characters escaped, in every format; CSV cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``) get a leading ``'``.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tabulate import tabulate

from ..protocol.spec import ComparisonProtocol, canonical_json
from ..record.submission import Submission
from ..rules.setups import SETUPS, achieved_speedup, certify
from ..validate.core import Problem, check_paths, known_protocol, shipped_protocol

__all__ = [
    "FORMATS",
    "HEADERS",
    "MethodRow",
    "Table",
    "build_tables",
    "format_macs",
    "load_submissions",
    "plot_tables",
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
)
_ALIGN = ("left", "right", "right", "right", "right", "right", "right")
_STATISTIC = "final-epoch test top-1, mean ± sample std over seeds"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class MethodRow:
    """One method's aggregate over its runs (seeds) in one table.

    Attributes:
        method: Method name (the plugin name).
        version: Method version.
        config: Canonical JSON of the method's config.
        label: What the Method column shows (``name vVERSION``, plus the config when needed),
            on one line.
        seeds: Sorted distinct seeds of the runs (one run per seed).
        top1_mean: Mean final-epoch test top-1, percent.
        top1_std: Sample standard deviation (ddof=1) of it, percent; None for a single run.
        delta_top1: ``top1_mean`` minus the table's mean dense test top-1, percentage points.
        sparsity: Mean sparsity (removed fraction of parameters), percent.
        macs_pruned: Mean MACs per example of the pruned model.
        speedup: Mean speedup (dense MACs / pruned MACs).
        seeds_required: Seeds the shipped protocol asks for (``seeds``); None when the
            protocol is not shipped with the suite.
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
    seeds_required: int | None = None


@dataclass
class Table:
    """One ranking table: one protocol version and target.

    Attributes:
        protocol: Protocol id.
        protocol_version: Protocol version.
        target: Target id.
        division: ``"closed"`` or ``"open"`` (see :mod:`pruning_suite.rules.setups`).
        setup: The comparison setup every run of the table is certified with (``"S4.2"``...),
            None when uncertified (unknown protocol, or not even S1).
        rows: Methods, best mean top-1 first.
        dense_top1: The dense test top-1 the delta column is against, percent: the protocol's
            pinned base model's (``dense_from_protocol``), else the mean over the table's runs.
        smoke_runs: Smoke runs of this protocol version and target (counted, never ranked).
        duplicates_dropped: Rankable runs left out because a newer run has the same method
            (name, version, config) and seed.
        notes: Lines printed under the table.
    """

    protocol: str
    protocol_version: int
    target: str
    division: str = "open"
    setup: str | None = None
    rows: list[MethodRow] = field(default_factory=list)
    dense_top1: float | None = None
    smoke_runs: int = 0
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)
    dense_from_protocol: bool = False

    @property
    def caption(self) -> str:
        """The caption line: protocol@version, target and the statistic shown (one line)."""
        return f"{self.title}: {_STATISTIC}"

    @property
    def title(self) -> str:
        """``protocol@version, target TARGET, closed division, certified S4.2``, on one line."""
        return (
            f"{_one_line(self.protocol)}@{self.protocol_version}, target {_one_line(self.target)}, "
            f"{self.certified}"
        )

    @property
    def certified(self) -> str:
        """What the table certifies, e.g. ``closed division, certified S4.2``."""
        if self.setup is None:
            return "open division, uncertified (not ranked with the closed division)"
        if self.division == "closed":
            return f"closed division, certified {self.setup}"
        return f"open division, certified {self.setup} (not ranked with the closed division)"


def load_submissions(
    root: Path | str, protocols: Sequence[ComparisonProtocol] = ()
) -> tuple[list[Submission], list[Problem]]:
    """Read every submission under ``root`` (recursively, ``*.json``).

    Args:
        root: A folder (or a single file).
        protocols: Protocols besides the shipped ones that runs may follow (your own files).

    Returns:
        The valid submissions, and every problem found (files with an error are not returned
        as submissions; warnings do not exclude a file).
    """
    results = check_paths([Path(root)], protocols)
    submissions = [r.submission for r in results if r.ok and r.submission is not None]
    problems = [p for r in results for p in r.problems]
    return submissions, problems


def build_tables(
    submissions: Sequence[Submission], protocols: Sequence[ComparisonProtocol] = ()
) -> list[Table]:
    """Group submissions by protocol version, target and certification, and rank the methods.

    Args:
        submissions: Valid submissions; smoke runs are counted, never ranked.
        protocols: Protocols besides the shipped ones (for certification and the pinned base).

    Returns:
        One :class:`Table` per (protocol id, version, target, division, setup), sorted by
        protocol, version and target, the closed division first, stricter setups first. A group
        with only smoke runs gives a table without rows. Of several rankable runs with the same
        method (name, version, config) and seed, only the newest (``created``) is ranked.
    """
    groups: dict[tuple[str, int, str, str, str | None], list[Submission]] = defaultdict(list)
    smoke: dict[tuple[str, int, str], int] = defaultdict(int)
    for sub in submissions:
        where = (sub.protocol.id, sub.protocol.version, sub.target.id)
        if sub.smoke or not sub.rankable:
            smoke[where] += 1
            continue
        protocol = known_protocol(sub, protocols)
        cert = certify(sub, protocol) if protocol is not None else None
        division, setup = (cert.division, cert.setup) if cert else ("open", None)
        groups[(*where, division, setup)].append(sub)
    for where in smoke:
        if not any(key[:3] == where for key in groups):
            groups[(*where, "open", None)] = []
    tables = sorted(
        (_build_table(key, subs, protocols) for key, subs in groups.items()), key=_table_order
    )
    for where, count in smoke.items():  # counted once, under the first table of their target
        first = next(t for t in tables if (t.protocol, t.protocol_version, t.target) == where)
        first.smoke_runs = count
        first.notes = [n for n in first.notes if n != "no rankable runs"] or first.notes
        first.notes.append(f"{count} smoke {_runs(count)} not rankable (not listed)")
    return tables


def _table_order(table: Table) -> tuple:
    strictness = SETUPS.index(table.setup) if table.setup in SETUPS else -1
    return (
        table.protocol,
        table.protocol_version,
        table.target,
        table.division != "closed",
        -strictness,
    )


def _build_table(
    key: tuple[str, int, str, str, str | None],
    subs: list[Submission],
    protocols: Sequence[ComparisonProtocol],
) -> Table:
    table = Table(*key)
    rankable = list(subs)
    ranked = _newest_per_method_and_seed(rankable)
    table.duplicates_dropped = len(rankable) - len(ranked)
    protocol = next(
        (p for p in protocols if (p.id, p.version) == (table.protocol, table.protocol_version)),
        None,
    ) or shipped_protocol(table.protocol, table.protocol_version)
    pinned = protocol.base_reference if protocol is not None else None
    if pinned is not None and pinned.dense_test_top1 is not None:
        table.dense_top1 = pinned.dense_test_top1
        table.dense_from_protocol = True
    elif ranked:
        table.dense_top1 = statistics.fmean(s.base_model.dense_test_top1 for s in ranked)
    if ranked:
        table.rows = _rank(ranked, table.dense_top1, protocol.seeds if protocol else None)
    table.notes = _notes(table, ranked) + _published(protocol, table.target)
    return table


def plot_tables(tables: Sequence[Table], out_dir: Path | str) -> list[Path]:
    """Accuracy vs sparsity per method (mean final top-1, sample-std error bars), one figure per
    protocol version and certification, across that protocol's targets.

    Returns:
        The PNG and PDF files written, named ``<protocol>-v<version>-<division>-<setup>``.
    """
    from .figures import plot_accuracy_vs_sparsity

    groups: dict[tuple[str, int, str, str | None], dict[str, list]] = defaultdict(
        lambda: defaultdict(list)
    )
    for table in tables:
        key = (table.protocol, table.protocol_version, table.division, table.setup)
        for row in table.rows:
            groups[key][row.label].append((row.sparsity / 100, row.top1_mean, row.top1_std))
    written: list[Path] = []
    for (protocol, version, division, setup), points in sorted(groups.items(), key=str):
        stem = f"{protocol}-v{version}-{division}-{setup or 'uncertified'}".replace(".", "")
        written += plot_accuracy_vs_sparsity(points, Path(out_dir) / _file_safe(stem))
    return written


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _published(protocol: ComparisonProtocol | None, target: str) -> list[str]:
    """The protocol's published reference numbers for this target (and the dense model's), shown
    beside the suite's results, never ranked: they were measured elsewhere, often as best-epoch
    test accuracy with population std."""
    if protocol is None:
        return []
    lines = []
    for ref in protocol.references:
        if ref.target not in ("", target):
            continue
        spread = f" ± {ref.std:.2f}" if ref.std is not None else ""
        how = f"; {ref.statistic}" if ref.statistic else ""
        lines.append(
            f"published (not ranked): {_one_line(ref.method)}"
            f"{'' if ref.target else ' (dense base model)'} {ref.top1:.2f}{spread} "
            f"[{_one_line(ref.source)}{how}]"
        )
    return lines


def _method_key(sub: Submission) -> tuple[str, str, str, str]:
    """What one row holds: method name, version, config, and how the run departed from the plain
    pipeline (OrthP re-initialization, a retraining override), shown in the row's label."""
    variant = []
    if sub.method.reinit:
        variant.append(f"+{'OrthP' if sub.method.reinit == 'orthp' else sub.method.reinit}")
    if sub.retraining_override:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(sub.retraining_override.items()))
        variant.append(f"(retraining {shown})")
    if sub.final.selection != "final-epoch":
        variant.append(f"({sub.final.selection} epoch reported)")
    return sub.method.name, sub.method.version, canonical_json(sub.method.config), " ".join(variant)


def _newest_per_method_and_seed(subs: list[Submission]) -> list[Submission]:
    """One run per (method, seed): the newest by ``created`` (then run id, for a stable pick)."""
    newest: dict[tuple[tuple[str, str, str, str], int], Submission] = {}
    for sub in sorted(subs, key=lambda s: (datetime.fromisoformat(s.created), s.run_id)):
        newest[(_method_key(sub), sub.seed)] = sub
    return list(newest.values())


def _rank(subs: list[Submission], dense_top1: float, seeds_required: int | None) -> list[MethodRow]:
    by_method: dict[tuple[str, str, str, str], list[Submission]] = defaultdict(list)
    for sub in subs:
        by_method[_method_key(sub)].append(sub)
    configs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for name, version, config, _ in by_method:
        configs[(name, version)].add(config)
    configs_per_method = {key: len(found) for key, found in configs.items()}
    rows = [
        _method_row(key, runs, dense_top1, configs_per_method[key[:2]] > 1, seeds_required)
        for key, runs in by_method.items()
    ]
    return sorted(rows, key=lambda r: (-r.top1_mean, r.label))


def _method_row(
    key: tuple[str, str, str, str],
    runs: list[Submission],
    dense_top1: float,
    show_config: bool,
    seeds_required: int | None,
) -> MethodRow:
    name, version, config, variant = key
    top1 = [r.final.test_top1 for r in runs]
    mean = statistics.fmean(top1)
    return MethodRow(
        method=name,
        version=version,
        config=config,
        label=_label(name, version, config if show_config else None, variant),
        seeds=tuple(sorted({r.seed for r in runs})),
        top1_mean=mean,
        top1_std=statistics.stdev(top1) if len(top1) > 1 else None,
        delta_top1=mean - dense_top1,
        sparsity=100 * statistics.fmean(r.pruning.sparsity for r in runs),
        macs_pruned=statistics.fmean(_macs(r) for r in runs),
        speedup=statistics.fmean(achieved_speedup(r) for r in runs),
        seeds_required=seeds_required,
    )


def _macs(sub: Submission) -> int:
    """Pruned MACs, or effective (non-zero-weight) MACs for weight granularity."""
    m = sub.pruning
    return m.macs_effective if m.granularity == "weight" and m.macs_effective else m.macs_pruned


def _label(name: str, version: str, config: str | None, variant: str = "") -> str:
    """``l1norm v1``, ``l1norm v1 {"p":2}`` when the config tells rows apart, then the variant
    (``+OrthP``, ``(retraining lr_schedule 0:0.001)``); one line."""
    shown = version if version[:1] in ("v", "V") else f"v{version}"
    label = f"{name} {shown}" + (f" {config}" if config is not None else "")
    return _one_line(label + (f" {variant}" if variant else ""))


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\u2028``)."""
    return "".join(_escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return f"\\u{ord(char):04x}"
    return char


def _notes(table: Table, ranked: list[Submission]) -> list[str]:
    notes = []
    if not ranked:
        notes.append("no rankable runs")
    if table.duplicates_dropped:
        runs = _runs(table.duplicates_dropped)
        notes.append(
            f"{table.duplicates_dropped} duplicate {runs} (same method, config and seed) "
            "dropped; the newest run of each is ranked"
        )
    checkpoints = sorted({s.base_model.checkpoint_sha256 for s in ranked})
    if len(checkpoints) > 1:
        notes.append(
            f"warning: the runs start from {len(checkpoints)} different base models "
            f"(checkpoint_sha256 {', '.join(h[:12] for h in checkpoints)}); methods are only "
            "comparable on the same base model"
        )
    dense = sorted({s.base_model.dense_test_top1 for s in ranked})
    if table.dense_from_protocol:
        notes.append(
            f"delta vs the protocol's base model (dense test top-1 {table.dense_top1:.2f}), "
            "not vs the runs' own baselines"
        )
    elif len(dense) > 1:
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
    return notes


def _runs(n: int) -> str:
    return "run" if n == 1 else "runs"


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


def render(tables: Sequence[Table], fmt: str = "github") -> str:
    """Render ranking tables.

    Args:
        tables: What :func:`build_tables` returned.
        fmt: One of :data:`FORMATS`: ``github`` (Markdown), ``latex`` (a ``table`` environment
            with ``\\caption``), ``html`` (a ``<section>`` per table: the ``<table>`` with its
            ``<caption>``, or only the caption when no run is rankable, then the notes as
            ``<p>``), or ``csv`` (one machine-readable table for all groups, with protocol,
            version and target columns and the statistic in the column names instead of a
            caption line; groups without rankable runs have no rows).

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
    protocol, target = _one_line(table.protocol), _one_line(table.target)
    parts = [
        f"**{protocol}@{table.protocol_version}**, target **{target}**, {table.certified}: "
        f"{_STATISTIC}",
        "",
    ]
    if table.rows:
        rows = [_cells(r) for r in table.rows]
        for cells in rows:
            cells[0] = cells[0].replace("|", "\\|")  # a "|" in a name would end the cell
        parts += [_tabulate(rows, HEADERS, "github"), ""]
    parts += [f"- {note}" for note in table.notes]
    return "\n".join(parts) + "\n"


def _render_html(table: Table) -> str:
    """One ``<section>`` per table: the table (or, without rows, its caption), then the notes."""
    caption = html.escape(table.caption)
    if table.rows:
        body = _tabulate([_cells(r) for r in table.rows], HEADERS, "html")
        head = body.replace("<table>", f"<table>\n<caption>{caption}</caption>", 1)
    else:
        head = f"<p><strong>{caption}</strong></p>"
    notes = [f"<p>{html.escape(note)}</p>" for note in table.notes]
    return "\n".join(["<section>", head, *notes, "</section>"]) + "\n"


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


def _csv_text(text: str) -> str:
    """A submission string as a CSV cell: one line, never run as a spreadsheet formula."""
    text = _one_line(text)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _render_csv(tables: Sequence[Table]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADERS)
    for table in tables:
        for row in table.rows:
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
                ]
            )
    return out.getvalue()
