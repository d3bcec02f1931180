"""Physical removal of units (step 4 of :mod:`pruning_suite.engine.pruning`), verified.

:func:`apply_structured_pruning` removes units in place with torch-pruning's ``DependencyGraph``
(BatchNorm and the consumers' input channels follow) and proves the result equals the dense
model with the same units zeroed.

Each requested layer's torch-pruning dependency group is computed on the ORIGINAL model; the
groups are merged (indices united per parameter, all in original numbering) and pruned at once,
so BatchNorm entries (gamma, beta, running stats) and consumers' input channels (including the
column blocks of a Linear after ``flatten``) are removed with the units.

*Coupled layers*: a layer's group may also remove OUTPUT channels of other layers (across a
residual add, e.g. a ResNet stem/downsample conv and the last conv of every block of a stage; or
a depthwise conv and the conv feeding it). Requesting one of them prunes the whole group, and
every pruned layer is reported. Requesting two coupled layers is allowed only with identical
indices (they are pruned once); otherwise it is refused, as is a group that would reach the
output layer.

*Depthwise and grouped convs*: a depthwise conv (``groups == in_channels == out_channels``)
shrinks with the conv feeding it (``groups`` follows, e.g. 32 -> 16). A grouped conv
(``1 < groups < out_channels``, e.g. ResNeXt's 3x3) keeps ``groups``; the removals must take
equally many of its output channels from every filter group, and equally many of its input
channels from every input group (e.g. a plain conv feeding a ``groups=4`` conv must lose a
multiple of 4 units, as many from each quarter of its outputs). Its input channels are removed
per group here, not by torch-pruning 1.6, whose ``prune_conv_in_channels`` keeps the first
group's positions for every group (``keep_idxs[:len(keep_idxs) // groups]``) and so is wrong
whenever the groups lose different positions.

*Verification*: before pruning, a deep copy is masked (for every Conv/Linear whose outputs the
groups remove: weight rows and bias entries zeroed; for every BatchNorm: gamma and beta zeroed,
running stats untouched). After pruning, the pruned model's eval-mode output on the example input
must have the masked copy's shape and match it in float64 within a tolerance relative to the
output's magnitude (:data:`~pruning_suite.engine.verify.VERIFY_RTOL`). If it does not (or the surgery
itself fails), every pruned layer is put back as it was before raising.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import Group

from ..errors import PruningError
from .grouped import check_grouped_convs
from .layers import PRUNABLE_TYPES, few, num_units, output_layer_name, prunable_modules, short
from .verify import VERIFY_RTOL, masked_reference, prune_verified

__all__ = ["LayerChange", "apply_structured_pruning"]

# torch-pruning bookkeeping nodes (adds, concats, reshapes, the model output): no parameters.


@dataclass(frozen=True)
class LayerChange:
    """How one Conv2d/Linear layer's width changed.

    Attributes:
        name: Module name.
        before: Units (output channels / features) before pruning.
        after: Units after pruning.
        removed: The removed unit indices, in the ORIGINAL numbering, ascending.
    """

    name: str
    before: int
    after: int
    removed: list[int]


def apply_structured_pruning(
    model: nn.Module,
    removals: Mapping[str, Sequence[int]],
    example_input: torch.Tensor,
    rtol: float = VERIFY_RTOL,
) -> list[LayerChange]:
    """Physically remove the given units, in place, and verify the result.

    The requested layers' dependency groups are merged and pruned at once; coupled layers,
    depthwise and grouped convs and the verification against a masked copy are as the module
    docstring describes. On any failure after pruning started, the pruned layers are restored.

    Args:
        model: The model, on ``example_input``'s device; modified in place. Its train/eval mode
            (per module) is restored afterwards.
        removals: Layer name -> output unit indices to remove (original numbering). Layers must be
            ``nn.Conv2d`` / ``nn.Linear``, not the output layer. Empty lists are ignored.
        example_input: A batch the model accepts, e.g. ``[B, C, H, W]``; used to trace the
            dependency graph and to verify. ``B >= 1``.
        rtol: Largest allowed max absolute difference between pruned and masked outputs, both
            computed in float64, relative to ``max(1, max |masked output|)``.

    Returns:
        One :class:`LayerChange` per Conv2d/Linear whose units were removed (requested and coupled
        layers), in module order.

    Raises:
        PruningError: Before anything is modified: an unknown or non-Conv2d/Linear name, the output
            layer, an index out of range or repeated, a request that would leave a layer (or a
            consumer's input) with zero units, conflicting requests on coupled layers, a group that
            reaches a layer type this function cannot verify (e.g. LayerNorm), a grouped conv that
            would lose unequal numbers of channels per group, a depthwise-style conv with
            ``groups == out_channels != in_channels``, a depthwise conv fed by the model input, a
            layer not used in the forward pass, or a model on another device than
            ``example_input``.
        VerificationError: After pruning: the surgery failed, or the pruned model's output differs
            from the masked reference (beyond ``rtol``, or in shape). The pruned layers are
            restored first, so the model is as it was; the error is a bug to report.
    """
    requests = _checked_requests(model, removals)
    if not requests:
        return []
    _check_device(model, example_input)
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()  # tracing runs a forward pass: it must not update BatchNorm statistics
        graph = _dependency_graph(model, example_input)
        groups = {name: _group(graph, model, name, idxs) for name, idxs in requests.items()}
        _check_coupling(graph, model, requests, groups)
        merged = _merge(graph, groups)
        check_grouped_convs(graph, model, groups, merged)
        reference = masked_reference(model, graph, merged)
        widths = {name: num_units(m) for name, m in prunable_modules(model)}
        prune_verified(graph, merged, model, reference, example_input, rtol)
        return _changes(model, graph, merged, widths)
    finally:
        for module, training in modes.items():
            module.train(training)


def _checked_requests(
    model: nn.Module, removals: Mapping[str, Sequence[int]]
) -> dict[str, list[int]]:
    """The non-empty requests as sorted index lists, each checked against its layer."""
    modules = dict(model.named_modules())
    output = output_layer_name(model)
    requests = {}
    for name, idxs in removals.items():
        idxs = [int(i) for i in idxs]
        if not idxs:
            continue
        module = modules.get(name)
        if not isinstance(module, PRUNABLE_TYPES):
            found = "no module" if module is None else f"a {type(module).__name__}"
            raise PruningError(
                f"cannot prune {name!r}: it is {found}, not a Conv2d or Linear",
                f"Conv2d/Linear layers: {few([n for n, _ in prunable_modules(model)])}",
            )
        if name == output:
            raise PruningError(
                f"cannot prune {name!r}: it is the output layer (its units are the outputs)",
                "exclude the classifier from 'prunable_layers'",
            )
        _check_indices(name, idxs, num_units(module))
        requests[name] = sorted(idxs)
    return requests


def _check_indices(name: str, idxs: list[int], num_units: int) -> None:
    bad = [i for i in idxs if not 0 <= i < num_units]
    if bad:
        raise PruningError(f"cannot prune {name!r}: indices {bad[:5]} are outside [0, {num_units})")
    if len(set(idxs)) != len(idxs):
        raise PruningError(f"cannot prune {name!r}: repeated indices in {short(idxs)}")
    if len(idxs) >= num_units:
        raise PruningError(
            f"removing {len(idxs)} of {num_units} units would empty layer {name!r}",
            "at least one unit must be kept; see units_to_remove",
        )


def _check_device(model: nn.Module, example_input: torch.Tensor) -> None:
    devices = {p.device for p in model.parameters()}
    if devices and devices != {example_input.device}:
        raise PruningError(
            f"the model is on {sorted(map(str, devices))} but example_input on "
            f"{example_input.device}",
            "move both to the same device",
        )


def _dependency_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    with torch.enable_grad():  # torch-pruning traces through autograd
        try:
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, verbose=False
            )
        except Exception as err:  # torch-pruning fails in many ways on models it cannot trace
            raise PruningError(
                f"torch-pruning could not trace the model: {err}",
                "check that model(example_input) runs",
            ) from err


def _group(graph: tp.DependencyGraph, model: nn.Module, name: str, idxs: list[int]) -> Group:
    module = model.get_submodule(name)
    if module not in graph.module2node:
        raise PruningError(
            f"cannot prune {name!r}: it is not used in the forward pass on example_input"
        )
    conv = isinstance(module, nn.Conv2d)
    fn = tp.prune_conv_out_channels if conv else tp.prune_linear_out_channels
    try:
        group = graph.get_pruning_group(module, fn, idxs)
    except Exception as err:  # index mapping through unusual ops can fail inside torch-pruning
        raise PruningError(f"torch-pruning could not build the group of {name!r}: {err}") from err
    if not graph.check_pruning_group(group):
        raise PruningError(
            f"removing units {short(idxs)} of {name!r} would leave "
            f"{_emptied(graph, group)} with zero channels"
        )
    return group


def _pruned_outputs(
    graph: tp.DependencyGraph, group: Group
) -> Iterator[tuple[nn.Module, list[int]]]:
    """(Conv/Linear, removed output indices) for every such layer ``group`` narrows."""
    for dep, idxs in group:
        module = dep.target.module
        layer = isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))
        if layer and graph.is_out_channel_pruning_fn(dep.handler):
            yield module, sorted(idxs)


def _check_coupling(
    graph: tp.DependencyGraph,
    model: nn.Module,
    requests: Mapping[str, list[int]],
    groups: Mapping[str, Group],
) -> None:
    """Refuse groups that touch the output layer, and coupled requests that disagree."""
    names = {module: name for name, module in model.named_modules()}
    output = output_layer_name(model)
    for name, group in groups.items():
        for module, idxs in _pruned_outputs(graph, group):
            other = names[module]
            if other == output:
                raise PruningError(
                    f"cannot prune {name!r}: it is coupled with the output layer {other!r}"
                )
            if other != name and other in requests and requests[other] != idxs:
                raise PruningError(
                    f"layer {name!r} is coupled with {other!r} (they share output channels "
                    f"through a residual add or a depthwise conv): removing "
                    f"{short(requests[name])} from {name!r} removes {short(idxs)} from "
                    f"{other!r}, but {short(requests[other])} were requested for it",
                    "give coupled layers identical indices, or request only one of them",
                )


def _merge(graph: tp.DependencyGraph, groups: Mapping[str, Group]) -> Group:
    """One group holding every item of ``groups``, indices united per (layer, pruning function).

    All indices are in the original numbering, so each parameter is pruned exactly once, which
    keeps layers that receive channels from several groups (e.g. after ``torch.cat``) correct.
    """
    united: dict[tuple[Any, Any], tuple[Any, set[int]]] = {}
    for group in groups.values():
        for dep, idxs in group:
            key = (dep.target, dep.handler)
            united.setdefault(key, (dep, set()))[1].update(idxs)
    merged = Group()
    for dep, idxs in united.values():
        merged.add_dep(dep, sorted(idxs))
    if not graph.check_pruning_group(merged):
        raise PruningError(
            f"the requested removals together would leave "
            f"{_emptied(graph, merged)} with zero channels"
        )
    return merged


def _changes(
    model: nn.Module, graph: tp.DependencyGraph, group: Group, widths: Mapping[str, int]
) -> list[LayerChange]:
    names = {module: name for name, module in model.named_modules()}
    removed = {names[m]: idxs for m, idxs in _pruned_outputs(graph, group) if m in names}
    return [
        LayerChange(name, widths[name], num_units(module), removed[name])
        for name, module in model.named_modules()
        if name in removed and name in widths
    ]


def _emptied(graph: tp.DependencyGraph, group: Group) -> str:
    """Which item of ``group`` would lose all its channels (what check_pruning_group refuses)."""
    for dep, idxs in group:
        out = graph.is_out_channel_pruning_fn(dep.handler)
        module = dep.target.module
        width = graph.get_out_channels(module) if out else graph.get_in_channels(module)
        if width is not None and width <= len(idxs):
            return f"the {'outputs' if out else 'inputs'} of {dep.target.name}"
    return "a layer"
