"""The cells of a rendered ranking table, shared by every text format and the leaderboard site.

A table's columns are :data:`HEADERS`, plus a measured-speedup column when any ranked row has a
latency measurement on the table's device (:attr:`~.rows.Table.latency_device`). Its first line is
the dense base model (top-1, params, MACs; never ranked), then the ranked rows, each with its
shared rank. Numbers are formatted here once; each format only escapes and arranges them.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rows import MethodRow, Table

__all__ = [
    "DENSE_LABEL",
    "HEADERS",
    "all_cells",
    "dense_cells",
    "format_macs",
    "headers",
    "measured_cell",
    "row_cells",
    "signed",
]

HEADERS = (
    "Rank",
    "Method",
    "Seeds",
    "Top-1 (%)",
    "95% CI",
    "Delta vs dense (pp)",
    "Sparsity (%)",
    "Params",
    "MACs",
    "Speedup (MACs)",
)
"""Column headers of every rendered table (CSV uses machine-readable names instead)."""

DENSE_LABEL = "dense base model"
"""The Method cell of the dense model's line (not ranked)."""


def format_macs(macs: float) -> str:
    """A count (MACs, parameters) in human form: ``950``, ``2.5k``, ``1.23M``, ``412M``, ``4.1G``.

    Args:
        macs: Multiply-accumulates (or any count).

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


def signed(value: float) -> str:
    """Two decimals with a sign; ``+ 0.0`` turns a rounded ``-0.00`` into ``+0.00``."""
    return f"{round(value, 2) + 0.0:+.2f}"


def headers(table: Table) -> list[str]:
    """The table's column headers: :data:`HEADERS`, and the measured speedup when there is one."""
    batches = _measured_batches(table)
    if not batches:
        return list(HEADERS)
    return [*HEADERS, "Measured speedup, batch " + " / ".join(str(b) for b in batches)]


def _measured_batches(table: Table) -> list[int]:
    device = table.latency_device
    if device is None:
        return []
    return sorted({lat.batch_size for row in table.rows for lat in row.measured(device)})


def _top1_cell(row: MethodRow, pm: str) -> str:
    std = "n/a" if row.top1_std is None else f"{row.top1_std:.2f}"
    return f"{row.top1_mean:.2f} {pm} {std}"


def _ci_cell(row: MethodRow) -> str:
    ci = row.ci
    return "n/a" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _seeds_cell(row: MethodRow) -> str:
    """``3``, or ``2 of 3`` when the shipped protocol asks for more seeds than the row has."""
    n = len(row.seeds)
    required = row.seeds_required
    return f"{n} of {required}" if required is not None and n < required else str(n)


def measured_cell(row: MethodRow, table: Table) -> str:
    """``1.02x / 1.85x``: the row's measured speedup per batch size on the table's device."""
    device = table.latency_device
    found = {lat.batch_size: lat for lat in row.measured(device)} if device else {}
    return " / ".join(
        f"{found[b].speedup:.2f}x" if b in found else "n/a" for b in _measured_batches(table)
    )


def row_cells(row: MethodRow, table: Table, pm: str = "±") -> list[str]:
    """A method row's cells, in :func:`headers` order (the label as is: formats escape it)."""
    cells = [
        row.rank,
        row.label,
        _seeds_cell(row),
        _top1_cell(row, pm),
        _ci_cell(row),
        signed(row.delta_top1),
        f"{row.sparsity:.2f}",
        format_macs(row.params),
        format_macs(row.macs_pruned),
        f"{row.speedup:.2f}x",
    ]
    return cells + ([measured_cell(row, table)] if _measured_batches(table) else [])


def dense_cells(table: Table) -> list[str]:
    """The dense base model's line: its top-1 (the delta column's reference), params and MACs."""
    dense = "" if table.dense_top1 is None else f"{table.dense_top1:.2f}"
    params = "" if table.dense_params is None else format_macs(table.dense_params)
    macs = "" if table.dense_macs is None else format_macs(table.dense_macs)
    cells = ["", DENSE_LABEL, "", dense, "", "", "0.00", params, macs, "1.00x"]
    return cells + ([""] if _measured_batches(table) else [])


def all_cells(rows: Sequence[MethodRow], table: Table, pm: str = "±") -> list[list[str]]:
    """The cells of ``rows``."""
    return [row_cells(row, table, pm) for row in rows]
