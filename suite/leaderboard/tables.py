"""What the site shows of one ranking table: plain data for the templates and the downloads.

Everything here is read from :func:`pruning_suite.report.tables.build_tables`'s tables (the one
ranking) and formatted by :mod:`pruning_suite.report.cells` (the one set of cells); the site adds
links, sort keys, the published references and the per-device latency, and never re-ranks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..protocol.spec import ComparisonProtocol
from ..report.cells import dense_cells, headers, row_cells
from ..report.formats import render
from ..report.rows import MethodRow, Table
from ..report.stats import RANK_TEST

__all__ = [
    "published_references",
    "table_context",
    "table_csv",
    "table_json",
    "table_page_id",
    "tables_csv",
]


def table_page_id(table: Table) -> str:
    """The HTML id of a table on its protocol page (its slug)."""
    return table.slug


def _sort_keys(row: MethodRow, table: Table) -> list[Any]:
    """One sort key per cell of :func:`~pruning_suite.report.cells.row_cells`."""
    rank = int(row.rank.split("-")[0]) if row.rank else 10**6
    ci = row.ci
    keys: list[Any] = [
        rank,
        row.label.lower(),
        len(row.seeds),
        row.top1_mean,
        ci[0] if ci else row.top1_mean,
        row.delta_top1,
        row.sparsity,
        row.params,
        row.macs_pruned,
        row.speedup,
    ]
    if len(headers(table)) > len(keys):
        device = table.latency_device
        measured = row.measured(device) if device else []
        keys.append(measured[-1].speedup if measured else -1.0)
    return keys


def _row_context(row: MethodRow, table: Table, root: str) -> dict[str, Any]:
    cells = row_cells(row, table)
    return {
        "cells": [
            {"text": text, "key": key}
            for text, key in zip(cells, _sort_keys(row, table), strict=True)
        ],
        "label": row.label,
        "runs": [
            {"seed": seed, "href": f"{root}runs/{run_id}.html"}
            for seed, run_id in zip(row.seeds, row.run_ids, strict=True)
        ],
    }


def published_references(protocol: ComparisonProtocol | None, target: str) -> list[dict]:
    """The protocol's published numbers for ``target`` (and the dense model's): shown apart,
    marked "published, not ranked"; they were measured elsewhere, often as best-epoch accuracy."""
    if protocol is None:
        return []
    return [
        {
            "method": ref.method,
            "dense": not ref.target,
            "top1": f"{ref.top1:.2f}",
            "std": "" if ref.std is None else f"{ref.std:.2f}",
            "sparsity": "" if ref.sparsity is None else f"{100 * ref.sparsity:.2f}",
            "speedup": "" if ref.speedup is None else f"{ref.speedup:.2f}x",
            "source": ref.source,
            "statistic": ref.statistic or ref.note,
        }
        for ref in protocol.references
        if ref.target in ("", target)
    ]


def _latency_context(table: Table) -> list[dict[str, Any]]:
    """Per device: each row's measured latency by batch size (never compared across devices)."""
    devices = sorted({lat.device_key for row in table.rows for lat in row.latency})
    found = []
    for device in devices:
        rows = [
            {
                "label": row.label,
                "batches": [
                    {
                        "batch": lat.batch_size,
                        "dense_ms": f"{lat.dense_ms:.3g}",
                        "pruned_ms": f"{lat.pruned_ms:.3g}",
                        "speedup": f"{lat.speedup:.2f}x",
                        "runs": lat.runs,
                    }
                    for lat in row.measured(device)
                ],
            }
            for row in table.rows
            if row.measured(device)
        ]
        found.append({"device": device, "rows": rows, "mac_speedup": _mac_speedups(table)})
    return found


def _mac_speedups(table: Table) -> dict[str, str]:
    return {row.label: f"{row.speedup:.2f}x" for row in table.rows}


def table_context(
    table: Table, protocol: ComparisonProtocol | None, root: str = "../"
) -> dict[str, Any]:
    """A table as the protocol page's template shows it (``root``: the way back to the site's
    top folder from the page)."""
    return {
        "id": table_page_id(table),
        "title": table.title,
        "caption": table.caption,
        "closed": table.division == "closed",
        "headers": headers(table),
        "dense": dense_cells(table) if table.rows else None,
        "rows": [_row_context(row, table, root) for row in table.rows],
        "incomplete": [_row_context(row, table, root) for row in table.incomplete],
        "notes": [n for n in table.notes if not n.startswith("published (not ranked)")],
        "published": published_references(protocol, table.target),
        "latency": _latency_context(table),
        "csv": f"{root}tables/{table.slug}.csv",
        "json": f"{root}tables/{table.slug}.json",
        "rank_test": RANK_TEST,
    }


def table_csv(table: Table) -> str:
    """The table's rows as the ``csv`` report format writes them (every column, ranked or not)."""
    return render([table], "csv")


def _row_json(row: MethodRow) -> dict[str, Any]:
    ci = row.ci
    return {
        "rank": row.rank,
        "label": row.label,
        "method": row.method,
        "version": row.version,
        "config": json.loads(row.config),
        "seeds": list(row.seeds),
        "run_ids": list(row.run_ids),
        "top1": list(row.top1_values),
        "top1_mean": row.top1_mean,
        "top1_sample_std": row.top1_std,
        "top1_ci95": list(ci) if ci else None,
        "delta_top1_vs_dense": row.delta_top1,
        "sparsity_percent": row.sparsity,
        "params": row.params,
        "macs": row.macs_pruned,
        "speedup_macs": row.speedup,
        "latency": [
            {
                "device": lat.device_key,
                "batch_size": lat.batch_size,
                "dense_ms": lat.dense_ms,
                "pruned_ms": lat.pruned_ms,
                "measured_speedup": lat.speedup,
                "runs": lat.runs,
            }
            for lat in row.latency
        ],
    }


def table_json(table: Table, protocol: ComparisonProtocol | None) -> dict[str, Any]:
    """The table as JSON data: its identity, caption, the dense line, ranked rows, rows listed
    apart, published references (not ranked) and notes."""
    return {
        "protocol": table.protocol,
        "protocol_version": table.protocol_version,
        "target": table.target,
        "division": table.division,
        "setup": table.setup,
        "caption": table.caption,
        "dense": {
            "top1": table.dense_top1,
            "params": table.dense_params,
            "macs": table.dense_macs,
            "from_protocol": table.dense_from_protocol,
        },
        "ranked": [_row_json(row) for row in table.rows],
        "not_ranked": [_row_json(row) for row in table.incomplete],
        "published_not_ranked": published_references(protocol, table.target),
        "smoke_runs_not_ranked": table.smoke_runs,
        "notes": table.notes,
    }


def tables_csv(tables: Sequence[Table]) -> str:
    """Every table in one CSV (the ``csv`` report format)."""
    return render(list(tables), "csv")
