"""Shrinking a freshly built dense model to a pruned checkpoint's widths, before loading it
(:func:`pruning_suite.engine.checkpoint.load_pruned`): the last units of each block go."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ..errors import CheckpointError, PruningError
from .layers import layer_widths
from .surgery import apply_structured_pruning

__all__ = ["check_fits", "shrink_to_widths"]

_SHOWN = 5


def shrink_to_widths(
    model: nn.Module,
    widths: Mapping[str, int],
    architecture: Mapping[str, Any],
    example_input: torch.Tensor | None,
    path: str | os.PathLike[str],
) -> None:
    """Shrink every layer in ``widths`` to its width, in place: the last units of each block."""
    dense = _checked_dense(model, widths, path)
    counts = {name: dense[name] - width for name, width in widths.items() if width < dense[name]}
    if not counts:
        return
    batch = example_input if example_input is not None else _example(model, architecture, path)
    reached = _grouped_convs_reached(model, counts, batch, path)
    removals = {
        name: _last_units(name, dense[name], count, reached[name], path)
        for name, count in counts.items()
    }
    try:
        apply_structured_pruning(model, removals, batch)
    except PruningError as err:
        raise CheckpointError(
            f"cannot shrink the built model to the widths saved in {path}: {err.message}",
            "check that build() makes the architecture the checkpoint was pruned from",
        ) from err


def _checked_dense(
    model: nn.Module, widths: Mapping[str, int], path: str | os.PathLike[str]
) -> dict[str, int]:
    """The dense widths of ``model``, after checking that ``widths`` can shrink them."""
    dense = layer_widths(model)
    unknown = [name for name in widths if name not in dense]
    if unknown:
        raise CheckpointError(
            f"{path} records widths for {_few(unknown)}, which build() has no Conv2d/Linear "
            f"for; its Conv2d/Linear layers: {_few(list(dense))}",
            "check that build() makes the architecture the checkpoint was pruned from",
        )
    grown = [f"{n!r} ({w} saved > {dense[n]} dense)" for n, w in widths.items() if w > dense[n]]
    if grown:
        raise CheckpointError(
            f"{path} records widths larger than build()'s dense model: {_few(grown)}",
            "check that build() makes the architecture (and widths) the checkpoint came from",
        )
    return dense


@dataclass(frozen=True)
class _Reach:
    """A grouped conv whose channels shrink with a layer's units.

    Attributes:
        conv: Its module name.
        groups: Its ``groups``.
        block: Its group size (of the channels the layer reaches) if the layer's unit 0 maps to
            the first channel of one of its groups, else None.
    """

    conv: str
    groups: int
    block: int | None


def _grouped_convs_reached(
    model: nn.Module,
    layers: Sequence[str],
    example_input: torch.Tensor,
    path: str | os.PathLike[str],
) -> dict[str, list[_Reach]]:
    """Layer -> the grouped convs whose output or input channels shrink with its units.

    Those are the grouped convs in the layer's torch-pruning dependency group. The model is traced
    (in eval mode, modes restored after) only if it has a grouped conv at all.
    """
    if not any(_is_grouped(m) for m in model.modules()):
        return {layer: [] for layer in layers}
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()  # tracing runs a forward pass: it must not update BatchNorm statistics
        with torch.enable_grad():  # torch-pruning traces through autograd
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, verbose=False
            )
        names = {module: name for name, module in model.named_modules()}
        return {layer: _grouped_in_group(graph, model, layer, names) for layer in layers}
    except Exception as err:  # torch-pruning fails in many ways on models it cannot trace
        raise CheckpointError(
            f"cannot rebuild the pruned shapes of {path}: torch-pruning could not trace which "
            f"layers shrink with grouped convs: {err}",
            "check that build()'s model runs on example_input (or on the saved input_shape)",
        ) from err
    finally:
        for module, training in modes.items():
            module.train(training)


def _grouped_in_group(
    graph: tp.DependencyGraph, model: nn.Module, layer: str, names: Mapping[nn.Module, str]
) -> list[_Reach]:
    module = model.get_submodule(layer)
    if module not in graph.module2node:
        return []  # not used in the forward pass: apply_structured_pruning says so
    conv = isinstance(module, nn.Conv2d)
    fn = tp.prune_conv_out_channels if conv else tp.prune_linear_out_channels
    reached = []
    for dep, idxs in graph.get_pruning_group(module, fn, [0]):  # where unit 0 lands
        target = dep.target.module
        if _is_grouped(target):
            out = graph.is_out_channel_pruning_fn(dep.handler)
            size = (target.out_channels if out else target.in_channels) // target.groups
            aligned = len(idxs) == 1 and int(idxs[0]) % size == 0
            reached.append(_Reach(names[target], target.groups, size if aligned else None))
    return reached


def _last_units(
    name: str, units: int, count: int, reached: Sequence[_Reach], path: str | os.PathLike[str]
) -> list[int]:
    """The last ``count / blocks`` units of each equal block of ``range(units)``.

    A block is as large as the greatest common divisor of the group sizes of the grouped convs
    ``reached`` (``units``, i.e. one block, if none), so each of their groups loses equally many.
    """
    convs = ", ".join(f"{r.conv!r} (groups={r.groups})" for r in reached)
    sizes = [r.block for r in reached if r.block is not None and units % r.block == 0]
    if len(sizes) < len(reached):
        raise CheckpointError(
            f"cannot rebuild {name!r} of {path}: its {units} units reach the grouped convs "
            f"{convs} without covering whole groups of them (e.g. through a split, or a "
            "concatenation not aligned with their groups), so removing the last units of each "
            "group does not apply",
            "load_pruned cannot rebuild this architecture yet; report it",
        )
    size = math.gcd(units, *sizes)
    blocks = units // size
    if count % blocks:
        raise CheckpointError(
            f"{path} records width {units - count} for {name!r} (dense {units}), but {name!r} "
            f"reaches the grouped convs {convs}, which must lose equally many channels in each "
            f"of their groups, so the {count} units removed from {name!r} must be a multiple of "
            f"{blocks} (as many from each block of {size}); no valid pruning of this "
            "architecture gives that width",
            "check that build() makes the architecture (and widths) the checkpoint came from",
        )
    kept = size - count // blocks
    return [b * size + j for b in range(blocks) for j in range(kept, size)]


def _is_grouped(module: Any) -> bool:
    """A grouped conv: ``1 < groups < out_channels`` (not depthwise), not transposed."""
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and not module.transposed
        and 1 < module.groups < module.out_channels
    )


def _example(
    model: nn.Module, architecture: Mapping[str, Any], path: str | os.PathLike[str]
) -> torch.Tensor:
    shape = architecture.get("input_shape")
    ok = isinstance(shape, (list, tuple)) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    )
    if not ok:
        raise CheckpointError(
            f"{path} needs an example input to rebuild the pruned shapes, and its architecture "
            f"has no usable 'input_shape' (got {shape!r})",
            "pass load_pruned(..., example_input=batch), or save with arch={..., "
            "'input_shape': [C, H, W]}",
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, *shape, generator=generator).to(device)


def check_fits(
    model: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {list(state[k].shape)} saved vs {list(v.shape)} built"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{what}: {_few(keys)}"
        for what, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"the state_dict in {path} does not fit the rebuilt model; " + "; ".join(problems),
            "check that build() makes the checkpoint's architecture; a 'module.' prefix is "
            "stripped only when every key has it",
        )


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) if " " in str(i) else repr(i) for i in items[:_SHOWN])
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return f"[{shown}{more}]"
