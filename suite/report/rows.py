"""The rows and tables ``pruning-suite report`` ranks, shared by the table builder and the formats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..text import one_line
from .stats import ALPHA, RANK_TEST
from .text import STATISTIC

__all__ = ["LatencyRow", "MethodRow", "Table"]


@dataclass(frozen=True)
class LatencyRow:
    """A row's measured latency on one device and batch size, averaged over its runs.

    Attributes:
        device: ``"cpu"`` or ``"cuda"``.
        device_name: The processor or GPU.
        num_threads: CPU intra-op threads during the measurement.
        batch_size: Examples per forward pass.
        dense_ms: Mean over runs of the dense model's median milliseconds per forward pass.
        pruned_ms: The same for the pruned model.
        speedup: Mean over runs of the measured speedup (dense / pruned).
        runs: Runs measured on this device and batch size.
    """

    device: str
    device_name: str
    num_threads: int
    batch_size: int
    dense_ms: float
    pruned_ms: float
    speedup: float
    runs: int

    @property
    def device_key(self) -> str:
        """``cpu: Intel Xeon, 2 threads``: what must be equal for two measurements to compare."""
        threads = f", {self.num_threads} threads" if self.device == "cpu" else ""
        return one_line(f"{self.device}: {self.device_name}{threads}")


@dataclass(frozen=True)
class MethodRow:
    """One method's aggregate over its runs (seeds) in one table.

    Attributes:
        method: Method name (the plugin name).
        version: Method version.
        config: Canonical JSON of the method's config.
        label: What the Method column shows (``name vVERSION``, plus the config when it is not
            the method's default or tells rows apart), on one line.
        seeds: Sorted distinct seeds of the runs (one run per seed).
        top1_mean: Mean final-epoch test top-1, percent.
        top1_std: Sample standard deviation (ddof=1) of it, percent; None for a single run.
        delta_top1: ``top1_mean`` minus the table's dense test top-1, percentage points.
        sparsity: Mean sparsity (removed fraction of parameters), percent.
        macs_pruned: Mean MACs per example of the pruned model (non-zero-weight MACs for
            weight granularity).
        speedup: Mean speedup (dense MACs / pruned MACs).
        seeds_required: Seeds the shipped protocol asks for (``seeds``); None when the
            protocol is not shipped with the suite.
        top1_values: Final-epoch test top-1 of each run, in seed order, percent.
        top1_ci: Half-width of the 95% t-interval of the mean, percentage points; None for a
            single run (:func:`pruning_suite.report.stats.confidence_half_width`).
        rank: ``"1"``, or a shared range such as ``"1-2"`` (:func:`~.stats.shared_ranks`); empty
            for a row listed apart.
        params: Mean parameters of the pruned model (non-zero ones for weight granularity).
        run_ids: Run ids, in seed order.
        latency: Measured latency per device and batch size (empty for runs without it).
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
    top1_values: tuple[float, ...] = ()
    top1_ci: float | None = None
    rank: str = ""
    params: float = 0.0
    run_ids: tuple[str, ...] = ()
    latency: tuple[LatencyRow, ...] = ()

    @property
    def ci(self) -> tuple[float, float] | None:
        """The 95% confidence interval of the mean top-1 (percent), or None for one run."""
        if self.top1_ci is None:
            return None
        return self.top1_mean - self.top1_ci, self.top1_mean + self.top1_ci

    def measured(self, device_key: str) -> list[LatencyRow]:
        """This row's latency on ``device_key`` (:attr:`LatencyRow.device_key`), by batch size."""
        rows = [r for r in self.latency if r.device_key == device_key]
        return sorted(rows, key=lambda r: r.batch_size)


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
        rows: Methods with every seed the protocol requires, best mean top-1 first: ranked,
            each with its (possibly shared) rank.
        incomplete: Methods with fewer seeds than the shipped protocol requires, listed apart
            and never ranked (a dropped seed cannot lift a row).
        dense_top1: The dense test top-1 the delta column is against, percent: the protocol's
            pinned base model's (``dense_from_protocol``), else the mean over the table's runs.
        dense_params: Parameters of the dense base model (mean over the runs); None without runs.
        dense_macs: MACs per example of the dense base model; None without runs.
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
    dense_params: float | None = None
    dense_macs: float | None = None

    @property
    def caption(self) -> str:
        """The caption line: protocol@version, target, the statistic shown and the rank test."""
        return f"{self.title}: {STATISTIC}; {RANK_TEST}"

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

    @property
    def slug(self) -> str:
        """A file-safe name of the table: ``digits-convnet-v1-uniform-50-closed-S42``."""
        name = (
            f"{self.protocol}-v{self.protocol_version}-{self.target}-{self.division}-"
            f"{self.setup or 'uncertified'}"
        )
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.replace(".", ""))

    @property
    def latency_device(self) -> str | None:
        """The device most of the table's rows were measured on (the CPU on a tie), or None.

        Tables show measured speedup on this device only: latency is never compared across
        devices.
        """
        counts = Counter(
            key for row in self.rows for key in {lat.device_key for lat in row.latency}
        )
        if not counts:
            return None
        return min(counts, key=lambda key: (-counts[key], not key.startswith("cpu"), key))

    @property
    def rank_note(self) -> str:
        """The line under a ranked table naming the test and its threshold."""
        return (
            f"rank: Welch's two-sided t-test between every two rows at alpha {ALPHA:g}; a range "
            "(1-2) means those rows are not told apart at that level; 95% CI: mean ± "
            "t(0.975, n-1) · s / √n"
        )
