"""The Pareto charts of a protocol page: test top-1 against MACs, parameters and measured latency.

One set of charts per protocol version and certification (closed division apart from each open
setup, as the tables are), over every target's ranked rows. Published references go on the MACs
and parameter charts where the publication states a speedup or sparsity (converted with the
dense model's counts), drawn as open diamonds and never on the frontier. Latency charts are per
device and batch size: a frontier across machines would compare machines, not methods.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ..protocol.spec import ComparisonProtocol
from ..report.cells import format_macs
from ..report.rows import MethodRow, Table
from .charts import ChartPoint, label_colors, pareto_chart

__all__ = ["protocol_charts"]

Cost = Callable[[MethodRow], float | None]


def _tooltip(row: MethodRow, table: Table, cost: str) -> str:
    ci = f" (95% CI {row.ci[0]:.2f}-{row.ci[1]:.2f})" if row.ci else ""
    rank = f"rank {row.rank}, " if row.rank else ""
    return f"{row.label}, target {table.target}: {rank}top-1 {row.top1_mean:.2f}{ci}, {cost}"


def _row_points(group: Sequence[Table], cost: Cost, unit: Callable[[float], str]) -> list:
    points = []
    for table in group:
        for row in table.rows:
            x = cost(row)
            if x is None:
                continue
            points.append(
                ChartPoint(
                    x=x,
                    y=row.top1_mean,
                    error=row.top1_ci,
                    label=row.label,
                    tooltip=_tooltip(row, table, unit(x)),
                    href=f"#{table.slug}",
                )
            )
    return points


def _dense_point(group: Sequence[Table], x: float | None, unit: Callable[[float], str]) -> list:
    top1 = next((t.dense_top1 for t in group if t.dense_top1 is not None), None)
    if x is None or top1 is None:
        return []
    tooltip = f"dense base model: top-1 {top1:.2f}, {unit(x)}"
    return [ChartPoint(x, top1, None, "dense base model", tooltip, kind="dense")]


def _published_points(
    group: Sequence[Table], protocol: ComparisonProtocol | None, kind: str
) -> list[ChartPoint]:
    """References with a speedup (``kind="macs"``) or a sparsity (``"params"``), as costs."""
    if protocol is None or not group:
        return []
    dense_macs, dense_params = group[0].dense_macs, group[0].dense_params
    targets = {t.target for t in group}
    points = []
    for ref in protocol.references:
        if ref.target not in targets:
            continue
        if kind == "macs" and ref.speedup and dense_macs:
            x, cost = dense_macs / ref.speedup, f"speedup {ref.speedup:.2f}x"
        elif kind == "params" and ref.sparsity is not None and dense_params:
            x, cost = dense_params * (1 - ref.sparsity), f"sparsity {100 * ref.sparsity:.2f}%"
        else:
            continue
        tooltip = (
            f"published, not ranked: {ref.method}, target {ref.target}: top-1 {ref.top1:.2f}, "
            f"{cost} [{ref.source}; {ref.statistic or 'statistic not stated'}]"
        )
        points.append(
            ChartPoint(x, ref.top1, None, f"published {ref.method}", tooltip, "published")
        )
    return points


def _latency_charts(group: Sequence[Table], title: str, colors: dict[str, str]) -> list[str]:
    """One chart per device and batch size: pruned median ms per forward pass."""
    measured: dict[tuple[str, int], list[tuple[Table, MethodRow, Any]]] = defaultdict(list)
    for table in group:
        for row in table.rows:
            for lat in row.latency:
                measured[(lat.device_key, lat.batch_size)].append((table, row, lat))
    charts = []
    for (device, batch), found in sorted(measured.items()):

        def unit(ms: float) -> str:
            return f"{ms:.3g} ms"

        points = [
            ChartPoint(lat.pruned_ms, row.top1_mean, row.top1_ci, row.label,
                       _tooltip(row, table, f"{lat.pruned_ms:.3g} ms, measured speedup "
                                f"{lat.speedup:.2f}x (MACs {row.speedup:.2f}x)"),
                       href=f"#{table.slug}")
            for table, row, lat in found
        ]  # fmt: skip
        dense_ms = statistics.fmean(lat.dense_ms for _, _, lat in found)
        points += _dense_point(group, dense_ms, unit)
        charts.append(
            pareto_chart(
                points,
                f"{title}: top-1 vs latency, batch {batch}",
                f"median ms per forward pass, batch {batch}, on {device}",
                lambda ms: f"{ms:.3g}",
                colors,
            )
        )
    return charts


def protocol_charts(
    tables: Sequence[Table], protocol: ComparisonProtocol | None
) -> list[dict[str, Any]]:
    """The charts of one protocol version's tables, one group per certification.

    Returns:
        ``[{"heading": ..., "charts": [svg, ...]}]``, closed division first (the tables' order).
    """
    groups: dict[tuple[str, str | None], list[Table]] = defaultdict(list)
    for table in tables:
        if table.rows:
            groups[(table.division, table.setup)].append(table)
    colors = label_colors([row.label for table in tables for row in table.rows])
    sections = []
    for group in groups.values():
        head = group[0]
        title = f"{head.protocol}@{head.protocol_version}, {head.division} {head.setup or ''}"
        title = title.rstrip()
        macs = _row_points(group, lambda r: r.macs_pruned, lambda x: f"{format_macs(x)} MACs")
        macs += _dense_point(group, head.dense_macs, lambda x: f"{format_macs(x)} MACs")
        params = _row_points(group, lambda r: r.params, lambda x: f"{format_macs(x)} params")
        params += _dense_point(group, head.dense_params, lambda x: f"{format_macs(x)} params")
        charts = [
            pareto_chart(
                macs + _published_points(group, protocol, "macs"),
                f"{title}: top-1 vs MACs",
                "MACs per example (multiply-accumulates)",
                format_macs,
                colors,
            ),
            pareto_chart(
                params + _published_points(group, protocol, "params"),
                f"{title}: top-1 vs parameters",
                "parameters (non-zero for weight pruning)",
                format_macs,
                colors,
            ),
            *_latency_charts(group, title, colors),
        ]
        sections.append({"heading": head.certified, "charts": charts})
    return sections
