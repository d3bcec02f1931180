"""Optimal brain damage, diagonal Hessian saliency per filter (LeCun, Denker and Solla, NeurIPS 1989).

OBD approximates the loss increase of deleting weight ``u`` by its saliency ``s_u = 0.5 * H_uu *
w_u ** 2``, ``H_uu`` the diagonal of the Hessian of the training loss (the paper's Eq. 5; the
proceedings are dated 1990). Grouped per output unit, as torch-pruning's ``HessianImportance``
(its "grouped optimal brain damage") does, the score of filter (or neuron) ``k`` is

    s_k = 0.5 * sum_{u in filter k} H_uu * w_u ** 2.

``H_uu`` is estimated as torch-pruning estimates it: by the empirical Fisher information, the mean
over calibration examples ``i`` of the squared per-example gradient ``(dL_i / dw_u) ** 2`` of the
cross-entropy loss ``L_i`` (a positive approximation of the Hessian's diagonal near a minimum,
not LeCun et al.'s backpropagated second derivatives). The examples come from
``ctx.calibration_batches`` only; gradients are taken on a deep copy of ``ctx.model`` in eval mode
(BatchNorm uses its running statistics and none of them moves).

torch-pruning 1.6's ``HessianImportance.accumulate_grad`` keeps only the LAST example's squared
gradient (its "already seen" test looks a parameter's name up among parameter keys), so the
Fisher diagonal is accumulated here and handed to ``HessianImportance`` as the weights' ``.grad``,
whose ``(w ** 2 * h).sum(1)`` gives the score (times OBD's 0.5, which the class leaves out).
The core removes the ``min(ceil(ratio * n), n - 1)`` lowest-scoring units of each layer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from pydantic import Field

from pruning_suite import MethodConfig, PluginError, PruningContext, PruningMethod, hookimpl

from ._layer_group import own_rows_group

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Hessian", "HessianConfig", "fisher_diagonal", "per_example_grads", "register_methods"]


PER_EXAMPLE_BUDGET = 2**24
"""Most entries of one layer's per-example weight gradients held at once (64 MiB of float32)."""


class HessianConfig(MethodConfig):
    """Options of :class:`Hessian`."""

    batches: int = Field(
        10,
        ge=1,
        le=1000,
        description="calibration batches (training split) of the Fisher estimate; OBD uses the "
        "training set, 10 (1,000 examples of the suite's 100) is our choice and fits the "
        "1,024-example calibration budget of the shipped S4 protocols",
    )


