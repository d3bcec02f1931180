"""The engine of ``pruning-suite report``: ranking tables computed from submission files.

Tables are never typed by hand. Each table holds the rankable (non-smoke) runs of one protocol
version, target and certification (division and comparison setup, recomputed from each file's
fields by :func:`pruning_suite.rules.setups.certify`, never taken from the file), one row per method (name, version and, when a row would otherwise mix them,
config), ranked by the mean final-epoch test top-1 over seeds. Only valid files are ranked; every
invalid file is reported with its problems. Wang et al. (arXiv 2301.05219) ask for the final
epoch's accuracy (never the best epoch's), several seeds, and the spread across them; so a cell
is ``mean ± sample std`` (``ddof=1``), with ``n/a`` for the std of a single run, beside the 95%
t-interval of the mean; ranks are shared where Welch's t-test does not tell two rows apart at
alpha 0.05 (:mod:`.stats`), and every caption says so. Rows are built by :mod:`.ranking`.

Closed-division tables (S3.2 or stricter: the protocol's own retraining recipe) come first;
open-division runs are tabled apart under their own header and never ranked among closed ones.
The delta column is computed against the protocol's pinned base model (``base_reference``)
when it has one, never against a number a submission states; otherwise against the mean dense
accuracy of the table's runs, with a note.

A seed counts once per row: of several runs of one method and seed, the newest (``created``) is
kept and a note says how many were dropped. Under a protocol shipped with the suite, a row with
fewer seeds than the protocol asks for (``2 of 3``) is listed apart and never ranked: dropping
the worst seed must not lift a method.

Every string taken from a submission (method names, ids, configs) is shown on one line, with
line breaks and other control characters escaped. The tables are written by a registered
:class:`~pruning_suite.report.formats.ReportFormat` (:func:`render`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from ..protocol.catalogue import any_protocol, known_protocol
from ..protocol.spec import ComparisonProtocol
from ..record.identity import RankingKey, ranking_key
from ..record.submission import Submission
from ..rules.setups import SETUPS, recheck
from ..text import one_line
from ..validate import Problem, check_paths
from .formats import FORMATS, HEADERS, format_macs, render
from .ranking import Defaults, installed_defaults, method_rows, with_ranks
from .rows import MethodRow, Table

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


def load_submissions(
    root: Path | str | Sequence[Path | str], protocols: Sequence[ComparisonProtocol] = ()
) -> tuple[list[Submission], list[Problem]]:
    """Read every submission under ``root`` (recursively, ``*.json``).

    Args:
        root: A folder or a single file, or several of them (a file found twice is read once).
        protocols: Protocols besides the shipped ones that runs may follow (your own files).

    Returns:
        The valid submissions, and every problem found (files with an error are not returned
        as submissions; warnings do not exclude a file).
    """
    roots = [root] if isinstance(root, Path | str) else list(root)
    results = check_paths([Path(r) for r in roots], protocols)
    submissions = [r.submission for r in results if r.ok and r.submission is not None]
    problems = [p for r in results for p in r.problems]
    return submissions, problems


def build_tables(
    submissions: Sequence[Submission],
    protocols: Sequence[ComparisonProtocol] = (),
    defaults: Defaults | None = None,
) -> list[Table]:
    """Group submissions by protocol version, target and certification, and rank the methods.

    Args:
        submissions: Valid submissions; smoke runs are counted, never ranked.
        protocols: Protocols besides the shipped ones (for certification and the pinned base).
        defaults: Default configs by (method, version), which a row's label leaves out; None:
            the installed methods' (:func:`~.ranking.installed_defaults`).

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
        cert = recheck(sub, protocol) if protocol is not None else None
        division, setup = (cert.division, cert.setup) if cert else ("open", None)
        groups[ranking_key(sub, division, setup).table()].append(sub)
    for where in smoke:
        if not any(key[:3] == where for key in groups):
            groups[(*where, "open", None)] = []
    defaults = installed_defaults() if defaults is None else defaults
    tables = sorted(
        (_build_table(key, subs, protocols, defaults) for key, subs in groups.items()),
        key=_table_order,
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
    defaults: Defaults,
) -> Table:
    table = Table(*key)
    rankable = list(subs)
    ranked = _newest_per_method_and_seed(rankable, table)
    table.duplicates_dropped = len(rankable) - len(ranked)
    protocol = next(
        (p for p in protocols if (p.id, p.version) == (table.protocol, table.protocol_version)),
        None,
    ) or any_protocol(table.protocol, table.protocol_version)
    pinned = protocol.base_reference if protocol is not None else None
    if pinned is not None and pinned.dense_test_top1 is not None:
        table.dense_top1 = pinned.dense_test_top1
        table.dense_from_protocol = True
    elif ranked:
        table.dense_top1 = statistics.fmean(s.base_model.dense_test_top1 for s in ranked)
    if ranked:
        table.dense_params = statistics.fmean(s.pruning.params_dense for s in ranked)
        table.dense_macs = statistics.fmean(s.pruning.macs_dense for s in ranked)
        seeds = protocol.seeds if protocol else None
        rows = method_rows(ranked, table.division, table.setup, table.dense_top1, seeds, defaults)
        complete = [r for r in rows if r.seeds_required is None or len(r.seeds) >= r.seeds_required]
        table.rows = with_ranks(complete)
        table.incomplete = [r for r in rows if r not in complete]
    table.notes = _notes(table, ranked) + _published(protocol, table.target)
    return table


