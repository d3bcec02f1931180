"""The paper's comparison setups as executable rules: certification, divisions, scratch budgets.

Wang et al. (arXiv 2301.05219, Table 2; arXiv 2301.05219) order comparison setups from weakest to
strictest, each adding one thing held equal to the previous:

====== =====================================================================================
S1     same dataset, network, and total sparsity or speedup (within the protocol's tolerance)
S2     same base model (the protocol's pinned checkpoint, or one the suite built from its recipe)
S3.1   same retraining epochs
S3.2   same whole retraining recipe: LR schedule, optimizer hyper-parameters, batch size,
       augmentation (the paper's recommended minimum)
S4.1   pruning-stage epochs within the protocol's pruning budget (0 for one-shot methods)
S4.2   the same pruning-stage LR schedule as the budget (strictest)
====== =====================================================================================

A submission is *certified* with the strictest setup whose requirements, and those of every
weaker setup, it meets (:func:`certify`). Its *division* is **closed** when that is S3.2 or
stricter, i.e. it was retrained with the protocol's own recipe; anything else is **open**,
ranked apart and disclosed. Smoke runs are never certified.

Every requirement is one rule (see RULES.md) with one check function here, returning
:class:`Unmet` items; ``pruning-suite validate`` reports them as warnings (a run may legitimately
be open-division) and reports an error only when a file's recorded certification claims more
than its fields support (R-CERT-1). This module does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.submission import Certification, Submission

__all__ = [
    "CLOSED_SETUPS",
    "SETUPS",
    "SETUP_RULES",
    "Unmet",
    "achieved_speedup",
    "certify",
    "check_base_model",
    "check_dataset_checksum",
    "check_pruning_stage_epochs",
    "check_pruning_stage_lr",
    "check_retraining_epochs",
    "check_retraining_recipe",
    "check_target_tolerance",
    "division_of",
    "scratch_epochs",
    "unmet_requirements",
]

SETUPS: tuple[str, ...] = ("S1", "S2", "S3.1", "S3.2", "S4.1", "S4.2")
"""The comparison setups, weakest to strictest (Wang et al., arXiv 2301.05219, Table 2)."""

CLOSED_SETUPS = frozenset({"S3.2", "S4.1", "S4.2"})
"""Setups of the closed division: the protocol's own whole retraining recipe, or stricter."""

Setup = Literal["S1", "S2", "S3.1", "S3.2", "S4.1", "S4.2"]
_REL_TOL_LR = 1e-9
_ABS_TOL_TOP1 = 1e-6  # percent; the same checkpoint on the same data gives the same accuracy


@dataclass(frozen=True)
class Unmet:
    """One requirement of a comparison setup that a submission does not meet.

    Attributes:
        rule: The rule id (RULES.md), e.g. ``"R-RETRAIN-2"``.
        setup: The setup that requires it, e.g. ``"S3.1"``.
        where: JSON path in the submission, e.g. ``"$.retraining"``.
        message: What differs, one line.
        hint: How to meet it, one line.
    """

    rule: str
    setup: str
    where: str
    message: str
    hint: str = ""


RuleCheck = Callable[[Submission, ComparisonProtocol], Iterator[Unmet]]


def achieved_speedup(sub: Submission) -> float:
    """The speedup a target is judged by: dense / pruned MACs (filter granularity) or dense /
    effective MACs (weight granularity, whose tensors keep their shapes)."""
    m = sub.pruning
    if m.granularity == "weight" and m.effective_speedup is not None:
        return m.effective_speedup
    return m.speedup


# ----------------------------------------------------------------------------------- S1


