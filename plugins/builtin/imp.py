"""Iterative magnitude pruning with rewinding (Frankle & Carbin, ICLR 2019, "The Lottery Ticket
Hypothesis: Finding Sparse, Trainable Neural Networks"): unstructured, in rounds.

The suite's pruning stage runs the procedure (:class:`~pruning_suite.PruningSchedule` with
``rewind=True``): train, remove the smallest-magnitude surviving weights, reset the survivors to
their values at the start of the stage, and repeat; the last round ends the stage without a reset.
Round ``i`` of ``R`` leaves each layer with the cumulative ratio ``1 - (1 - r) ** (i / R)`` of
its weights removed (``geometric``: the same fraction of the remaining weights every round, as
the paper prunes ``p%`` per round). The score of a weight is ``|w|``; weights masked in earlier
rounds stay removed (the core ranks them lowest).

Here the stage starts from the trained base model, so rewinding resets to the trained weights
(rewinding to an early point, Frankle et al. 2020 and Renda et al., ICLR 2020), not to the
random initialization of the original paper, which trained the dense network itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from pruning_suite import (
    Allocation,
    MethodConfig,
    PruningContext,
    PruningMethod,
    PruningSchedule,
    hookimpl,
)

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free


class IMPConfig(MethodConfig):
    """IMP's options.

    The paper removes 20% of the remaining weights per round (10-15% in conv layers) for many
    rounds, each a full training run; 90% sparsity takes about 10 rounds. In a 10-epoch pruning
    stage 10 rounds leave one epoch between prunes, so 3 rounds is our choice for small budgets
    (54% of the remaining weights per round at 90%).
    """

    rounds: int = Field(
        3, ge=1, le=100, description="prune rounds (paper: ~10 at 20% per round; ours: 3)"
    )
    scope: Literal["layer", "global"] = Field(
        "layer",
        description="'layer' (default; the paper's per-layer rates for its conv nets) or "
        "'global' (one magnitude threshold over all layers, as the paper's follow-ups on "
        "VGG/ResNet)",
    )
    max_layer_ratio: float = Field(
        0.99, gt=0.0, lt=1.0, description="global scope only: protection (our choice)"
    )


class IMP(PruningMethod):
    """``|w|`` per weight, pruned in geometric rounds with rewinding between them."""

    name = "imp"
    version = "1"
    granularity = "weight"
    description = "iterative magnitude pruning with rewinding (Frankle & Carbin, ICLR 2019)"
    Config = IMPConfig

    def schedule(self) -> PruningSchedule:
        """``rounds`` geometric rounds, training between them, rewinding after each but the last."""
        return PruningSchedule(
            rounds=self.config.rounds, ratio_schedule="geometric", trains=True, rewind=True
        )

    def allocation(self) -> Allocation:
        """Layer-wise by default; global over ``|w|`` with protection when configured."""
        if self.config.scope == "global":
            return Allocation(scope="global", max_layer_ratio=self.config.max_layer_ratio)
        return Allocation()

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``weight.abs()`` of every prunable layer, of the weight's shape."""
        import torch

        with torch.no_grad():
            return {
                layer.name: layer.module.weight.detach().abs().double().cpu()
                for layer in ctx.layers
            }


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [IMP]
