"""Progress display and the run summary, with rich (written to stderr; stdout keeps the summary)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..engine.train import EpochStats
from ..record.submission import Submission
from ..run.runner import RunObserver
from ..text import one_line

__all__ = ["LOG_EVERY_S", "ConsoleObserver", "print_summary"]

LOG_EVERY_S = 30.0
"""Where stderr is a log file, a line within an epoch at most once per this many seconds."""


class ConsoleObserver(RunObserver):
    """Shows the current step and an epoch bar per training phase on stderr, with the time
    spent and the time left (rich's estimate from the epochs done). Where stderr is not a
    terminal (a log file, a batch job), a live bar would be drawn only at the end, so each epoch
    is one plain line instead."""

    def __init__(self, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.enabled = enabled
        self.lines = enabled and not self.console.is_terminal
        self._done: dict[str, tuple[int, int]] = {}
        self._logged = time.monotonic()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled or self.lines,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> ConsoleObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, name: str) -> None:
        if self.enabled:
            self.progress.console.print(f"[bold]{name}[/bold]")

    def phase_start(self, phase: str, epochs: int) -> None:
        self._tasks[phase] = self.progress.add_task(f"{phase:>10} epochs", total=epochs, info="")
        self._done[phase] = (0, epochs)

    def batches(self, phase: str, done: int, total: int) -> None:
        """Move the phase's bar within an epoch (so its time left is estimated mid-epoch); in a
        log, a line at most every :data:`LOG_EVERY_S` seconds."""
        epochs, total_epochs = self._done.get(phase, (0, 0))
        if phase not in self._tasks or total <= 0:
            return
        self.progress.update(self._tasks[phase], completed=epochs + done / total)
        now = time.monotonic()
        if self.lines and now - self._logged >= LOG_EVERY_S:
            self._logged = now
            self.console.print(
                f"{phase:>10} epoch {epochs + 1}/{total_epochs}  batch {done}/{total}",
                highlight=False,
            )

    def epoch_end(self, phase: str, row: EpochStats) -> None:
        info = f"lr {row.lr:g}  loss {row.train_loss:.3f}  val {row.val_top1:.2f}%"
        done, total = self._done.get(phase, (0, 0))
        self.progress.update(self._tasks[phase], completed=done + 1, info=info)
        self._done[phase] = (done + 1, total)
        if self.lines:
            self.console.print(f"{phase:>10} epoch {done + 1}/{total}  {info}", highlight=False)


def _size_line(p: Any) -> str:
    if p.granularity == "weight":
        return (
            f"  non-zero params {p.params_dense:,} -> {p.params_nonzero:,} (sparsity {100 * p.sparsity:.2f}%), "
            f"effective MACs {p.macs_dense:,} -> {p.macs_effective:,}, effective speedup "
            f"{p.effective_speedup:.2f}x (dense shapes kept: speedup {p.speedup:.2f}x)"
        )
    return (
        f"  params {p.params_dense:,} -> {p.params_pruned:,} (sparsity {100 * p.sparsity:.2f}%), "
        f"MACs {p.macs_dense:,} -> {p.macs_pruned:,}, speedup {p.speedup:.2f}x"
    )


def _certified_line(s: Submission) -> str:
    cert = s.certification
    if cert is None or cert.setup is None:
        return "  certified      none (smoke run or setup unmet; see 'pruning-suite validate')"
    extras = []
    if s.method.reinit:
        extras.append(f"re-initialized with {s.method.reinit}")
    if s.retraining_override:
        extras.append(f"retraining override {s.retraining_override}")
    more = f"; {', '.join(extras)}" if extras else ""
    return f"  certified      {cert.setup}, {cert.division} division{more}"


def print_summary(
    submission: Submission, path: Path, kept_stored: bool = False, replaced: str | None = None
) -> None:
    """Print the run's result in a few lines on stdout; ``kept_stored``: the run reproduced
    the submission already at ``path``, which was kept; ``replaced``: why the file there was
    replaced (:attr:`~pruning_suite.run.config.RunResult.replaced`)."""
    s, p = submission, submission.pruning
    smoke = "  [smoke run: reduced budget, not rankable]" if s.smoke else ""
    lines = [
        f"run {s.run_id}: {s.method.name} v{s.method.version} on {s.protocol.id}@{s.protocol.version}, "
        f"target {s.target.id}, seed {s.seed}{smoke}",
        f"  base model     top-1 {s.base_model.dense_test_top1:.2f}% ({s.base_model.source}, sha256 {s.base_model.checkpoint_sha256[:12]})",
        f"  pruned         top-1 {s.final.pruned_test_top1_before_retraining:.2f}% before retraining",
        f"  {'from scratch' if s.scratch else 'retrained   '}   top-1 {s.final.test_top1:.2f}% "
        f"(final epoch {len(s.retraining) - 1}"
        f"{f', {s.scratch.setup} budget {s.scratch.epochs} epochs' if s.scratch else ''}), "
        f"delta {s.final.delta_top1:+.2f} pp",
        _size_line(p),
        ("  weights kept   " if p.granularity == "weight" else "  widths         ")
        + ", ".join(f"{layer.name} {layer.before}->{layer.after}" for layer in p.layers),
        _certified_line(s),
        f"  time           {s.timings.total:.1f} s (base {s.timings.base_model:.1f}, retraining {s.timings.retraining:.1f})",
        f"  reproduced     {path} (every field a rerun determines is identical; kept as it was)"
        if kept_stored
        else f"  replaced       {path} ({replaced})"
        if replaced
        else f"  written to     {path}",
    ]
    print("\n".join(one_line(line) for line in lines))  # names from files forge no line
