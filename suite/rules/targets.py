"""R-TARGET-1 (setup S1): the pruned model lands on the protocol target.

Two kinds of target (:class:`~pruning_suite.protocol.sections.PruningTarget`): a ratio target,
whose own sparsity and speedup (what its layer ratios give, measured by the runner) the achieved
figures must match within the protocol's ``target_tolerance``; and a budget target (``speedup``
only), which the achieved speedup must reach. :func:`target_misses` is the judgement itself,
shared by the rule and by ``pruning-suite prune``'s warning before a full run. This module does
not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, NamedTuple

from ..protocol.spec import ComparisonProtocol, PruningTarget, TargetTolerance
from ..record.submission import Submission
from .rule import CheckContext, Finding

__all__ = [
    "TargetMiss",
    "achieved_speedup",
    "check_target_tolerance",
    "judged_by",
    "target_misses",
]


def achieved_speedup(sub: Submission) -> float:
    """The speedup a target is judged by: dense / pruned MACs (filter granularity) or dense /
    effective MACs (weight granularity, whose tensors keep their shapes)."""
    m = sub.pruning
    if m.granularity == "weight" and m.effective_speedup is not None:
        return m.effective_speedup
    return m.speedup


def judged_by(ctx: CheckContext) -> ComparisonProtocol:
    """The protocol a setup requirement is judged against (the engine runs setup rules only for
    runs under a known protocol)."""
    assert ctx.protocol is not None, "setup rules run only under a known protocol"
    return ctx.protocol


def check_target_tolerance(ctx: CheckContext) -> Iterator[Finding]:
    """R-TARGET-1 (S1): achieved sparsity and speedup within the protocol's tolerance of the target's.

    Ratio targets: the target's own sparsity and speedup (``target.sparsity`` /
    ``target.speedup``: what the target's layer ratios give under the one count rule, measured by
    the runner) are the reference; sparsity within ``target_tolerance.sparsity`` (absolute
    fraction) and speedup within ``target_tolerance.speedup`` (relative). A method allocating its
    own layer-wise ratios passes when it lands as close. The target id must be one of the
    protocol's, with the protocol's ratio table; a file without the target's figures cannot be
    certified S1. Budget targets (``speedup`` only): the achieved speedup must reach the
    target's, ``>= speedup * (1 - target_tolerance.speedup)``; sparsity is recorded, not judged.
    """
    sub, protocol = ctx.submission, judged_by(ctx)
    target = sub.target
    known = {t.id: t for t in protocol.targets}
    if target.id not in known:
        yield Finding(
            "$.target.id",
            f"target {target.id!r} is not one of the protocol's ({', '.join(known)})",
            "run one of the protocol's targets",
        )
        return
    declared = known[target.id]
    if declared.layer_ratios is not None and dict(declared.layer_ratios) != dict(
        target.layer_ratios
    ):
        yield Finding(
            "$.target.layer_ratios",
            f"target {target.id!r} records ratios {dict(target.layer_ratios)} but the protocol's "
            f"are {dict(declared.layer_ratios)}",
            "do not edit a submission's target",
        )
    if not declared.is_budget and (target.sparsity is None or target.speedup is None):
        yield Finding(
            "$.target",
            "the target's sparsity and speedup are not recorded",
            "rerun with this suite, which measures them",
        )
    for miss in target_misses(
        declared, protocol.target_tolerance, sub.pruning.sparsity, achieved_speedup(sub),
        target.sparsity, target.speedup,
    ):  # fmt: skip
        yield _finding(miss, declared, protocol.target_tolerance)


class TargetMiss(NamedTuple):
    """One figure that misses R-TARGET-1: ``quantity`` achieved vs the ``reference`` it misses."""

    quantity: Literal["sparsity", "speedup"]
    achieved: float
    reference: float


def target_misses(
    target: PruningTarget,
    tolerance: TargetTolerance,
    sparsity: float,
    speedup: float,
    reference_sparsity: float | None,
    reference_speedup: float | None,
) -> list[TargetMiss]:
    """The figures by which a pruned model misses R-TARGET-1 (empty: it meets it).

    Shared by the rule and by ``pruning-suite prune``, which warns before a full run.

    Args:
        target: The protocol's target.
        tolerance: The protocol's ``target_tolerance``.
        sparsity: Achieved sparsity, a fraction.
        speedup: Achieved speedup (effective for weight granularity).
        reference_sparsity: What the target's ratios give (ignored for a budget target).
        reference_speedup: What the target's ratios give (a budget target's is its speedup).

    Returns:
        A budget target: a speedup below ``target.speedup * (1 - tolerance.speedup)``. A ratio
        target: a sparsity more than ``tolerance.sparsity`` (absolute) from the reference, a
        speedup more than ``tolerance.speedup`` (relative) from the reference; a reference that
        is None is not judged.
    """
    if target.speedup is not None:
        floor = target.speedup * (1 - tolerance.speedup)
        return [TargetMiss("speedup", speedup, target.speedup)] if speedup < floor else []
    misses = []
    if reference_sparsity is not None and abs(sparsity - reference_sparsity) > tolerance.sparsity:
        misses.append(TargetMiss("sparsity", sparsity, reference_sparsity))
    if reference_speedup is not None and abs(speedup / reference_speedup - 1) > tolerance.speedup:
        misses.append(TargetMiss("speedup", speedup, reference_speedup))
    return misses


def _finding(miss: TargetMiss, target: PruningTarget, tol: TargetTolerance) -> Finding:
    if miss.quantity == "sparsity":
        return Finding(
            "$.pruning.sparsity",
            f"sparsity {miss.achieved:.4f} is more than {tol.sparsity:g} from the "
            f"target's {miss.reference:.4f}",
            "prune to the target's sparsity (a method's own layer ratios must land as close)",
        )
    if target.is_budget:
        return Finding(
            "$.pruning.speedup",
            f"speedup {miss.achieved:.4f}x is below the budget target's {miss.reference:g}x "
            f"(tolerance {100 * tol.speedup:g}%)",
            "prune until dense MACs / pruned MACs reaches the target's speedup",
        )
    return Finding(
        "$.pruning.speedup",
        f"speedup {miss.achieved:.4f}x is more than {100 * tol.speedup:g}% from the target's "
        f"{miss.reference:.4f}x",
        "prune to the target's speedup (a method's own layer ratios must land as close)",
    )
