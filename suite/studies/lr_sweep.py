"""``lr-sweep`` (M1): one method, the same epochs, several retraining LR schedules.

Optionally the first LR stage is extended by N epochs (the paper's "+N epochs" rows) and each
schedule is run with and without OrthP. A larger LR converges faster within a fixed budget because
pruning damages trainability (Wang et al., arXiv 2301.05219, Sec. 4-5).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PruningSuiteError
from ..protocol.catalogue import load_protocol
from ..protocol.schedule import parse_schedule
from .base import (
    Arm,
    Study,
    StudyResult,
    canonical_schedule,
    check_fits,
    extend_first_stage,
    parse_schedule_option,
)
from .lr_sweep_claims import claims_text

if TYPE_CHECKING:
    from ..protocol.comparison import ComparisonProtocol
    from ..protocol.sections import TrainRecipe
    from ..run.config import RunConfig

__all__ = ["LRSweep", "default_schedules", "lr_sweep_arms"]

ORTHP_VARIANTS = {"off": [False], "on": [True], "both": [False, True]}


def lr_sweep_arms(
    base_job: Any,
    schedules: Sequence[str],
    seeds: Sequence[int],
    extend: int = 0,
    orthp: str = "off",
) -> list[Arm]:
    """The arms of an LR sweep (M1): one per schedule (x OrthP off/on), plus "+N epochs" ones.

    Args:
        base_job: A ``RunConfig`` naming protocol, target, plugin, output folder and smoke.
        schedules: Retraining LR schedules ``"epoch:lr,..."``; the protocol's own one gives a
            closed-division arm, the others are open division (disclosed).
        seeds: Seeds of every arm.
        extend: When > 0, each schedule that is not the protocol's also gets an arm with its
            first stage extended by this many epochs.
        orthp: ``"off"``, ``"on"`` or ``"both"``.

    Raises:
        PruningSuiteError: No schedule, one given twice, a stage after the last epoch, or
            ``orthp`` is not one of the three.
    """
    if orthp not in ORTHP_VARIANTS:
        raise PruningSuiteError(f"--orthp {orthp!r}", "use off, on or both")
    recipe = load_protocol(base_job.protocol).retraining
    schedules = _checked_schedules(schedules, recipe)
    first_lrs = [_schedule_label(schedule) for schedule in schedules]
    arms = []
    for schedule in schedules:
        for sched, epochs, suffix in _lengths(schedule, recipe, extend):
            name = _schedule_label(sched)
            if first_lrs.count(name) > 1:  # two schedules start at one LR: name them whole
                name = f"LR {sched}"
            override: dict[str, Any] = {}
            if sched != recipe.lr_schedule:
                override["retraining_lr_schedule"] = sched
            if epochs != recipe.epochs:
                override["retraining_epochs"] = epochs
            for with_orthp in ORTHP_VARIANTS[orthp]:
                label = name + suffix + (" +OrthP" if with_orthp else "")
                jobs = (replace(base_job, seed=s, orthp=with_orthp, **override) for s in seeds)
                arms.append(Arm(label, tuple(jobs)))
    return arms


def _checked_schedules(schedules: Sequence[str], recipe: TrainRecipe) -> list[str]:
    """The schedules in one spelling each, refusing none, repeats and stages past the last epoch."""
    if not schedules:
        raise PruningSuiteError(
            "an LR sweep needs at least one schedule", "pass --schedule 0:0.01,30:0.001"
        )
    canonical = [canonical_schedule(schedule, recipe.lr_schedule) for schedule in schedules]
    repeated = sorted({x for x in canonical if canonical.count(x) > 1})
    if repeated:
        raise PruningSuiteError(
            f"--schedule {repeated[0]} is given more than once (schedules are compared after "
            "parsing, so 1e-3 and 0.001 are the same)",
            "give each LR schedule once",
        )
    for schedule in canonical:
        check_fits(schedule, recipe.epochs)
    return canonical


def _lengths(schedule: str, recipe: TrainRecipe, extend: int) -> list[tuple[str, int, str]]:
    """``(schedule, epochs, label suffix)``: as given, and its "+N epochs" variant when asked."""
    plans = [(schedule, recipe.epochs, "")]
    if extend and schedule != recipe.lr_schedule:
        longer, epochs = extend_first_stage(recipe, schedule, extend)
        plans.append((longer, epochs, f" +{extend} epochs"))
    return plans


def _schedule_label(schedule: str) -> str:
    return f"LR {parse_schedule(schedule)[0][1]:g}"


def default_schedules(protocol: ComparisonProtocol) -> list[str]:
    """The protocol's retraining schedule and the same schedule at a 10x smaller LR."""
    own = protocol.retraining.lr_schedule
    smaller = ",".join(f"{start}:{lr / 10:g}" for start, lr in protocol.retraining.stages)
    return [own, smaller]