def plot_tables(tables: Sequence[Table], out_dir: Path | str) -> list[Path]:
    """Accuracy vs sparsity per method (mean final top-1, 95% CI error bars), one figure per
    protocol version and certification, across that protocol's targets, titled with both, with
    the dense model's line; rows with fewer seeds than required are drawn hollow, "not ranked".

    Returns:
        The PNG and PDF files written, named ``<protocol>-v<version>-<division>-<setup>``.
    """
    from .figures import plot_accuracy_vs_sparsity

    groups: dict[tuple[str, int, str, str | None], list[Table]] = defaultdict(list)
    for table in tables:
        groups[(table.protocol, table.protocol_version, table.division, table.setup)].append(table)
    written: list[Path] = []
    for (protocol, version, division, setup), group in sorted(groups.items(), key=str):
        points, hollow = _sparsity_points(group)
        if not points:
            continue
        stem = f"{protocol}-v{version}-{division}-{setup or 'uncertified'}".replace(".", "")
        title = f"{group[0].title.split(', target ')[0]}, {group[0].certified}"
        dense = next((t.dense_top1 for t in group if t.dense_top1 is not None), None)
        written += plot_accuracy_vs_sparsity(
            points, Path(out_dir) / _file_safe(stem), title, dense, hollow, error="95% CI"
        )
    return written


def _sparsity_points(group: Sequence[Table]) -> tuple[dict[str, list], set[str]]:
    """Label -> (sparsity fraction, mean top-1, CI half-width) over a group's targets; and the
    labels of rows listed apart (drawn hollow)."""
    points: dict[str, list] = defaultdict(list)
    hollow = set()
    for table in group:
        for row in table.rows:
            points[row.label].append((row.sparsity / 100, row.top1_mean, row.top1_ci))
        for row in table.incomplete:
            label = f"{row.label} ({len(row.seeds)} of {row.seeds_required} seeds, not ranked)"
            points[label].append((row.sparsity / 100, row.top1_mean, row.top1_ci))
            hollow.add(label)
    return dict(points), hollow


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
            f"published (not ranked): {one_line(ref.method)}"
            f"{'' if ref.target else ' (dense base model)'} {ref.top1:.2f}{spread} "
            f"[{one_line(ref.source)}{how}]"
        )
    return lines


def _newest_per_method_and_seed(subs: list[Submission], table: Table) -> list[Submission]:
    """One run per (ranking row, seed): the newest by ``created`` (then run id, for a stable pick)."""
    newest: dict[tuple[RankingKey, int], Submission] = {}
    for sub in sorted(subs, key=lambda s: (datetime.fromisoformat(s.created), s.run_id)):
        newest[(ranking_key(sub, table.division, table.setup), sub.seed)] = sub
    return list(newest.values())


def _notes(table: Table, ranked: list[Submission]) -> list[str]:
    notes = []
    if not ranked:
        notes.append("no rankable runs")
    if table.rows:
        notes.append(table.rank_note)
    if table.latency_device:
        notes.append(
            f"measured speedup: dense / pruned median latency on {table.latency_device} "
            "(torch.utils.benchmark, after warm-up); a property of that machine, never ranked"
        )
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
