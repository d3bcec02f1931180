"""The rows of one ranking table: one per ranking key, ranked with shared ranks.

Runs are grouped into rows by :func:`pruning_suite.record.identity.ranking_key` (the one
definition of "the same row"); a row's numbers are means over its runs (seeds), its top-1 has a
sample std and a 95% t-interval, and the ranked rows get shared ranks from Welch's t-test
(:mod:`.stats`). A row's label shows the method's config whenever it is not the installed
method's default (or, for a method not installed here, whenever it is not empty), and always when
two rows of one method and version differ only by it. Torch-free.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..protocol.spec import canonical_json
from ..record.identity import RankingKey, ranking_key
from ..record.submission import Submission
from ..rules.setups import achieved_speedup
from ..text import one_line
from .rows import LatencyRow, MethodRow
from .stats import confidence_half_width, shared_ranks

__all__ = ["Defaults", "installed_defaults", "method_rows", "with_ranks"]

Defaults = Mapping[tuple[str, str], Mapping[str, Any]]
"""(method name, version) -> the method's default config as plain JSON data."""


@functools.cache
def installed_defaults() -> Defaults:
    """The default config of every installed method (``Config()`` of its class), by name and
    version; a method whose config has required fields has no default and is left out."""
    from ..contract.plugins import load_registry

    defaults = {}
    for name, info in load_registry().methods.items():
        try:
            defaults[(name, info.version)] = info.cls.Config().model_dump(mode="json")
        except Exception:  # a config with required fields: no default to compare with
            continue
    return defaults


def method_rows(
    subs: Sequence[Submission],
    division: str,
    setup: str | None,
    dense_top1: float,
    seeds_required: int | None,
    defaults: Defaults,
) -> list[MethodRow]:
    """One row per ranking key of ``subs`` (one run per seed already), best mean top-1 first."""
    by_row: dict[RankingKey, list[Submission]] = defaultdict(list)
    for sub in subs:
        by_row[ranking_key(sub, division, setup)].append(sub)
    configs: dict[tuple[str, str], set[str]] = defaultdict(set)
    codes: dict[tuple[str, str, str], set[str | None]] = defaultdict(set)
    for key in by_row:
        configs[(key.method, key.method_version)].add(key.config)
        codes[(key.method, key.method_version, key.config)].add(key.method_code)
    rows = []
    for key, runs in by_row.items():
        mixed = len(configs[(key.method, key.method_version)]) > 1
        label = _label(key, _shown_config(key, mixed, defaults))
        if len(codes[(key.method, key.method_version, key.config)]) > 1:
            label += f" [code {(key.method_code or 'unrecorded')[:8]}]"
        rows.append(_method_row(key, label, runs, dense_top1, seeds_required))
    return sorted(rows, key=lambda r: (-r.top1_mean, r.label))


def with_ranks(rows: Sequence[MethodRow]) -> list[MethodRow]:
    """``rows`` (best first) with their shared ranks (:func:`~.stats.shared_ranks`)."""
    ranks = shared_ranks([row.top1_values for row in rows])
    return [dataclasses.replace(row, rank=rank) for row, rank in zip(rows, ranks, strict=True)]


def _method_row(
    key: RankingKey,
    label: str,
    runs: list[Submission],
    dense_top1: float,
    seeds_required: int | None,
) -> MethodRow:
    runs = sorted(runs, key=lambda r: r.seed)
    top1 = [r.final.test_top1 for r in runs]
    mean = statistics.fmean(top1)
    return MethodRow(
        method=key.method,
        version=key.method_version,
        config=key.config,
        label=label,
        seeds=tuple(sorted({r.seed for r in runs})),
        top1_mean=mean,
        top1_std=statistics.stdev(top1) if len(top1) > 1 else None,
        delta_top1=mean - dense_top1,
        sparsity=100 * statistics.fmean(r.pruning.sparsity for r in runs),
        macs_pruned=statistics.fmean(pruned_macs(r) for r in runs),
        speedup=statistics.fmean(achieved_speedup(r) for r in runs),
        seeds_required=seeds_required,
        top1_values=tuple(top1),
        top1_ci=confidence_half_width(top1),
        params=statistics.fmean(_params(r) for r in runs),
        run_ids=tuple(r.run_id for r in runs),
        latency=_latency_rows(runs),
    )


def pruned_macs(sub: Submission) -> int:
    """Pruned MACs, or effective (non-zero-weight) MACs for weight granularity."""
    m = sub.pruning
    return m.macs_effective if m.granularity == "weight" and m.macs_effective else m.macs_pruned


def _params(sub: Submission) -> int:
    """Pruned parameters, or the non-zero ones for weight granularity."""
    m = sub.pruning
    return m.params_nonzero if m.granularity == "weight" and m.params_nonzero else m.params_pruned


def _latency_rows(runs: Sequence[Submission]) -> tuple[LatencyRow, ...]:
    """Per device, thread count and batch size: means over the runs measured there."""
    groups: dict[tuple[str, str, int, int], list[Any]] = defaultdict(list)
    for run in runs:
        for m in run.latency or ():
            groups[(m.device, m.device_name, m.num_threads, m.batch_size)].append(m)
    return tuple(
        LatencyRow(
            *where,
            dense_ms=statistics.fmean(m.dense_ms for m in found),
            pruned_ms=statistics.fmean(m.pruned_ms for m in found),
            speedup=statistics.fmean(m.speedup for m in found),
            runs=len(found),
        )
        for where, found in sorted(groups.items())
    )


def _shown_config(key: RankingKey, mixed: bool, defaults: Defaults) -> str | None:
    """The config a label shows: all of it when rows of one method differ by it, else the keys
    that differ from the installed default (all of a non-empty config without a known default),
    else nothing."""
    if mixed:
        return key.config
    config = json.loads(key.config)
    default = defaults.get((key.method, key.method_version))
    if default is None:
        return key.config if config else None
    missing = object()
    changed = {k: v for k, v in config.items() if default.get(k, missing) != v}
    return canonical_json(changed) if changed else None


def _variant(key: RankingKey) -> str:
    """How a row's runs departed from the plain pipeline (OrthP re-initialization, a retraining
    override, best-validation selection), shown in the row's label."""
    variant = []
    if key.reinit:
        variant.append(f"+{'OrthP' if key.reinit == 'orthp' else key.reinit}")
    if key.retraining_override:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(key.override().items()))
        variant.append(f"(retraining {shown})")
    if key.selection != "final-epoch":
        variant.append(f"({key.selection} epoch reported)")
    return " ".join(variant)


def _label(key: RankingKey, config: str | None) -> str:
    """``l1norm v1``, ``l1norm v1 {"p":2}`` when the config shows, then the variant
    (``+OrthP``, ``(retraining lr_schedule 0:0.001)``); one line."""
    version = key.method_version
    shown = version if version[:1] in ("v", "V") else f"v{version}"
    label = f"{key.method} {shown}" + (f" {config}" if config is not None else "")
    variant = _variant(key)
    return one_line(label + (f" {variant}" if variant else ""))