def check_dataset_checksum(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-DATA-2 (S1): the data loaded has the protocol's checksum (unless it is 'unpinned')."""
    pinned = protocol.dataset.sha256
    if pinned != "unpinned" and sub.protocol.dataset_sha256 != pinned:
        yield Unmet(
            "R-DATA-2",
            "S1",
            "$.protocol.dataset_sha256",
            f"dataset sha256 {sub.protocol.dataset_sha256[:12]}... is not the protocol's "
            f"{pinned[:12]}...; the run used other data",
            "use the dataset files the protocol pins (see 'pruning-suite protocols show')",
        )


def check_target_tolerance(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-TARGET-1 (S1): achieved sparsity and speedup within the protocol's tolerance of the target's.

    The target's own sparsity and speedup (``target.sparsity`` / ``target.speedup``: what the
    target's layer ratios give under the one count rule, measured by the runner) are the
    reference; sparsity within ``target_tolerance.sparsity`` (absolute fraction) and speedup within
    ``target_tolerance.speedup`` (relative). A method allocating its own layer-wise ratios passes
    when it lands as close. The target id must be one of the protocol's, with the protocol's
    ratio table; a file without the target's figures cannot be certified S1.
    """
    tol = protocol.target_tolerance
    target = sub.target
    known = {t.id: t for t in protocol.targets}
    if target.id not in known:
        yield Unmet(
            "R-TARGET-1",
            "S1",
            "$.target.id",
            f"target {target.id!r} is not one of the protocol's ({', '.join(known)})",
            "run one of the protocol's targets",
        )
        return
    declared = known[target.id].layer_ratios
    if declared is not None and dict(declared) != dict(target.layer_ratios):
        yield Unmet(
            "R-TARGET-1",
            "S1",
            "$.target.layer_ratios",
            f"target {target.id!r} records ratios {dict(target.layer_ratios)} but the protocol's "
            f"are {dict(declared)}",
            "do not edit a submission's target",
        )
    if target.sparsity is None or target.speedup is None:
        yield Unmet(
            "R-TARGET-1",
            "S1",
            "$.target",
            "the target's sparsity and speedup are not recorded",
            "rerun with this suite, which measures them",
        )
    if target.sparsity is not None and abs(sub.pruning.sparsity - target.sparsity) > tol.sparsity:
        yield Unmet(
            "R-TARGET-1",
            "S1",
            "$.pruning.sparsity",
            f"sparsity {sub.pruning.sparsity:.4f} is more than {tol.sparsity:g} from the "
            f"target's {target.sparsity:.4f}",
            "prune to the target's sparsity (a method's own layer ratios must land as close)",
        )
    speedup = achieved_speedup(sub)
    if target.speedup is not None and abs(speedup / target.speedup - 1) > tol.speedup:
        yield Unmet(
            "R-TARGET-1",
            "S1",
            "$.pruning.speedup",
            f"speedup {speedup:.4f}x is more than {100 * tol.speedup:g}% from the target's "
            f"{target.speedup:.4f}x",
            "prune to the target's speedup (a method's own layer ratios must land as close)",
        )


# ----------------------------------------------------------------------------------- S2


def check_base_model(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-BASE-2 (S2): the run starts from the protocol's base model.

    When the protocol pins its base model (``base_reference``), the checkpoint sha256 and the
    dense test top-1 (absolute tolerance 1e-6 pp) must equal the pinned ones. Otherwise the base
    model must be one the suite built from the protocol's own recipe and seed, or its published
    pretrained weights (source ``trained``, ``cached`` or ``pretrained``), not an imported one.
    """
    base, ref = sub.base_model, protocol.base_reference
    if ref is not None and ref.checkpoint_sha256 is not None:
        if base.checkpoint_sha256 != ref.checkpoint_sha256:
            yield Unmet(
                "R-BASE-2",
                "S2",
                "$.base_model.checkpoint_sha256",
                f"base checkpoint {base.checkpoint_sha256[:12]}... is not the protocol's pinned "
                f"{ref.checkpoint_sha256[:12]}...",
                "start from the protocol's base model ('pruning-suite base import FILE --protocol ID')",
            )
    elif base.source not in ("trained", "cached", "pretrained"):
        yield Unmet(
            "R-BASE-2",
            "S2",
            "$.base_model.source",
            f"base model source {base.source!r}: not built from the protocol's recipe",
            "let the suite train the base model from the protocol's recipe (drop the import)",
        )
    if ref is not None and ref.dense_test_top1 is not None:
        if abs(base.dense_test_top1 - ref.dense_test_top1) > _ABS_TOL_TOP1:
            yield Unmet(
                "R-BASE-2",
                "S2",
                "$.base_model.dense_test_top1",
                f"base dense test top-1 {base.dense_test_top1:.2f} is not the protocol's "
                f"{ref.dense_test_top1:.2f}",
                "start from the protocol's base model",
            )


# ----------------------------------------------------------------------------------- S3.x


def check_retraining_epochs(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-RETRAIN-2 (S3.1): exactly the protocol's retraining epochs are logged."""
    logged, epochs = len(sub.retraining), protocol.retraining.epochs
    if logged != epochs:
        yield Unmet(
            "R-RETRAIN-2",
            "S3.1",
            "$.retraining",
            f"{logged} retraining epochs logged; protocol {protocol.id}@{protocol.version} "
            f"retrains for {epochs}",
            "retrain with the protocol's epochs (drop --retrain-epochs) for S3.1 or stricter",
        )


def check_retraining_recipe(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-RETRAIN-3 (S3.2): the whole retraining recipe is the protocol's.

    Every logged epoch's LR equals the protocol's schedule at that epoch (relative 1e-9), and the
    recorded recipe (optimizer, momentum, weight decay, Nesterov, batch size, augmentation, LR
    schedule, epochs) equals the protocol's field by field. A file that records no recipe cannot
    be certified S3.2.
    """
    recipe = protocol.retraining
    for i, row in enumerate(sub.retraining):
        expected = recipe.lr_at(i)
        if not math.isclose(row.lr, expected, rel_tol=_REL_TOL_LR):
            yield Unmet(
                "R-RETRAIN-3",
                "S3.2",
                f"$.retraining[{i}].lr",
                f"epoch {i} ran at LR {row.lr:.10g}; the protocol's schedule "
                f"({recipe.lr_schedule}) says {expected:.10g}",
                "retrain with the protocol's LR schedule (drop --retrain-lr-schedule)",
            )
            break
    if sub.retraining_recipe is None:
        yield Unmet(
            "R-RETRAIN-3",
            "S3.2",
            "$.retraining_recipe",
            "the retraining recipe is not recorded",
            "rerun with this suite, which records it",
        )
        return
    for name, used, wanted in _recipe_differences(sub.retraining_recipe, recipe):
        yield Unmet(
            "R-RETRAIN-3",
            "S3.2",
            f"$.retraining_recipe.{name}",
            f"retraining {name} is {used!r}; the protocol's is {wanted!r}",
            "retrain with the protocol's whole recipe for S3.2 or stricter",
        )


def _recipe_differences(recorded: object, recipe: TrainRecipe) -> list[tuple[str, object, object]]:
    wanted = recipe.model_dump(mode="json")
    used = recorded.model_dump(mode="json")  # type: ignore[attr-defined]
    return [
        (name, used.get(name), value) for name, value in wanted.items() if used.get(name) != value
    ]


# ----------------------------------------------------------------------------------- S4.x


def check_pruning_stage_epochs(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-STAGE-1 (S4.1): pruning-stage epochs within the protocol's pruning budget (0 = one-shot)."""
    stage, budget = sub.pruning_stage, protocol.pruning_budget
    if stage is None:
        yield Unmet(
            "R-STAGE-1",
            "S4.1",
            "$.pruning_stage",
            "the pruning stage is not recorded",
            "rerun with this suite, which records it",
        )
    elif stage.epochs > budget.epochs:
        yield Unmet(
            "R-STAGE-1",
            "S4.1",
            "$.pruning_stage.epochs",
            f"the pruning stage trained {stage.epochs} epochs; the protocol's budget is "
            f"{budget.epochs}",
            "fit the method's pruning-stage training into the protocol's pruning budget",
        )


def check_pruning_stage_lr(sub: Submission, protocol: ComparisonProtocol) -> Iterator[Unmet]:
    """R-STAGE-2 (S4.2): the pruning stage's LR schedule is the budget's (both none when one-shot)."""
    stage, budget = sub.pruning_stage, protocol.pruning_budget
    if stage is not None and stage.lr_schedule != budget.lr_schedule:
        yield Unmet(
            "R-STAGE-2",
            "S4.2",
            "$.pruning_stage.lr_schedule",
            f"pruning-stage LR schedule {stage.lr_schedule!r}; the budget's is "
            f"{budget.lr_schedule!r}",
            "use the protocol's pruning-stage LR schedule",
        )


SETUP_RULES: tuple[tuple[str, str, RuleCheck], ...] = (
    ("S1", "R-DATA-2", check_dataset_checksum),
    ("S1", "R-TARGET-1", check_target_tolerance),
    ("S2", "R-BASE-2", check_base_model),
    ("S3.1", "R-RETRAIN-2", check_retraining_epochs),
    ("S3.2", "R-RETRAIN-3", check_retraining_recipe),
    ("S4.1", "R-STAGE-1", check_pruning_stage_epochs),
    ("S4.2", "R-STAGE-2", check_pruning_stage_lr),
)
"""(setup, rule id, check) for every requirement of every setup, weakest setup first."""


def unmet_requirements(sub: Submission, protocol: ComparisonProtocol) -> list[Unmet]:
    """Every requirement of every setup that ``sub`` does not meet under ``protocol``."""
    return [unmet for _, _, check in SETUP_RULES for unmet in check(sub, protocol)]


def certify(sub: Submission, protocol: ComparisonProtocol) -> Certification:
    """The strictest comparison setup ``sub`` satisfies under ``protocol``, and its division.

    Setups are cumulative: S3.2 also needs S1, S2 and S3.1. Smoke runs are never certified.

    Args:
        sub: A submission (its ``certification`` field is ignored).
        protocol: The protocol it ran under (same id, version and content).

    Returns:
        ``setup`` (None when even S1 fails, or for a smoke run), ``division`` and the one-line
        reasons the next stricter setup is not met (``unmet``).
    """
    if sub.smoke:
        return Certification(setup=None, division="open", unmet=["smoke run: reduced budget"])
    if sub.scratch is not None:
        return _certify_scratch(sub, protocol)
    unmet = unmet_requirements(sub, protocol)
    failed = {u.setup for u in unmet}
    setup = None
    for candidate in SETUPS:
        if candidate in failed:
            break
        setup = candidate
    return Certification(
        setup=setup,
        division=division_of(setup),
        unmet=[f"{u.setup} {u.rule}: {u.message}" for u in unmet],
    )


def _certify_scratch(sub: Submission, protocol: ComparisonProtocol) -> Certification:
    """A scratch baseline: its SX setup when S1 holds and it trained exactly its budget (R-SX-1)
    under the protocol's K1, K2, P; open division (it is compared with pruning in studies, not
    ranked among pruning methods)."""
    info = sub.scratch
    assert info is not None
    unmet = [u for s, _, check in SETUP_RULES if s == "S1" for u in check(sub, protocol)]
    reasons = [f"{u.setup} {u.rule}: {u.message}" for u in unmet]
    budget = scratch_epochs(
        info.setup,
        protocol.base_model.recipe.epochs,
        protocol.retraining.epochs,
        sub.pruning.flops_dense,
        sub.pruning.flops_pruned,
        protocol.scratch.includes_retraining,
        protocol.pruning_budget.epochs,
    )
    if len(sub.retraining) != budget:
        reasons.append(
            f"{info.setup} R-SX-1: {len(sub.retraining)} scratch epochs logged, budget {budget}"
        )
    setup = None if reasons else info.setup
    return Certification(setup=setup, division="open", unmet=reasons)


def division_of(setup: str | None) -> Literal["closed", "open"]:
    """``closed`` for S3.2 or stricter (the protocol's own retraining recipe), else ``open``."""
    return "closed" if setup in CLOSED_SETUPS else "open"


# ----------------------------------------------------------------------------------- SX


def scratch_recipe(protocol: ComparisonProtocol, epochs: int) -> TrainRecipe:
    """The recipe a scratch baseline trains with for ``epochs`` epochs (its SX-A / SX-B budget).

    The protocol's base-model recipe with its epochs set to the budget and its LR milestones
    scaled by ``epochs / K1`` (rounded to whole epochs; milestones that collide keep the later
    LR): the paper's "scratch, step LR" (arXiv 2301.05219, Table 6). E.g. a base recipe of 15
    epochs ``0:0.05,10:0.005`` at a 25-epoch budget gives ``0:0.05,17:0.005``.

    Raises:
        ValueError: ``epochs`` < 1.
    """
    if epochs < 1:
        raise ValueError(f"a scratch budget needs >= 1 epoch, got {epochs}")
    base = protocol.base_model.recipe
    scaled: dict[int, float] = {}
    for start, lr in base.stages:
        scaled[round(start * epochs / base.epochs)] = lr
    stages = ",".join(f"{start}:{lr:g}" for start, lr in sorted(scaled.items()) if start < epochs)
    recipe = base.model_copy(update={"epochs": epochs, "lr_schedule": stages})
    return TrainRecipe.model_validate(recipe.model_dump())


def scratch_epochs(
    setup: Literal["SX-A", "SX-B"],
    pretrain_epochs: int,
    retraining_epochs: int,
    flops_dense: int | None = None,
    flops_pruned: int | None = None,
    includes_retraining: bool = True,
    pruning_epochs: int = 0,
) -> int:
    """Training epochs a scratch baseline gets to match the pruning pipeline's budget.

    arXiv 2301.05219 (Table 2): SX-A gives scratch the same total epochs as pretrain + prune + retrain,
    ``K1 + P + K2``; SX-B the same total FLOPs, ``K1 x F1 / F2 + K2`` (``+ K2`` only when the
    protocol's ``scratch.includes_retraining``), rounded up to whole epochs, where the small model
    costs ``F2`` FLOPs per example against the dense ``F1``.

    Args:
        setup: ``"SX-A"`` or ``"SX-B"``.
        pretrain_epochs: ``K1``, the base model's training epochs.
        retraining_epochs: ``K2``.
        flops_dense: ``F1``, FLOPs per example of the dense model (SX-B).
        flops_pruned: ``F2``, FLOPs per example of the pruned model (SX-B).
        includes_retraining: SX-B: whether ``K2`` is added.
        pruning_epochs: ``P``, pruning-stage epochs (SX-A).

    Returns:
        Whole epochs, e.g. K1 = 160 at a 2x FLOP reduction: 320, or 360 with K2 = 40.

    Raises:
        ValueError: An unknown setup, negative epochs, or SX-B without positive FLOPs.
    """
    if min(pretrain_epochs, retraining_epochs, pruning_epochs) < 0:
        raise ValueError("epochs must be >= 0")
    if setup == "SX-A":
        return pretrain_epochs + pruning_epochs + retraining_epochs
    if setup != "SX-B":
        raise ValueError(f"unknown scratch setup {setup!r}; use 'SX-A' or 'SX-B'")
    if not flops_dense or not flops_pruned or flops_dense <= 0 or flops_pruned <= 0:
        raise ValueError("SX-B needs the dense and pruned FLOPs (positive integers)")
    # exact integer ceiling of K1 * F1 / F2, so a 2x reduction of 160 epochs is exactly 320
    scaled = -(-pretrain_epochs * flops_dense // flops_pruned)
    return scaled + (retraining_epochs if includes_retraining else 0)
