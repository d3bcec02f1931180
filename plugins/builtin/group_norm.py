"""DepGraph's group-level sparse training and group-norm pruning (Fang et al., CVPR 2023,
"DepGraph: Towards Any Structural Pruning"), as torch-pruning's ``GroupNormPruner`` does it.

A unit's *group* is every parameter removed with it: the filter's (or neuron's) weight row, the
entries of the BatchNorm after it, and the input columns of the layers that consume it (found
with torch-pruning's ``DependencyGraph``, :mod:`._unit_groups`). During the pruning stage,
:meth:`GroupNorm.regularize` adds to the gradients of those weights the gradient of

    R = reg / 2 * sum_k gamma_k * sum_{w in group k} ||w||^2,
    gamma_k = 2 ** (alpha * (s_max - s_k) / (s_max - s_min)),  s_k = sqrt(sum_{w in group k} ||w||^2)

per prunable layer, ``gamma`` held constant (the paper's Eq. 4-5: groups of small norm are
pushed harder, up to ``2**alpha`` times; torch-pruning's ``GroupNormPruner.regularize`` with
``bias=False``, whose ``w.grad += reg * gamma * w`` folds the factor 2 into ``reg``). Biases
(conv and BatchNorm shifts) are not penalized, as there. When all of a layer's groups have
the same norm, ``gamma = 1``. At the end of the stage a unit's score is its group's squared L2
norm, torch-pruning's ``GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None)``.

The paper ranks groups globally; ``scope = "global"`` does that (with the ``mean`` normalizer,
torch-pruning's default), ``"layer"`` (the default here) keeps the protocol target's per-layer
ratios, which the shipped targets fix (see ``slimming``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

from ._unit_groups import UnitGroups, UnitSlice, layer_group

if TYPE_CHECKING:
    import torch  # imported where used: listing plugins stays torch-free
    from torch import nn


class GroupNormConfig(MethodConfig):
    """DepGraph group sparsity's options."""

    reg: float = Field(
        5e-4,
        ge=0.0,
        le=1.0,
        description="penalty factor; DepGraph's CIFAR runs use 5e-4 (torch-pruning benchmarks, "
        "'--method group_sl --reg 5e-4'); GroupNormPruner's own default is 1e-4",
    )
    alpha: float = Field(
        4.0, ge=0.0, le=16.0, description="gamma ranges over [1, 2**alpha] (paper and tp: 4)"
    )
    scope: Literal["layer", "global"] = Field(
        "layer", description="'global' as the paper ranks; 'layer' (default, our choice)"
    )
    max_layer_ratio: float = Field(
        0.95, gt=0.0, lt=1.0, description="global scope only: protection (our choice)"
    )


class GroupNorm(PruningMethod):
    """Group-norm-weighted L2 sparse training of whole dependency groups, then group-norm pruning."""

    name = "group-norm"
    version = "1"
    description = "DepGraph group sparsity (Fang et al., CVPR 2023): group L2 penalty, group norm"
    Config = GroupNormConfig

    def __init__(self, config: GroupNormConfig | None = None) -> None:
        super().__init__(config)
        self._groups = UnitGroups()

    def schedule(self) -> PruningSchedule:
        """One prune step at the end of the pruning stage, which trains (the penalty needs it)."""
        return PruningSchedule(trains=True)

    def allocation(self) -> Allocation:
        """Layer-wise by default; global (mean-normalized) with protection when configured."""
        if self.config.scope == "global":
            return Allocation(
                scope="global", normalizer="mean", max_layer_ratio=self.config.max_layer_ratio
            )
        return Allocation()

    def regularize(self, ctx: PruningContext, model: nn.Module) -> None:
        """Add ``reg * gamma_k * w`` to the gradient of every weight of every unit's group."""
        import torch

        groups = self._groups.of(ctx)
        with torch.no_grad():
            for layer in ctx.layers:
                slices = groups[layer.name]
                gamma = group_gamma(model, slices, layer.num_units, self.config.alpha)
                for s in slices:
                    _add_penalty_grad(model.get_submodule(s.module), s, self.config.reg * gamma)

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """Each unit's group squared L2 norm (torch-pruning's ``GroupMagnitudeImportance``), ``[n]``."""
        import torch
        import torch_pruning as tp

        importance = tp.importance.GroupMagnitudeImportance(
            p=2, group_reduction="mean", normalizer=None
        )
        graph, traced = self._groups.trace(ctx)
        with torch.no_grad():
            return {
                layer.name: importance(layer_group(graph, traced, layer)).double().cpu()
                for layer in ctx.layers
            }


def group_sq_norms(model: nn.Module, slices: Sequence[UnitSlice], units: int) -> torch.Tensor:
    """``sum_{w in group k} ||w||^2`` per unit (weights and BatchNorm scales), float64 ``[units]``
    on the CPU."""
    import torch

    total = torch.zeros(units, dtype=torch.float64)
    for s in slices:
        weight = model.get_submodule(s.module).weight.detach()
        index = s.index.to(weight.device)
        rows = weight.index_select(1, index).transpose(0, 1) if s.kind == "in" else weight[index]
        squares = rows.reshape(len(index), -1).double().pow(2).sum(1)
        total.index_add_(0, s.unit, squares.cpu())
    return total


def group_gamma(
    model: nn.Module, slices: Sequence[UnitSlice], units: int, alpha: float
) -> torch.Tensor:
    """``gamma_k = 2 ** (alpha * (s_max - s_k) / (s_max - s_min))``, ``s`` the group L2 norms.

    Returns a float64 CPU tensor ``[units]`` in ``[1, 2**alpha]``; all ones when the norms are equal.
    """
    import torch

    norms = group_sq_norms(model, slices, units).sqrt()
    spread = norms.max() - norms.min()
    if units == 0 or float(spread) == 0.0:
        return torch.ones(units, dtype=torch.float64)
    return torch.pow(2.0, alpha * (norms.max() - norms) / spread)


def _add_penalty_grad(module: nn.Module, s: UnitSlice, factor: torch.Tensor) -> None:
    """``weight.grad[slice] += factor[unit] * weight[slice]`` (rows, columns or BN scales)."""
    weight = module.weight
    if weight.grad is None:
        return
    index = s.index.to(weight.device)
    per = factor[s.unit].to(weight.device, weight.dtype)
    if s.kind == "in":
        shape = (1, -1) + (1,) * (weight.dim() - 2)
        columns = weight.detach().index_select(1, index)
        weight.grad.index_add_(1, index, per.view(shape) * columns)
    else:
        shape = (-1,) + (1,) * (weight.dim() - 1)
        rows = weight.detach().index_select(0, index)
        weight.grad.index_add_(0, index, per.view(shape) * rows)


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [GroupNorm]
