"""``scratch`` (M2): the method at its protocol (S4.2) against the same architecture trained from
scratch under the SX-A (same epochs) and SX-B (same FLOPs) budgets (Wang et al., arXiv
2301.05219, Sec. 4: "inheriting the pretrained weights has no value")."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .base import Arm, Study, StudyResult
from .verdicts import Claim, claims_paragraph, mean_top1, seed_noise, unjudgeable

if TYPE_CHECKING:
    from ..protocol.comparison import ComparisonProtocol
    from ..run.config import RunConfig

__all__ = ["Scratch", "SCRATCH_BUDGETS", "scratch_arms", "scratch_claims"]

#: The scratch training budgets compared with pruning (see RULES.md, SX-A and SX-B).
SCRATCH_BUDGETS = ("SX-A", "SX-B")


def scratch_arms(base_job: Any, seeds: Sequence[int]) -> list[Arm]:
    """Pruning (the protocol's recipe, S4.2) against scratch training at SX-A and SX-B (M2)."""
    method = base_job.plugin
    arms = [Arm(f"{method} (pruned, retrained)", tuple(replace(base_job, seed=s) for s in seeds))]
    for setup in SCRATCH_BUDGETS:
        config = {"arch_from": method, "setup": setup}
        jobs = tuple(
            replace(base_job, plugin="scratch", method_config=config, seed=s) for s in seeds
        )
        arms.append(Arm(f"scratch {setup}", jobs))
    return arms


def scratch_claims(result: StudyResult) -> list[Claim]:
    """M2 (arXiv 2301.05219, Sec. 4): "inheriting the pretrained weights has no value", judged per
    scratch budget: it holds when scratch training reaches the pruned-and-retrained accuracy
    (is not below it by more than the larger seed std), and does not hold when pruning wins.

    Returns:
        One claim per scratch arm (``"scratch SX-A"``, ``"scratch SX-B"``); none with smoke runs
        or one seed per arm.
    """
    if unjudgeable(result):
        return []
    labels = list(result.arms)
    pruned = result.arms[labels[0]]
    return [_m2(labels[0], pruned, label, result.arms[label]) for label in labels[1:]]


def _m2(pruned_label: str, pruned: list, label: str, scratch: list) -> Claim:
    gap = mean_top1(pruned) - mean_top1(scratch)
    noise = seed_noise([s.final.test_top1 for s in pruned], [s.final.test_top1 for s in scratch])
    budget = scratch[0].scratch
    epochs = f", {budget.epochs} epochs" if budget is not None else ""
    return Claim(
        f"inheriting the base model's weights has no value at {label.split()[-1]} (M2)",
        "does not hold" if gap > noise else "holds",
        f"Final test top-1 {pruned_label} {mean_top1(pruned):.2f} vs {label}{epochs} "
        f"{mean_top1(scratch):.2f} ({gap:+.2f} pp for pruning, seed std {noise:.2f}).",
    )


class Scratch(Study):
    """M2 as a study: pruning and retraining against training the small model from scratch."""

    name = "scratch"
    help = "M2: pruning (S4.2) against scratch at SX-A and SX-B"
    intro = (
        "The pruned-and-retrained model against the same small architecture trained from "
        "scratch under the SX-A (same epochs) and SX-B (same FLOPs) budgets (M2)."
    )
    epoch_axis = "epoch (of retraining; scratch arms: of training)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--plugin``: the method whose pruned architecture scratch training starts from."""
        parser.add_argument("--plugin", required=True)

    def arms(
        self,
        args: argparse.Namespace,
        base: RunConfig,
        protocol: ComparisonProtocol,
        seeds: Sequence[int],
    ) -> list[Arm]:
        """The pruned arm, then one scratch arm per budget."""
        return scratch_arms(base, seeds)

    def verdicts(self, result: StudyResult, args: argparse.Namespace) -> list[str]:
        """M2 per scratch budget, or why the runs cannot be judged."""
        why_not = unjudgeable(result)
        return [why_not] if why_not else claims_paragraph(result, scratch_claims(result))
