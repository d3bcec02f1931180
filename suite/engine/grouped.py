"""Grouped and depthwise convolutions in structured pruning: the checks and the per-group
removal of input channels (see :mod:`pruning_suite.engine.surgery`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import Group

from ..errors import PruningError
from .layers import short

__all__ = [
    "check_depthwise_sources",
    "check_grouped_convs",
    "is_grouped_conv",
    "prune_grouped_in_channels",
]


def check_grouped_convs(
    graph: tp.DependencyGraph,
    model: nn.Module,
    groups: Mapping[str, Group],
    merged: Group,
) -> None:
    """Refuse what torch-pruning 1.6 would get wrong on depthwise and grouped convs.

    - a conv with ``groups == out_channels`` but ``in_channels != out_channels`` (a channel
      multiplier or reducer): torch-pruning treats it as depthwise and pairs input ``i`` with
      output ``i``;
    - a grouped conv losing unequal numbers of output channels, or of input channels, per group;
    - a depthwise conv whose input channels come from the model input, which cannot be pruned.
    """
    names = {module: name for name, module in model.named_modules()}
    for dep, idxs in merged:
        module = dep.target.module
        if not isinstance(module, nn.modules.conv._ConvNd) or module.groups == 1 or not idxs:
            continue
        where = _where(groups, dep.target, names.get(module, dep.target.name))
        if module.groups == module.out_channels != module.in_channels:
            raise PruningError(
                f"cannot prune {where} ({_describe(module)}), a depthwise-style conv with "
                "in_channels != out_channels, which torch-pruning 1.6 prunes wrongly (it pairs "
                "input channel i with output channel i)",
                "leave this conv and the layers feeding it out of 'prunable_layers'",
            )
        if module.groups == module.out_channels or getattr(module, "transposed", False):
            continue  # depthwise: pruned as a pair; transposed: refused by _masked_reference
        out = graph.is_out_channel_pruning_fn(dep.handler)
        width = module.out_channels if out else module.in_channels
        counts = _per_group(idxs, width, module.groups)
        if len(set(counts)) > 1:
            what = "output" if out else "input"
            raise PruningError(
                f"cannot prune {where} ({_describe(module)}): the removals take "
                f"{short(counts)} {what} channels from its {module.groups} groups of "
                f"{width // module.groups}; a grouped conv must lose equally many {what} channels "
                "in every group",
                "select_removals prunes a grouped conv's filters per group; a layer feeding a "
                "grouped conv must lose equally many units in each group of the conv's inputs "
                "(and cannot lose whole groups)",
            )
    check_depthwise_sources(model, groups, merged)


def check_depthwise_sources(model: nn.Module, groups: Mapping[str, Group], merged: Group) -> None:
    """Refuse a depthwise conv in ``merged`` whose pruned input channels reach the model input."""
    names = {module: name for name, module in model.named_modules()}
    pruned = {dep.target for dep, idxs in merged if idxs}
    producers = {tp.ops.OPTYPE.CONV, tp.ops.OPTYPE.LINEAR}
    for node in pruned:
        if node.type != tp.ops.OPTYPE.DEPTHWISE_CONV:
            continue
        stack, seen = [node], {node}
        while stack:
            current = stack.pop()
            upstream = [n for n in current.inputs if n in pruned]
            if not upstream and current.type not in producers:
                name = names.get(node.module, node.name)
                raise PruningError(
                    f"cannot prune {_where(groups, node, name)}, a depthwise conv whose input "
                    "channels come from the model input (which cannot be pruned); its input and "
                    "output channels are coupled one to one",
                    f"leave {name!r} and the layers coupled with it out of 'prunable_layers'",
                )
            if current is node or current.type not in producers:
                stack += [n for n in upstream if n not in seen]
                seen.update(upstream)


def _where(groups: Mapping[str, Group], node: Any, name: str) -> str:
    """``'conv'`` if only it was requested, else ``'a', 'b': this reaches 'conv'``."""
    requested = [n for n, group in groups.items() if any(dep.target is node for dep, _ in group)]
    if requested == [name]:
        return repr(name)
    return f"{', '.join(repr(n) for n in requested)}: this reaches {name!r}"


def _per_group(idxs: Sequence[int], width: int, groups: int) -> list[int]:
    """How many of ``idxs`` fall in each of ``groups`` equal blocks of ``range(width)``."""
    size = width // groups
    counts = [0] * groups
    for i in idxs:
        counts[i // size] += 1
    return counts


def _describe(conv: nn.Module) -> str:
    return f"in_channels={conv.in_channels}, out_channels={conv.out_channels}, groups={conv.groups}"


def is_grouped_conv(module: Any) -> bool:
    """A non-transposed conv with ``1 < groups`` that torch-pruning does not treat as depthwise."""
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and not module.transposed
        and 1 < module.groups != module.out_channels
    )


def prune_grouped_in_channels(conv: nn.modules.conv._ConvNd, idxs: Sequence[int]) -> None:
    """Remove input channels ``idxs`` of a grouped conv, each filter group keeping its own ones.

    The weight ``[out, in // groups, *kernel]`` becomes ``[out, (in - len(idxs)) // groups,
    *kernel]``: the rows of group ``g`` keep the columns of group ``g``'s surviving inputs.
    ``idxs`` must hold equally many channels of every input group (checked beforehand).
    """
    size, out_size = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    removed = set(idxs)
    kept = [[j for j in range(size) if g * size + j not in removed] for g in range(conv.groups)]
    device = conv.weight.device
    cols = torch.tensor(kept, device=device).repeat_interleave(out_size, dim=0)  # [out, kept]
    rows = torch.arange(conv.out_channels, device=device).unsqueeze(1)
    weight = nn.Parameter(conv.weight.data[rows, cols], conv.weight.requires_grad)
    if conv.weight.grad is not None:
        weight.grad = conv.weight.grad[rows, cols]
    conv.weight = weight
    conv.in_channels -= len(removed)