class Hessian(PruningMethod):
    """OBD saliency ``0.5 * sum H_uu w_u^2`` per unit, ``H`` the empirical Fisher diagonal."""

    name = "hessian"
    version = "1"
    description = "optimal brain damage (LeCun et al., 1990): 0.5 * sum H_ii w_i^2 per filter"
    Config = HessianConfig

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``s_k = 0.5 * sum_{u in unit k} F_uu * w_u ** 2`` per unit, ``F`` the Fisher diagonal.

        Args:
            ctx: The pruning context; ``ctx.calibration_batches(batches)`` supplies the data.

        Returns:
            ``{layer.name: float32 tensor [layer.num_units] on the CPU}``.

        Raises:
            PluginError: ``ctx.calibration_batches`` yielded no example.
        """
        import torch_pruning as tp

        model = copy.deepcopy(ctx.model).eval()
        for param in model.parameters():
            param.requires_grad_(True)
        modules = {layer.name: model.get_submodule(layer.name) for layer in ctx.layers}
        fisher = fisher_diagonal(model, modules, ctx.calibration_batches(self.config.batches))
        importance = tp.importance.HessianImportance(group_reduction="first", normalizer=None)
        scores = {}
        for layer in ctx.layers:
            module = modules[layer.name]
            module.weight.grad = fisher[layer.name]
            group = own_rows_group(module, layer.num_units)
            scores[layer.name] = (0.5 * importance(group)).float().cpu()
        return scores


def fisher_diagonal(
    model: nn.Module,
    modules: Mapping[str, nn.Module],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """The empirical Fisher diagonal ``mean_i (dL_i / dW) ** 2`` of each module's weight.

    ``L_i`` is the cross-entropy loss of example ``i``. Each batch is passed forward once with the
    summed loss; since in eval mode example ``i``'s output depends on example ``i`` only, the
    gradient of the sum at a module's output, row ``i``, is ``dL_i / d output_i``, and example
    ``i``'s weight gradient follows from it and the module's input row ``i``
    (:func:`per_example_grads`), without a backward pass per example. A batch is split so that
    no layer's per-example gradients exceed :data:`PER_EXAMPLE_BUDGET` entries.

    Args:
        model: Read only (forward hooks are added to it and removed; no ``.grad`` is written).
        modules: Name -> ``nn.Conv2d`` or ``nn.Linear`` of ``model`` whose ``weight`` is read.
        batches: ``(inputs [B, ...], labels [B] int64)`` pairs.

    Returns:
        Name -> tensor of the weight's shape and dtype, on its device.

    Raises:
        PluginError: ``batches`` held no example.
    """
    import torch

    sums = {name: torch.zeros_like(m.weight, dtype=torch.float64) for name, m in modules.items()}
    largest = max((m.weight.numel() for m in modules.values()), default=1)
    step = max(1, PER_EXAMPLE_BUDGET // largest)  # examples per pass: bounded memory
    count = 0
    for inputs, labels in batches:
        for start in range(0, len(labels), step):
            part = slice(start, start + step)
            grads = _batch_weight_grads(model, modules, inputs[part], labels[part])
            for name, per_example in grads.items():
                sums[name] += (per_example.double() ** 2).sum(dim=0)
        count += len(labels)
    if count == 0:
        raise PluginError(
            "plugin 'hessian' got no calibration examples from ctx.calibration_batches",
            "the protocol's training split must yield at least one batch",
        )
    return {name: (sums[name] / count).to(m.weight.dtype) for name, m in modules.items()}


def _batch_weight_grads(
    model: nn.Module, modules: Mapping[str, nn.Module], inputs: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-example weight gradients ``[B, *weight.shape]`` of the cross-entropy, per module."""
    import torch
    import torch.nn.functional as F

    calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in modules}

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            calls[name].append((args[0].detach(), output))  # (input, output to differentiate)

        return hook

    handles = [m.register_forward_hook(recorder(name)) for name, m in modules.items()]
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(inputs), labels, reduction="sum")
            outputs = [out for name in modules for _, out in calls[name]]
            grads = iter(torch.autograd.grad(loss, outputs, allow_unused=True))
    finally:
        for handle in handles:
            handle.remove()
    result = {}
    for name, module in modules.items():
        total = torch.zeros(len(labels), *module.weight.shape, device=module.weight.device)
        for inp, _ in calls[name]:  # a module called twice contributes twice
            grad_out = next(grads)
            if grad_out is not None:
                total += per_example_grads(module, inp, grad_out)
        result[name] = total
    return result


def per_example_grads(
    module: nn.Module, inputs: torch.Tensor, grad_output: torch.Tensor
) -> torch.Tensor:
    """Each example's gradient of a Conv2d's or Linear's weight, from one call's input and the
    loss gradient at its output.

    Linear: ``dW_i = sum_t g_i[t] (x) x_i[t]`` (outer products over any middle dimensions);
    Conv2d: ``dW_i = g_i @ unfold(x_i)^T`` per group, the input padded as the layer pads it.

    Args:
        module: ``nn.Linear`` (input ``[B, ..., in]``) or ``nn.Conv2d`` (input ``[B, C, H, W]``).
        inputs: The module's input.
        grad_output: ``dL / d output``, of the output's shape, row ``i`` depending on example
            ``i`` only.

    Returns:
        ``[B, *module.weight.shape]``.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    batch = inputs.shape[0]
    if isinstance(module, nn.Linear):
        x = inputs.reshape(batch, -1, module.in_features)
        g = grad_output.reshape(batch, -1, module.out_features)
        return torch.einsum("bto,bti->boi", g, x)
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    padded = F.pad(inputs, module._reversed_padding_repeated_twice, mode=mode)
    cols = F.unfold(padded, module.kernel_size, dilation=module.dilation, stride=module.stride)
    groups = module.groups
    cols = cols.reshape(batch, groups, -1, cols.shape[-1])  # [B, g, C/g * kh * kw, P]
    g = grad_output.reshape(batch, groups, module.out_channels // groups, -1)  # [B, g, O/g, P]
    return torch.einsum("bgop,bgip->bgoi", g, cols).reshape(batch, *module.weight.shape)


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [Hessian]
