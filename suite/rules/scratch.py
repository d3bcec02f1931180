"""Scratch baselines (SX-A / SX-B) and declared retraining recipes: budgets and their rules.

arXiv 2301.05219 (Table 2) gives a model trained from scratch the pruning pipeline's budget: SX-A
the same total epochs, SX-B the same total FLOPs. :class:`ScratchBudget` holds the numbers a
budget is computed from, :func:`scratch_epochs` computes it (once, for the runner, certification
and ``validate``), and :func:`scratch_recipe` gives the recipe it trains with. This module does
not import torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.submission import ScratchInfo
from .rule import CheckContext, Finding, lr_matches

__all__ = [
    "ScratchBudget",
    "check_retraining_override",
    "check_scratch_budget",
    "scratch_epochs",
    "scratch_recipe",
]


@dataclass(frozen=True)
class ScratchBudget:
    """What a scratch baseline's epoch budget is computed from (arXiv 2301.05219, Table 2).

    Attributes:
        setup: ``"SX-A"`` (same epochs) or ``"SX-B"`` (same FLOPs).
        pretrain_epochs: ``K1``, the base model's training epochs.
        retraining_epochs: ``K2``, the protocol's retraining epochs.
        flops_dense: ``F1``, FLOPs per example of the dense model (SX-B).
        flops_pruned: ``F2``, FLOPs per example of the pruned model (SX-B).
        includes_retraining: SX-B: whether ``K2`` is added.
        pruning_epochs: ``P``, pruning-stage epochs (SX-A).
    """

    setup: Literal["SX-A", "SX-B"]
    pretrain_epochs: int
    retraining_epochs: int
    flops_dense: int | None = None
    flops_pruned: int | None = None
    includes_retraining: bool = True
    pruning_epochs: int = 0

    @classmethod
    def under(
        cls,
        protocol: ComparisonProtocol,
        setup: Literal["SX-A", "SX-B"],
        flops_dense: int,
        flops_pruned: int,
    ) -> ScratchBudget:
        """The budget ``protocol`` gives (its K1, K2, P and ``scratch.includes_retraining``) for
        a pruned model of ``flops_pruned`` FLOPs per example against the dense ``flops_dense``."""
        return cls(
            setup=setup,
            pretrain_epochs=protocol.base_model.recipe.epochs,
            retraining_epochs=protocol.retraining.epochs,
            flops_dense=flops_dense,
            flops_pruned=flops_pruned,
            includes_retraining=protocol.scratch.includes_retraining,
            pruning_epochs=protocol.pruning_budget.epochs,
        )

    @classmethod
    def recorded(cls, info: ScratchInfo) -> ScratchBudget:
        """The budget a submission's ``scratch`` block records."""
        return cls(
            setup=info.setup,
            pretrain_epochs=info.pretrain_epochs,
            retraining_epochs=info.retraining_epochs,
            flops_dense=info.flops_dense,
            flops_pruned=info.flops_pruned,
            includes_retraining=info.includes_retraining,
            pruning_epochs=info.pruning_epochs,
        )


