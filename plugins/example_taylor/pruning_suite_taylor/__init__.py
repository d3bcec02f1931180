"""First-order Taylor importance as a third-party pruning-suite plugin (an example to copy).

Molchanov, Mallya, Tyree, Frosio and Kautz, "Importance Estimation for Neural Network Pruning",
CVPR 2019 (the criterion first appeared in Molchanov et al., "Pruning Convolutional Neural Networks
for Resource Efficient Inference", ICLR 2017). The group-level first-order Taylor estimate of the
loss change when unit ``i`` (a filter or a neuron) is removed is ``|sum_{w in unit i} w * dL/dw|``,
the sum running over the unit's weights and its bias. We compute it on every calibration batch with
the mean cross-entropy loss and sum the per-batch absolute values; the lowest are pruned first.

Registered through ``[project.entry-points.pruning_suite] taylor = "pruning_suite_taylor"``. The
suite imports every plugin module to list plugins, protocols and datasets, so torch is imported
inside the functions that compute: ``pruning-suite protocols`` and ``validate`` stay fast.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruning_suite import MethodConfig, PluginError, PruningContext, PruningMethod, hookimpl
from pydantic import Field

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Taylor", "TaylorConfig", "register_methods"]


class TaylorConfig(MethodConfig):
    """Options of :class:`Taylor`.

    Attributes:
        batches: Calibration batches (training split) whose per-batch scores are summed.
    """

    batches: int = Field(4, ge=1, le=1000)


class Taylor(PruningMethod):
    """Group-level first-order Taylor importance; the lowest are pruned first."""

    name = "taylor"
    version = "1"
    description = (
        "first-order Taylor importance (Molchanov et al., CVPR 2019): |sum w * dL/dw| per filter"
    )
    Config = TaylorConfig

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """Sum over calibration batches of ``|sum(w * dL/dw)|`` per unit (weights and bias).

        Gradients are taken on a deep copy of ``ctx.model`` in eval mode, so neither the model's
        parameters, its gradients nor its BatchNorm statistics change.

        Args:
            ctx: The pruning context; ``ctx.calibration_batches`` supplies the data.

        Returns:
            ``{layer.name: float32 tensor [layer.num_units] on the CPU}`` for every prunable layer.

        Raises:
            PluginError: ``ctx.calibration_batches`` yielded no batch.
        """
        model = _gradient_copy(ctx.model)
        modules = {layer.name: model.get_submodule(layer.name) for layer in ctx.layers}
        per_batch = [
            _batch_scores(model, modules, inputs, labels)
            for inputs, labels in ctx.calibration_batches(self.config.batches)
        ]
        if not per_batch:
            raise PluginError(
                "plugin 'taylor' got no calibration batches from ctx.calibration_batches",
                "the protocol's training split must yield at least one batch",
            )
        return {name: sum(s[name] for s in per_batch).float() for name in modules}


def _gradient_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode whose parameters all require gradients."""
    clone = copy.deepcopy(model).eval()
    for param in clone.parameters():
        param.requires_grad_(True)
    return clone


def _batch_scores(
    model: nn.Module, modules: Mapping[str, nn.Module], inputs: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """``|sum(w * dL/dw)|`` per unit of each module on one batch, float64 on the CPU."""
    _backward(model, inputs, labels)
    return {name: _unit_taylor(m).abs().double().cpu() for name, m in modules.items()}


def _backward(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
    """Replace the gradients with those of the mean cross-entropy loss on one batch."""
    import torch
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        F.cross_entropy(model(inputs), labels).backward()


def _unit_taylor(module: nn.Module) -> torch.Tensor:
    """``sum(w * dL/dw)`` per output unit over the weight and bias, shape ``[out_units]``.

    A parameter the loss does not reach (no gradient) contributes zero.
    """
    contribution = _times_grad(module.weight).flatten(1).sum(dim=1)
    bias = getattr(module, "bias", None)
    if bias is not None:
        contribution = contribution + _times_grad(bias)
    return contribution


def _times_grad(param: torch.Tensor) -> torch.Tensor:
    """``param * dL/dparam`` elementwise; zeros when the parameter received no gradient."""
    import torch

    if param.grad is None:
        return torch.zeros_like(param, requires_grad=False)
    return param.detach() * param.grad


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [Taylor]
