"""The pruning stage as the suite runs it: prune rounds on a schedule, and the suite's own
training loop in between, into which a training-aware method hooks.

Wang et al. (arXiv 2301.05219, Sec. 3) define a pruning algorithm as pruning ratio + criterion +
schedule, and setups S4.1 / S4.2 hold the pruning stage's epochs and LR schedule equal. So the
suite, not the method, owns the stage:

1. ``E`` epochs (the protocol's ``pruning_budget.epochs``, the same for every method; a method
   whose :meth:`~pruning_suite.PruningMethod.schedule` says it ``trains`` needs ``E > 0``) of the
   suite's
   training loop (:func:`pruning_suite.engine.train.train`: the retraining recipe's batch size,
   optimizer and augmentation, the budget's LR schedule), calling the method's
   :meth:`~pruning_suite.PruningMethod.regularize` after every backward pass and
   :meth:`~pruning_suite.PruningMethod.on_pruning_epoch_end` after every epoch;
2. ``rounds`` prune steps (:class:`~pruning_suite.PruningSchedule`), each decided by the method on
   a copy (:class:`~.prune.PruningStage`), allocated by the core (layer-wise or global,
   :mod:`pruning_suite.engine.allocation`), applied, verified and measured by the core;
3. the data handed out and the compute spent in method code are counted
   (:class:`~.prune.CalibrationChannel`, :class:`~pruning_suite.engine.meter.ComputeMeter`) and
   recorded in the submission's ``pruning_stage``, for R-STAGE-1..3.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from ..contract.method import (
    Allocation,
    PrunableLayer,
    PruningContext,
    PruningMethod,
    PruningSchedule,
)
from ..data.datasets import DataSplits
from ..engine.budget import budget_ratios
from ..engine.layers import find_prunable_layers
from ..engine.measure import measure, measure_effective
from ..engine.pruning import units_to_remove
from ..engine.train import EpochEvaluator, EpochStats, train
from ..errors import PluginError, TrainingError
from ..protocol.spec import TrainRecipe
from ..record.submission import EpochRow, PruneRound
from ..record.submission import PruningStage as PruningStageRecord
from .config import max_batches, stage_epochs
from .prune import (
    PruningDecision,
    PruningOutcome,
    PruningStage,
    apply_decision,
    model_fingerprint,
)

__all__ = [
    "NO_HOOKS",
    "PruningStageResult",
    "StageHooks",
    "run_pruning_stage",
]


@dataclass(frozen=True)
class StageHooks:
    """Callbacks of one pruning stage, each optional.

    Attributes:
        on_epoch: Called with each pruning-stage epoch's row (observers).
        on_train_start: Called with the stage's epochs before its first epoch (only when > 0).
        on_round: Called with each applied round's removed units (layer -> filter indices).
        evaluate_epoch: Gives each epoch's ``(val_top1, test_top1)``; default: ``data``'s splits.
    """

    on_epoch: Callable[[EpochStats], None] | None = None
    on_train_start: Callable[[int], None] | None = None
    on_round: Callable[[dict[str, list[int]]], None] | None = None
    evaluate_epoch: EpochEvaluator | None = None


NO_HOOKS = StageHooks()


@dataclass(frozen=True)
class PruningStageResult:
    """What the pruning stage did.

    Attributes:
        outcome: Per-layer units before the stage (the dense model's) and after its last round,
            and the weight masks to hold through retraining (weight granularity).
        decision: The method's decision of the last round.
        record: The submission's ``pruning_stage`` (epochs, LR schedule, log, rounds, samples).
        removals: Every round's removed units in order (filter granularity; empty dicts for
            weight granularity), to replay the surgery on another copy of the dense model.
        target_ratios: The target's per-layer ratios, resolved on the dense model.
    """

    outcome: PruningOutcome
    decision: PruningDecision
    record: PruningStageRecord
    removals: tuple[dict[str, list[int]], ...] = ()
    target_ratios: dict[str, float] = field(default_factory=dict)


def run_pruning_stage(
    model: nn.Module,
    stage: PruningStage,
    data: DataSplits,
    retraining: TrainRecipe,
    smoke: bool = False,
    hooks: StageHooks = NO_HOOKS,
) -> PruningStageResult:
    """Run the pruning stage on ``model`` in place: train (if the method trains), prune in rounds.

    Args:
        model: The dense base model on ``data``'s device; pruned (and trained) in place.
        stage: The method, protocol, target and seed, with the data channel and compute meter.
        data: The splits; only ``train`` is trained on or handed out.
        retraining: The protocol's retraining recipe (the stage trains with its batch size,
            optimizer and augmentation).
        smoke: Cut the stage's epochs and batches to the smoke budget.
        hooks: Observers of epochs and rounds, and who evaluates an epoch.

    Returns:
        The outcome (widths before/after, masks), the last decision and the stage's record.

    Raises:
        PluginError: The method's schedule or allocation is malformed, it trains without a
            budget, a hook raised or changed values, or its ratios shrink earlier rounds'.
        TrainingError: The pruning-stage loss is not finite (e.g. the method's regularizer).
        PruningError: A round cannot be applied.
    """
    method, protocol = stage.method, stage.protocol
    schedule = _checked(method.name, stage.call("schedule"), PruningSchedule, "schedule")
    allocation = _checked(method.name, stage.call("allocation"), Allocation, "allocation")
    _check_budget(stage, schedule)
    stage.stage_epochs, recipe = stage_epochs(protocol, retraining, smoke)
    epochs = stage.stage_epochs
    if schedule.rewind and protocol.granularity != "weight":
        raise PluginError(
            f"plugin {method.name!r} asks to rewind weights after filter pruning",
            "rewinding needs weight granularity (iterative magnitude pruning); set rewind=False",
        )
    if epochs and hooks.on_train_start is not None:
        hooks.on_train_start(epochs)
    rounds = _Rounds(model, stage, data, schedule, allocation, hooks.on_round)
    trainer = partial(_train, model, stage, data, recipe, smoke=smoke, hooks=hooks)
    outcome, decision = rounds.run(epochs, trainer)
    record = PruningStageRecord(
        epochs=epochs,
        lr_schedule=protocol.pruning_budget.lr_schedule if epochs else None,
        log=[EpochRow(**row.as_dict()) for row in rounds.log],
        rounds=rounds.records,
        ratio_schedule=schedule.ratio_schedule,
        allocation=allocation.scope,
        training_samples=sum(rounds.seen),
        calibration_samples=stage.calibration_samples,
        method_grad_samples=stage.meter.grad_samples,
        method_optimizer_steps=stage.meter.optimizer_steps,
    )
    removals = tuple(rounds.removals)
    return PruningStageResult(outcome, decision, record, removals, stage.target_ratios or {})


class _Rounds:
    """The prune rounds of one stage, with the training segments between them."""

    budget_ratios: dict[str, float] | None = None
    """Under a budget target with global allocation: the final per-layer ratios of the smallest
    global pruning that reaches the speedup, found on round 1's model and scores."""

    def _global_budget(self, decision: PruningDecision) -> PruningDecision:
        """A budget target under global allocation fixes the final total, not uniform ratios."""
        target = self.stage.target
        if not target.is_budget or self.allocation.scope != "global":
            return decision
        if self.budget_ratios is None:
            assert target.speedup is not None
            protocol = self.stage.protocol
            self.budget_ratios = budget_ratios(
                self.model,
                decision.scores,
                _layers(self.model, self.stage),
                self.allocation,
                protocol.granularity,
                target.speedup,
                protocol.dataset.input_shape,
                self.data.train.batch(slice(0, 2)),
            )
        return PruningDecision(decision.scores, self.budget_ratios)

    def __init__(
        self,
        model: nn.Module,
        stage: PruningStage,
        data: DataSplits,
        schedule: PruningSchedule,
        allocation: Allocation,
        on_round: Callable[[dict[str, list[int]]], None] | None = None,
    ) -> None:
        self.model, self.stage, self.data, self.on_round = model, stage, data, on_round
        self.schedule, self.allocation = schedule, allocation
        weight = stage.protocol.granularity == "weight"
        self.original = {
            la.name: la.module.weight.numel() if weight else la.num_units
            for la in _layers(model, stage)
        }
        self.start = copy.deepcopy(model.state_dict()) if schedule.rewind else None
        self.records: list[PruneRound] = []
        self.log: list[EpochStats] = []
        self.seen: list[int] = []
        self.removals: list[dict[str, list[int]]] = []

    def run(
        self, epochs: int, trainer: Callable[..., list[EpochStats]]
    ) -> tuple[PruningOutcome, PruningDecision]:
        """Train and prune on the schedule; the outcome is relative to the dense widths."""
        model, stage, example = self.model, self.stage, self.data.train.batch(slice(0, 2))
        outcome: PruningOutcome | None = None
        decision: PruningDecision | None = None
        done = 0
        round_epochs = self.schedule.round_epochs(epochs)
        for index, end in enumerate(round_epochs, start=1):
            if end > done:
                masks = None if outcome is None else outcome.masks
                self.log += trainer(range(done, end), masks=masks, seen=self.seen)
                done = end
            model.eval()
            decision = self._global_budget(stage.decide(model, self.data.train, index, done))
            ratios = _round_ratios(
                model,
                stage,
                decision,
                self.schedule,
                self.allocation,
                self.original,
                index,
                outcome,
            )
            scores = _masked_lowest(decision.scores, None if outcome is None else outcome.masks)
            outcome = apply_decision(
                model, PruningDecision(scores, ratios), stage.protocol, example
            )
            self.records.append(_round_record(model, stage, index, done, outcome))
            self.removals.append(outcome.removals)
            if self.on_round is not None:
                self.on_round(outcome.removals)
            if self.start is not None and index < len(round_epochs):
                _rewind(model, self.start, outcome)
        assert outcome is not None and decision is not None  # rounds >= 1
        layers = [(name, self.original[name], after) for name, _, after in outcome.layers]
        return PruningOutcome(layers, outcome.masks), decision


def _check_budget(stage: PruningStage, schedule: PruningSchedule) -> None:
    """A method that needs the loop (``schedule().trains``) is refused where there is none."""
    if schedule.trains and stage.protocol.pruning_budget.epochs == 0:
        raise PluginError(
            f"plugin {stage.method.name!r} trains in its pruning stage, but protocol "
            f"{stage.protocol.id!r} gives no pruning budget (pruning_budget.epochs = 0)",
            "run it under a protocol with a pruning budget, e.g. digits-convnet-s4 "
            "(`pruning-suite protocols`)",
        )


def _layers(model: nn.Module, stage: PruningStage) -> tuple[PrunableLayer, ...]:
    return find_prunable_layers(model, stage.protocol.prunable_layers)


def _train(
    model: nn.Module,
    stage: PruningStage,
    data: DataSplits,
    recipe: TrainRecipe,
    epochs: range,
    *,
    masks: Any,
    smoke: bool,
    hooks: StageHooks,
    seen: list[int],
) -> list[EpochStats]:
    """Train ``epochs`` of the stage with the method's hooks; a fresh optimizer per segment."""
    method, protocol = stage.method, stage.protocol
    ctx_holder: list[PruningContext] = [stage.context(model, data.train, 1, epochs.start)]
    tensors = [*model.parameters(), *model.buffers()]
    hooked = type(method).regularize is not PruningMethod.regularize

    def regularize() -> None:
        ctx = replace(ctx_holder[0], step=stage.steps)
        stage.steps += 1
        if hooked:
            _checked_regularize(stage, ctx, model, tensors)

    def epoch_end(row: EpochStats) -> None:
        ctx_holder[0] = stage.context(model, data.train, 1, row.epoch + 1)
        _checked_epoch_end(stage, ctx_holder[0], model)
        if hooks.on_epoch is not None:
            hooks.on_epoch(row)

    enforce = None if masks is None else (lambda optimizer: masks.enforce(model, optimizer))
    seed = stage.seed + 1_000_003 * (epochs.start + 1)  # each segment its own shuffling
    try:
        return train(
            model,
            data,
            recipe,
            seed,
            epoch_end,
            max_batches(smoke),
            (protocol.dataset.mean, protocol.dataset.std),
            after_step=enforce,
            before_step=regularize,
            epochs=epochs,
            seen=seen,
            evaluate_epoch=hooks.evaluate_epoch,
        )
    except TrainingError as err:
        raise TrainingError(
            f"pruning stage of {method.name!r}: {err.message}",
            "a regularizer that is too strong (or an LR too large) diverges: lower the "
            "method's penalty or the protocol's pruning-stage LR; nothing was cached or written",
        ) from err


def _checked_regularize(
    stage: PruningStage, ctx: PruningContext, model: nn.Module, tensors: list[torch.Tensor]
) -> None:
    """The method's ``regularize``; refused if any parameter or buffer VALUE changed (compared
    by value: a write through ``.data`` bumps no version counter)."""
    before = [t.detach().clone() for t in tensors]
    stage.call("regularize", ctx, model)
    if not all(torch.equal(t, b) for t, b in zip(tensors, before, strict=True)):
        raise PluginError(
            f"plugin {stage.method.name!r} changed parameter or buffer values in regularize() "
            "(weights, or BatchNorm statistics through a forward pass in train mode)",
            "add to param.grad only; run any forward pass on a copy in eval mode",
        )


def _checked_epoch_end(stage: PruningStage, ctx: PruningContext, model: nn.Module) -> None:
    """The method's ``on_pruning_epoch_end``; refused if it changed the model in any way."""
    before = model_fingerprint(model)
    stage.call("on_pruning_epoch_end", ctx, model)
    if model_fingerprint(model) != before:
        raise PluginError(
            f"plugin {stage.method.name!r} changed the model in on_pruning_epoch_end()",
            "read the model there; change only the method's own state (e.g. a penalty)",
        )


def _round_ratios(
    model: nn.Module,
    stage: PruningStage,
    decision: PruningDecision,
    schedule: PruningSchedule,
    allocation: Allocation,
    original: Mapping[str, int],
    index: int,
    previous: PruningOutcome | None,
) -> dict[str, float]:
    """This round's ratios, relative to each layer's CURRENT units (weights: all of them).

    Layer scope: every layer loses units until it has lost ``cumulative_ratio(r, index)`` of its
    original units under the one count rule (per group for grouped convs). Global scope: the
    same total, allocated by :func:`pruning_suite.engine.allocation.allocate`.
    """
    layers = _layers(model, stage)
    weight = stage.protocol.granularity == "weight"
    masked = {} if previous is None or previous.masks is None else previous.masks.masks
    ratios: dict[str, float] = {}
    wanted_total = removed_total = 0
    for layer in layers:
        final = float(decision.ratios.get(layer.name, 0.0))
        cumulative = schedule.cumulative_ratio(final, index)
        cells = 1 if weight else _cells(layer.module)
        n0 = original[layer.name] // cells
        now = layer.module.weight.numel() if weight else layer.num_units
        gone = (int((~masked[layer.name]).sum()) if layer.name in masked else 0) if weight else 0
        removed_cell = gone if weight else n0 - now // cells
        wanted = units_to_remove(cumulative, n0, layer.name)
        if wanted < removed_cell:
            raise PluginError(
                f"plugin {stage.method.name!r}: round {index} asks layer {layer.name!r} to keep "
                f"{n0 - wanted} of {n0} units, but earlier rounds left {n0 - removed_cell}",
                "a schedule only removes: keep the method's layer ratios the same every round",
            )
        wanted_total += wanted * cells
        removed_total += removed_cell * cells
        ratios[layer.name] = wanted / n0 if weight else (wanted - removed_cell) / (now // cells)
    if allocation.scope == "global":
        return _global_ratios(
            decision, layers, allocation, weight, wanted_total, removed_total, masked
        )
    return ratios


def _global_ratios(
    decision: PruningDecision,
    layers: Sequence[PrunableLayer],
    allocation: Allocation,
    weight: bool,
    wanted_total: int,
    removed_total: int,
    masked: Mapping[str, torch.Tensor],
) -> dict[str, float]:
    """Global allocation of this round's total; masked weights stay removed."""
    from ..engine.allocation import allocate

    granularity = "weight" if weight else "filter"
    if not weight:
        return allocate(
            decision.scores, {}, layers, allocation, granularity, wanted_total - removed_total
        )
    ratios = allocate(decision.scores, {}, layers, allocation, granularity, wanted_total)
    for layer in layers:  # never fewer than already masked
        if layer.name in masked:
            gone = int((~masked[layer.name]).sum()) / masked[layer.name].numel()
            ratios[layer.name] = max(ratios.get(layer.name, 0.0), gone)
    return ratios


def _masked_lowest(scores: dict[str, torch.Tensor], masks: Any) -> dict[str, torch.Tensor]:
    """Scores with already-masked weights below every other score of their layer, so a later
    round's masks contain the earlier ones (weights once removed stay removed)."""
    if masks is None:
        return scores
    adjusted = dict(scores)
    for name, keep in masks.masks.items():
        if name in adjusted and adjusted[name].shape == keep.shape:
            layer_scores = adjusted[name]
            floor = layer_scores.min() - 1.0 if layer_scores.numel() else 0.0
            adjusted[name] = torch.where(keep, layer_scores, floor)
    return adjusted


def _cells(module: nn.Module) -> int:
    """Rounding cells of a layer: ``groups`` of a grouped conv, else 1 (``select_removals``)."""
    groups = getattr(module, "groups", 1)
    return groups if isinstance(module, nn.Conv2d) and 1 < groups < module.out_channels else 1


def _round_record(
    model: nn.Module, stage: PruningStage, index: int, epoch: int, outcome: PruningOutcome
) -> PruneRound:
    shape = stage.protocol.dataset.input_shape
    weight = stage.protocol.granularity == "weight"
    counts = measure_effective(model, shape) if weight else measure(model, shape)
    return PruneRound(
        round=index,
        epoch=epoch,
        widths={name: after for name, _, after in outcome.layers},
        params=counts.params,
        macs=counts.macs,
    )


def _rewind(model: nn.Module, start: Mapping[str, torch.Tensor], outcome: PruningOutcome) -> None:
    """Reset the weights to the stage's start and re-apply the masks (lottery-ticket rewinding)."""
    with torch.no_grad():
        state = model.state_dict()
        for name, value in start.items():
            if name in state and state[name].shape == value.shape:
                state[name].copy_(value)
    if outcome.masks is not None:
        outcome.masks.apply(model)


def _checked(method: str, value: object, kind: type, hook: str) -> Any:
    if not isinstance(value, kind):
        raise PluginError(
            f"plugin {method!r}: {hook}() returned {type(value).__name__}, not {kind.__name__}",
            f"return a pruning_suite.{kind.__name__}(...)",
        )
    try:  # built with model_construct, it skipped its bounds (rounds=10**7 hung the run)
        return kind.model_validate(value.model_dump())  # type: ignore[attr-defined]
    except ValidationError as err:
        raise PluginError(
            f"plugin {method!r}: {hook}() returned an invalid {kind.__name__}: "
            f"{err.errors()[0]['msg']}",
            f"build it with pruning_suite.{kind.__name__}(...), which checks its fields",
        ) from err
