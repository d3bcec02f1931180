"""The rows and tables ``pruning-suite report`` ranks, shared by the table builder and the formats."""

from __future__ import annotations

from dataclasses import dataclass, field

from .text import STATISTIC, one_line

__all__ = ["MethodRow", "Table"]


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
        rows: Methods with every seed the protocol requires, best mean top-1 first: ranked.
        incomplete: Methods with fewer seeds than the shipped protocol requires, listed apart
            and never ranked (a dropped seed cannot lift a row).
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
    incomplete: list[MethodRow] = field(default_factory=list)
    dense_top1: float | None = None
    smoke_runs: int = 0
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)
    dense_from_protocol: bool = False

    @property
    def caption(self) -> str:
        """The caption line: protocol@version, target and the statistic shown (one line)."""
        return f"{self.title}: {STATISTIC}"

    @property
    def title(self) -> str:
        """``protocol@version, target TARGET, closed division, certified S4.2``, on one line."""
        return (
            f"{one_line(self.protocol)}@{self.protocol_version}, target {one_line(self.target)}, "
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
