"""Training regimes and trainability measurements of a run.

A run trains its pruned model under one of two regimes (:data:`~pruning_suite.run.config.Regime`):
``"prune"`` retrains the pruned base model with the protocol's retraining recipe (optionally
re-initialized with OrthP); ``"scratch"`` re-initializes the pruned architecture with PyTorch's
default init and trains it under the SX-A / SX-B budget (:func:`scratch_plan`). Both log the mean
JSV (:class:`JSVLog`) and the trainability accuracy (Wang et al., arXiv 2301.05219).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..contract.method import PruningMethod
from ..data.datasets import Split
from ..engine.masks import WeightMasks
from ..engine.train import EpochObserver, EpochStats
from ..engine.trainability import (
    JSV_BATCH_SIZE,
    JSV_BATCHES,
    jsv_enabled_by_default,
    jsv_stats,
    orthp_,
    trainability_accuracy,
)
from ..errors import VerificationError
from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.submission import ScratchInfo, TrainabilityInfo
from ..rules import ScratchBudget, scratch_epochs, scratch_recipe

__all__ = [
    "JSV_MAX_EPOCH_SHARE",
    "JSVLog",
    "apply_orthp",
    "check_masks_held",
    "scratch_plan",
    "trainability_info",
]

JSV_MAX_EPOCH_SHARE = 0.25
"""The mean JSV is measured by default only when one measurement costs at most this share of a
training epoch (and the model passes :func:`~pruning_suite.engine.trainability.jsv_enabled_by_default`)."""


def scratch_plan(
    method: PruningMethod, protocol: ComparisonProtocol, flops_dense: int, flops_pruned: int
) -> tuple[dict[str, Any], TrainRecipe]:
    """The SX-A / SX-B budget of a scratch baseline and the recipe it trains with.

    The recipe is the protocol's base-model recipe with its epochs set to the budget and its LR
    milestones scaled by ``budget / K1`` (rounded to whole epochs), the paper's "scratch, step
    LR" (arXiv 2301.05219, Table 6).

    Args:
        method: A method with ``from_scratch``; its config's ``setup`` is ``"SX-A"`` or ``"SX-B"``.
        protocol: Supplies K1 (base epochs), K2 (retraining epochs), the pruning budget P and
            whether SX-B adds K2 (``scratch.includes_retraining``).
        flops_dense: F1, FLOPs per example of the dense model.
        flops_pruned: F2, FLOPs per example of the pruned architecture.

    Returns:
        The submission's ``scratch`` block and the recipe.
    """
    setup = getattr(method.config, "setup", "SX-B")
    budget = ScratchBudget.under(protocol, setup, flops_dense, flops_pruned)
    epochs = scratch_epochs(budget)
    info: dict[str, Any] = {
        "setup": setup,
        "pretrain_epochs": budget.pretrain_epochs,
        "pruning_epochs": budget.pruning_epochs,
        "retraining_epochs": budget.retraining_epochs,
        "flops_dense": flops_dense,
        "flops_pruned": flops_pruned,
        "includes_retraining": budget.includes_retraining,
        "epochs": epochs,
    }
    return info, scratch_recipe(protocol, epochs)


def scratch_info(info: dict[str, Any]) -> ScratchInfo:
    """The submission's ``scratch`` block from :func:`scratch_plan`'s dict."""
    return ScratchInfo.model_validate(info)


def apply_orthp(model: nn.Module, protocol: ComparisonProtocol, masks: WeightMasks | None) -> None:
    """OrthP on every Conv2d/Linear, gain 1 for a linear network and sqrt(2) for ReLU ones.

    Weight masks, when given, are applied again so pruned weights stay zero.
    """
    linear = protocol.architecture.kwargs.get("activation") == "none"
    with torch.no_grad():
        orthp_(model, activation_gain=1.0 if linear else math.sqrt(2))
    if masks is not None:
        masks.apply(model)


def check_masks_held(model: nn.Module, masks: WeightMasks) -> None:
    """After retraining, every masked weight must still be exactly zero (R-PRUNE-5).

    Raises:
        VerificationError: A pruned weight is non-zero.
    """
    for name, keep in masks.masks.items():
        weight = model.get_submodule(name).weight.detach().cpu()
        revived = int(torch.count_nonzero(weight[~keep]))
        if revived:
            raise VerificationError(
                f"{revived} pruned weights of layer {name!r} are non-zero after retraining",
                "this is a bug in the suite's retraining loop; report it with the run's command",
            )


@dataclass
class JSVLog:
    """Mean JSV of the dense model, right after pruning (epoch -1) and after every retraining
    epoch (Wang et al., arXiv 2301.05219), on the same fixed training examples.

    Attributes:
        batches: The fixed input batches ``[JSV_BATCH_SIZE, C, H, W]``; None = not measured.
        rows: ``{"epoch": e, **JSV summary}`` per measurement after pruning.
        dense: The dense model's JSV summary.
    """

    batches: list[torch.Tensor] | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    dense: dict[str, Any] | None = None

    @classmethod
    def start(
        cls, model: nn.Module, protocol: ComparisonProtocol, train_split: Split, wanted: bool | None
    ) -> JSVLog:
        """Pick the fixed examples and measure the dense model (when ``wanted``, or by default)."""
        on = _jsv_by_default(model, protocol, len(train_split)) if wanted is None else wanted
        if not on:
            return cls(None)
        # the same fixed examples for every run and method of the protocol (generator seed 0)
        order = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(0))
        picked = order[: JSV_BATCHES * JSV_BATCH_SIZE].to(train_split.device)
        inputs = train_split.batch(picked)
        log = cls(list(inputs.split(JSV_BATCH_SIZE)))
        log.dense = jsv_stats(model, log.batches).as_dict()
        return log

    def measure(self, model: nn.Module, epoch: int) -> None:
        """Measure ``model`` at ``epoch`` (-1: right after pruning), when the log is on."""
        if self.batches is not None:
            self.rows.append({"epoch": epoch, **jsv_stats(model, self.batches).as_dict()})

    def relay(
        self, model: nn.Module, then: Callable[[EpochStats], None]
    ) -> Callable[[EpochStats], None]:
        """An ``on_epoch`` callback that measures ``model`` after each epoch, then calls ``then``."""

        def on_epoch(row: EpochStats) -> None:
            self.measure(model, row.epoch)
            then(row)

        return EpochObserver(on_epoch, then.on_batches if isinstance(then, EpochObserver) else None)


def trainability_info(
    log: list[EpochStats], recipe: TrainRecipe, jsv_log: JSVLog
) -> TrainabilityInfo:
    """The submission's ``trainability`` block: TA over the first LR stage, and the JSV log."""
    stage = recipe.first_stage_epochs()
    ta_val, ta_test = trainability_accuracy(log, stage)
    return TrainabilityInfo.model_validate(
        {
            "ta_val": ta_val,
            "ta_test": ta_test,
            "first_stage_epochs": len(stage),
            "jsv_dense": jsv_log.dense,
            "jsv": jsv_log.rows if jsv_log.batches is not None else None,
        }
    )


def _jsv_by_default(model: nn.Module, protocol: ComparisonProtocol, train_examples: int) -> bool:
    """On for models cheap enough, and only when a measurement (10 x 100 examples, one forward
    and K backward passes each) costs at most a quarter of a training epoch (one forward and
    about two forward-costs of backward per example): off for tiny datasets such as digits."""
    shape, classes = protocol.dataset.input_shape, protocol.dataset.num_classes
    jsv_passes = (1 + classes) * JSV_BATCHES * JSV_BATCH_SIZE
    return (
        jsv_enabled_by_default(model, shape, classes)
        and jsv_passes <= JSV_MAX_EPOCH_SHARE * 3 * train_examples
    )