class LRSweep(Study):
    """M1 as a study: one method retrained under several LR schedules in the same epochs."""

    name = "lr-sweep"
    help = "M1: one method, several retraining LR schedules"
    intro = (
        "One method retrained under several LR schedules in the same epochs (M1). TA is "
        "the mean accuracy over the first LR stage of retraining."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--plugin``, ``--schedule`` (repeatable), ``--extend N`` and ``--orthp``."""
        parser.add_argument("--plugin", required=True)
        parser.add_argument(
            "--schedule",
            action="append",
            default=[],
            help="retraining LR schedule 'epoch:lr,...' (repeatable; default: the protocol's and "
            "the same at a 10x smaller LR)",
        )
        parser.add_argument(
            "--extend", type=int, default=0, help="also extend the first LR stage by N epochs"
        )
        parser.add_argument("--orthp", choices=["off", "on", "both"], default="off")

    def check(self, args: argparse.Namespace) -> None:
        """Refuse a negative ``--extend`` and a schedule that does not parse."""
        if args.extend < 0:
            raise PruningSuiteError(
                f"--extend {args.extend}", "extend the first LR stage by N >= 0 epochs"
            )
        for schedule in args.schedule:
            parse_schedule_option(schedule)

    def arms(
        self,
        args: argparse.Namespace,
        base: RunConfig,
        protocol: ComparisonProtocol,
        seeds: Sequence[int],
    ) -> list[Arm]:
        """One arm per schedule (default: the protocol's and 10x smaller), x OrthP, x extension."""
        schedules = args.schedule or default_schedules(protocol)
        return lr_sweep_arms(base, schedules, seeds, args.extend, args.orthp)

    def verdicts(self, result: StudyResult, args: argparse.Namespace) -> list[str]:
        """The M1 claims of :func:`~pruning_suite.studies.lr_sweep_claims.claims_text`."""
        return claims_text(result)

    def page_tables(self, result: StudyResult) -> list[str]:
        """The TA table (trainability accuracy, val and test, beside the final top-1)."""
        from ..report.figures import ta_table

        rows = [
            {
                "arm": label,
                "ta_val": s.trainability.ta_val,
                "ta_test": s.trainability.ta_test,
                "final_test_top1": s.final.test_top1,
            }
            for label, subs in result.arms.items()
            for s in subs
            if s.trainability is not None
        ]
        return [ta_table(rows) if rows else "(no trainability recorded)", ""]

    def page_figures(self, result: StudyResult, out_dir: Path) -> tuple[list[str], list[Path]]:
        """Mean JSV vs epoch (log scale, with the dense model's), when every run recorded it."""
        from ..report.figures import plot_jsv_vs_epoch

        jsv = {
            label: [[(r.epoch, r.mean) for r in s.trainability.jsv] for s in subs]
            for label, subs in result.arms.items()
            if all(s.trainability and s.trainability.jsv for s in subs)
        }
        if not jsv:
            return [], []
        dense = [
            s.trainability.jsv_dense.mean
            for subs in result.arms.values()
            for s in subs
            if s.trainability and s.trainability.jsv_dense
        ]
        written = plot_jsv_vs_epoch(
            jsv, out_dir / "jsv-vs-epoch", statistics.fmean(dense) if dense else None
        )
        return ["", "![mean JSV vs epoch](jsv-vs-epoch.png)"], written
