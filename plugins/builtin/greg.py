"""GReg-1 (Wang, Qin, Zhang, Fu, ICLR 2021, "Neural Pruning via Growing Regularization"): choose
the filters to prune by L1 norm at the start, push them towards zero with an L2 penalty whose
factor grows during the pruning stage, then remove them.

At the stage's first training step each prunable layer's ``min(ceil(r * n), n - 1)`` filters of
smallest L1 norm (``sum |w|``; per group of a grouped conv, the core's count rule) are chosen,
``r`` the protocol target's ratio. On every step :meth:`GReg.regularize` adds ``lambda * w`` to
the gradient of the chosen filters' weights (the gradient of ``lambda / 2 * ||w||^2``), nothing
else; ``lambda`` starts at 0 and grows by ``delta_reg`` on step ``1``, ``1 + k``, ``1 + 2k``...
(``k = update_interval``) up to ``reg_cap``. At the end the chosen filters score below every
other filter, so exactly they are removed.

The pruning context has no step counter, so the method counts its own ``regularize`` calls (one
per optimizer step of the suite's loop). torch-pruning's ``GrowingRegPruner`` is not used: it
grows a penalty on every channel in proportion to its standardized group norm (GReg-2-like), not
GReg-1's penalty on a fixed set of filters.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from pruning_suite import MethodConfig, PruningContext, PruningMethod, PruningSchedule, hookimpl

if TYPE_CHECKING:
    import torch  # imported where used: listing plugins stays torch-free
    from torch import nn


class GRegConfig(MethodConfig):
    """GReg-1's options.

    The paper grows lambda by 1e-4 every 10 iterations (CIFAR; 5 on ImageNet) up to 1, then
    holds it for a stabilizing phase: about 10^5 iterations. A 10-epoch pruning stage on a
    small dataset has ~200 steps, in which the paper's rate ends at lambda = 2e-3 and barely
    moves the chosen weights. So the rate is our choice for small budgets: 1e-2 every step,
    reaching the paper's cap of 1 after 100 steps, with the rest of the stage as its
    stabilizing phase. The cap is the paper's.
    """

    delta_reg: float = Field(
        1e-2, gt=0.0, le=1.0, description="lambda's increment (paper: 1e-4; ours for ~200 steps)"
    )
    update_interval: int = Field(
        1, ge=1, le=1_000_000, description="steps between increments (paper: 10 CIFAR, 5 ImageNet)"
    )
    reg_cap: float = Field(1.0, gt=0.0, le=100.0, description="lambda's ceiling (paper: 1)")


@dataclass
class _Stage:
    """The growing penalty of one pruning stage: its model, chosen filters, steps and lambda."""

    model: Any  # weakref.ref to the model being trained
    chosen: dict[str, torch.Tensor]  # layer name -> [n] bool, True = to be pruned
    steps: int = 0
    reg: float = 0.0


class GReg(PruningMethod):
    """Growing L2 penalty on the filters of smallest L1 norm, which are then pruned."""

    name = "greg"
    version = "1"
    description = "GReg-1 (Wang et al., ICLR 2021): growing L2 penalty on low-L1 filters"
    Config = GRegConfig

    def __init__(self, config: GRegConfig | None = None) -> None:
        super().__init__(config)
        self._stage: _Stage | None = None

    def schedule(self) -> PruningSchedule:
        """One prune step at the end of the pruning stage, which trains (the penalty needs it)."""
        return PruningSchedule(trains=True)

    @property
    def reg(self) -> float:
        """The current penalty factor lambda (0 before the first step)."""
        return 0.0 if self._stage is None else self._stage.reg

    def regularize(self, ctx: PruningContext, model: nn.Module) -> None:
        """Grow lambda on schedule; ``w.grad += lambda * w`` on the chosen filters only."""
        stage = self._stage
        if stage is None or stage.model() is not model:  # a new pruning stage starts
            stage = self._stage = _Stage(weakref.ref(model), choose_filters(ctx))
        cfg = self.config
        stage.steps += 1
        if (stage.steps - 1) % cfg.update_interval == 0:
            stage.reg = min(stage.reg + cfg.delta_reg, cfg.reg_cap)
        for layer in ctx.layers:
            weight, chosen = layer.module.weight, stage.chosen[layer.name]
            if weight.grad is None or not bool(chosen.any()):
                continue
            shape = (-1,) + (1,) * (weight.dim() - 1)
            mask = chosen.to(weight.device, weight.dtype).view(shape)
            weight.grad.add_(stage.reg * mask * weight.detach())

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``sum |w|`` per unit, shape ``[n]``, with the chosen filters shifted below all others.

        The chosen filters are those of the stage's start; when the method has not trained (a
        bare call) they are chosen now.
        """
        import torch

        chosen = self._stage.chosen if self._stage is not None else None
        if chosen is None or not _fits(chosen, ctx):
            chosen = choose_filters(ctx)
        scores = {}
        with torch.no_grad():
            for layer in ctx.layers:
                l1 = layer.module.weight.detach().abs().flatten(1).sum(1).double().cpu()
                shift = float(l1.max()) + 1.0 if l1.numel() else 0.0
                scores[layer.name] = torch.where(chosen[layer.name], l1 - shift, l1)
        return scores


def choose_filters(ctx: PruningContext) -> dict[str, torch.Tensor]:
    """Layer name -> ``[n]`` bool: the units of smallest ``sum |w|`` under the core's count rule.

    ``min(ceil(r * n), n - 1)`` units per layer (``r * n`` rounded to 9 decimals first), per group
    of ``n / groups`` filters for a grouped conv; ties go to the lowest index (stable sort).
    """
    import torch

    chosen = {}
    with torch.no_grad():
        for layer in ctx.layers:
            weight = layer.module.weight.detach()
            l1 = weight.abs().flatten(1).sum(1).double().cpu()
            groups = getattr(layer.module, "groups", 1)
            groups = groups if 1 < groups < layer.num_units else 1
            per_group = layer.num_units // groups
            ratio = float(ctx.ratios.get(layer.name, 0.0))
            count = min(math.ceil(round(ratio * per_group, 9)), per_group - 1)
            order = torch.sort(l1.view(groups, per_group), dim=1, stable=True).indices
            mask = torch.zeros(groups, per_group, dtype=torch.bool)
            mask.scatter_(1, order[:, :count], True)
            chosen[layer.name] = mask.flatten()
    return chosen


def _fits(chosen: Mapping[str, torch.Tensor], ctx: PruningContext) -> bool:
    return all(
        layer.name in chosen and chosen[layer.name].numel() == layer.num_units
        for layer in ctx.layers
    )


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [GReg]