def scratch_epochs(budget: ScratchBudget) -> int:
    """Training epochs a scratch baseline gets to match the pruning pipeline's budget.

    SX-A gives scratch the same total epochs as pretrain + prune + retrain, ``K1 + P + K2``; SX-B
    the same total FLOPs, ``K1 x F1 / F2 + K2`` (``+ K2`` only when ``includes_retraining``),
    rounded up to whole epochs, where the small model costs ``F2`` FLOPs per example against the
    dense ``F1`` (arXiv 2301.05219, Table 2).

    Args:
        budget: K1, K2, P, F1, F2 and the setup.

    Returns:
        Whole epochs, e.g. K1 = 160 at a 2x FLOP reduction: 320, or 360 with K2 = 40.

    Raises:
        ValueError: An unknown setup, negative epochs, or SX-B without positive FLOPs.
    """
    k1, k2, p = budget.pretrain_epochs, budget.retraining_epochs, budget.pruning_epochs
    if min(k1, k2, p) < 0:
        raise ValueError("epochs must be >= 0")
    if budget.setup == "SX-A":
        return k1 + p + k2
    if budget.setup != "SX-B":
        raise ValueError(f"unknown scratch setup {budget.setup!r}; use 'SX-A' or 'SX-B'")
    f1, f2 = budget.flops_dense, budget.flops_pruned
    if not f1 or not f2 or f1 <= 0 or f2 <= 0:
        raise ValueError("SX-B needs the dense and pruned FLOPs (positive integers)")
    # exact integer ceiling of K1 * F1 / F2, so a 2x reduction of 160 epochs is exactly 320
    return -(-k1 * f1 // f2) + (k2 if budget.includes_retraining else 0)


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


def check_scratch_budget(ctx: CheckContext) -> Iterator[Finding]:
    """R-SX-1: a scratch baseline trained exactly its SX-A / SX-B budget.

    ``scratch.epochs`` equals :func:`scratch_epochs` of the recorded K1, P, K2, F1 and F2; F2 is
    the run's measured ``flops_pruned`` and F1 its ``flops_dense``; and under a known protocol,
    K1 and K2 are the protocol's and ``includes_retraining`` its choice.
    """
    sub = ctx.submission
    info = sub.scratch
    if info is None:
        return
    expected = scratch_epochs(ScratchBudget.recorded(info))
    if info.epochs != expected:
        yield Finding(
            "$.scratch.epochs",
            f"scratch trained {info.epochs} epochs but its {info.setup} budget is {expected}",
            "train the scratch model for exactly its budget",
        )
    measured = (sub.pruning.flops_dense, sub.pruning.flops_pruned)
    if (info.flops_dense, info.flops_pruned) != measured:
        yield Finding(
            "$.scratch.flops_pruned",
            f"the budget uses F1/F2 = {info.flops_dense}/{info.flops_pruned} but the run measured "
            f"{measured[0]}/{measured[1]}",
        )
    if ctx.protocol is not None:
        wanted = (
            ctx.protocol.base_model.recipe.epochs,
            ctx.protocol.retraining.epochs,
            ctx.protocol.scratch.includes_retraining,
        )
        got = (info.pretrain_epochs, info.retraining_epochs, info.includes_retraining)
        if got != wanted:
            yield Finding(
                "$.scratch",
                f"K1, K2, includes_retraining are {got} but the protocol's are {wanted}",
            )


def check_retraining_override(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-4: a declared retraining override is what ran, and a run that ran another
    recipe than its protocol's (a scratch baseline: than its budget's, :func:`scratch_recipe`)
    declares it (so it is its own row and run id)."""
    sub = ctx.submission
    if sub.retraining_recipe is None:
        return
    if sub.scratch is not None and sub.retraining_override:
        yield Finding(
            "$.retraining_override",
            "a scratch baseline trains its SX budget's recipe; it cannot declare a retraining "
            "override",
        )
    yield from _override_is_what_ran(ctx)
    if ctx.protocol is not None and not sub.smoke:
        if sub.scratch is not None:
            yield from _scratch_recipe_findings(ctx)
        else:
            yield from _undeclared_changes(ctx, ctx.protocol.retraining, ("epochs", "lr_schedule"))


def _override_is_what_ran(ctx: CheckContext) -> Iterator[Finding]:
    """Every declared override field equals the recorded recipe's (a smoke run may cut epochs)."""
    sub, recipe = ctx.submission, ctx.submission.retraining_recipe
    for name, value in (sub.retraining_override or {}).items():
        ran = getattr(recipe, name, None)
        if sub.smoke and name == "epochs" and isinstance(ran, int) and ran <= value:
            continue  # a smoke run cuts every phase short
        if ran != value:
            yield Finding(
                f"$.retraining_override.{name}",
                f"retraining_override says {name} {value!r} but the recorded recipe has {ran!r}",
            )


def _scratch_recipe_findings(ctx: CheckContext) -> Iterator[Finding]:
    """A scratch baseline's whole recipe, and the LR of every logged epoch, are its budget's
    (the S2..S4.2 rules skip scratch runs, so all of the recipe is checked here)."""
    sub = ctx.submission
    assert ctx.protocol is not None and sub.scratch is not None
    own = scratch_recipe(ctx.protocol, sub.scratch.epochs)
    for row in sub.retraining:
        if not lr_matches(row.lr, own.lr_at(row.epoch)):
            yield Finding(
                f"$.retraining[{row.epoch}].lr",
                f"epoch {row.epoch} logged LR {row.lr:g} but its scratch budget's "
                f"schedule {own.lr_schedule} gives {own.lr_at(row.epoch):g}",
            )
            break
    yield from _undeclared_changes(ctx, own, tuple(type(own).model_fields), scratch=True)


def _undeclared_changes(
    ctx: CheckContext, own: TrainRecipe, names: tuple[str, ...], scratch: bool = False
) -> Iterator[Finding]:
    """Recipe fields (``names``) that differ from ``own`` without being declared."""
    sub, recipe = ctx.submission, ctx.submission.retraining_recipe
    override = sub.retraining_override or {}
    whose = "its scratch budget's" if scratch else "the protocol's"
    tail = "" if scratch else " but retraining_override does not declare it"
    for name in names:
        ran, expected = _plain(getattr(recipe, name)), _plain(getattr(own, name))
        if name not in override and ran != expected:
            yield Finding(
                f"$.retraining_recipe.{name}",
                f"retraining {name} {ran!r} differs from {whose} {expected!r}{tail}",
            )


def _plain(value: Any) -> Any:
    """A recipe field as plain data (a recorded and a protocol augmentation are other classes)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
