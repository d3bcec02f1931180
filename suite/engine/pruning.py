"""Structured (filter / neuron) pruning: which layers, how many units, which units, and surgery.

The core, not the method, applies pruning (Wang et al., arXiv 2301.05219, Sec. 3): a method only
scores units, so every method is held to the same count rule, the same tie rule and the same
physical surgery. Four steps, each a function:

1. :func:`find_prunable_layers` -- the ``nn.Conv2d`` / ``nn.Linear`` layers a protocol allows;
2. :func:`units_to_remove` -- THE one ratio-to-count rule, ``min(ceil(ratio * n), n - 1)``;
3. :func:`select_removals` -- the lowest scores of each layer, ties to the lowest index (per
   group of filters for a grouped conv);
4. :func:`apply_structured_pruning` -- removes those units in place with torch-pruning's
   ``DependencyGraph`` (BatchNorm and the consumers' input channels follow) and proves the result
   equals the dense model with the same units zeroed.

Terms used throughout:

- *unit*: an output channel (filter) of a Conv2d or an output feature (neuron) of a Linear;
- *output layer*: the LAST ``nn.Linear`` or ``nn.Conv2d`` in ``model.named_modules()`` order (the
  classifier). Its units are the model's outputs, so it is never prunable;
- *group*: torch-pruning's dependency group of one layer's units: the layer itself plus every
  parameter that must shrink with it (BatchNorm entries, next layers' input channels, and the
  output channels of *coupled* layers: the other layers feeding the same residual add, or the
  depthwise conv that follows);
- *depthwise conv*: a conv with ``groups == in_channels == out_channels`` (one filter per input
  channel; its input and output channels are coupled one to one);
- *grouped conv*: a conv with ``1 < groups < out_channels`` (e.g. ResNeXt's 3x3 conv). Each of its
  ``groups`` filter groups sees only its own ``in_channels // groups`` consecutive input channels,
  so pruning must remove equally many output channels from every group, and equally many input
  channels from every group of its inputs; ``groups`` never changes.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import Group

from ..contract.method import PrunableLayer
from ..errors import PluginError, PruningError, VerificationError

__all__ = [
    "LayerChange",
    "apply_structured_pruning",
    "count_params",
    "find_prunable_layers",
    "output_layer_name",
    "select_removals",
    "units_to_remove",
]

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)

# torch-pruning bookkeeping nodes (adds, concats, reshapes, the model output): no parameters.
_BOOKKEEPING = {
    tp.ops.OPTYPE.CONCAT,
    tp.ops.OPTYPE.SPLIT,
    tp.ops.OPTYPE.ELEMENTWISE,
    tp.ops.OPTYPE.RESHAPE,
    tp.ops.OPTYPE.UNBIND,
    tp.ops.OPTYPE.EXPAND,
    tp.ops.OPTYPE.SLICE,
    tp.ops.OPTYPE.OUTPUT,
}
# Parameterised nodes whose pruning equals zeroing (weight rows / gamma, beta): verifiable.
_VERIFIABLE = {
    tp.ops.OPTYPE.CONV,
    tp.ops.OPTYPE.DEPTHWISE_CONV,
    tp.ops.OPTYPE.LINEAR,
    tp.ops.OPTYPE.BN,
}


# ----------------------------------------------------------------------------------------------
# 1. Which layers


def output_layer_name(model: nn.Module) -> str | None:
    """Name of the output layer: the last ``nn.Linear`` or ``nn.Conv2d`` in module order.

    Args:
        model: Any model.

    Returns:
        Its name in ``model.named_modules()``, or ``None`` if the model has no such layer.
    """
    layers = _prunable_modules(model)
    return layers[-1][0] if layers else None


def find_prunable_layers(model: nn.Module, patterns: Sequence[str]) -> tuple[PrunableLayer, ...]:
    """The Conv2d and Linear layers whose module name matches any of ``patterns``.

    The output layer (see :func:`output_layer_name`) is always excluded: its units are the classes.

    Args:
        model: The dense model.
        patterns: ``fnmatch`` patterns matched case-sensitively (``fnmatch.fnmatchcase``) against
            module names, e.g. ``["features.*", "classifier.0"]``.

    Returns:
        One :class:`~pruning_suite.contract.method.PrunableLayer` per match, in ``model.named_modules()``
        order; ``num_units`` is ``out_channels`` (Conv2d) or ``out_features`` (Linear).

    Raises:
        PruningError: No layer matches (the message lists the patterns and some module names).
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    output = output_layer_name(model)
    candidates = _prunable_modules(model)
    layers = tuple(
        PrunableLayer(name, module, _num_units(module))
        for name, module in candidates
        if name != output and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    )
    if not layers:
        raise PruningError(
            f"no prunable Conv2d/Linear layer matches the patterns {patterns} "
            f"(the output layer {output!r} is never prunable); "
            f"the model's Conv2d/Linear layers are {_few([n for n, _ in candidates])}",
            "fix 'prunable_layers' in the protocol (fnmatch patterns, e.g. 'layer1.*.conv1')",
        )
    return layers


# ----------------------------------------------------------------------------------------------
# 2. How many units


def units_to_remove(ratio: float, num_units: int, layer_name: str) -> int:
    """THE ratio-to-count rule: ``min(ceil(ratio * num_units), num_units - 1)``.

    Rounding up means a requested ratio is never under-delivered; the cap keeps at least one unit
    so no layer is ever emptied. ``ratio * num_units`` is rounded to 9 decimals before the ceiling
    so float error does not add a unit (``0.3 * 10 == 3.0000000000000004`` gives 3, not 4).

    Args:
        ratio: Fraction (not percent) of the layer's units to remove, in ``[0, 1)``.
        num_units: The layer's output channels / features (``>= 1``).
        layer_name: Used in the error message only.

    Returns:
        The number of units to remove, in ``[0, num_units - 1]``.

    Raises:
        PruningError: ``ratio`` is not in ``[0, 1)`` (1 or more would empty the layer).
    """
    if not 0.0 <= ratio < 1.0:  # also catches NaN
        what = "would empty" if ratio >= 1.0 else "is not a valid ratio for"
        raise PruningError(
            f"pruning ratio {ratio!r} {what} layer {layer_name!r} ({num_units} units); "
            "ratios must lie in [0, 1)",
            "ratios are fractions of a layer's units removed; at least one unit is always kept",
        )
    return min(math.ceil(round(ratio * num_units, 9)), num_units - 1)


# ----------------------------------------------------------------------------------------------
# 3. Which units


def select_removals(
    scores: Mapping[str, torch.Tensor],
    ratios: Mapping[str, float],
    layers: Sequence[PrunableLayer],
) -> dict[str, list[int]]:
    """The lowest-scoring units of every layer, as many as :func:`units_to_remove` says.

    Tie rule: scores are sorted ascending with a STABLE sort on the CPU in float64, so among equal
    scores the lowest index is removed first, whatever the thread count or device.

    Grouped convs (``1 < groups < out_channels``): the count rule and the tie rule apply PER GROUP
    of ``out_channels // groups`` consecutive filters, so every group loses
    ``units_to_remove(ratio, out_channels // groups)`` filters (its lowest-scoring ones) and keeps
    at least one; e.g. 25% of a ``Conv2d(16, 16, 3, groups=4)`` removes one filter per group (12
    left, still 4 groups). A uniform loss is what keeps the pruned layer a valid grouped conv. A
    depthwise conv (``groups == out_channels``) follows the whole-layer rule.

    Args:
        scores: A method's scores: for every ``layer.name``, a finite 1-D tensor of shape
            ``[layer.num_units]`` (any real dtype, any device); lower is pruned first.
        ratios: Fraction of units to remove per layer name, in ``[0, 1)``; a missing name means 0.
        layers: The prunable layers (from :func:`find_prunable_layers`).

    Returns:
        Layer name -> unit indices to remove, sorted ascending. Layers with nothing to remove are
        omitted. Keys follow ``layers`` order.

    Raises:
        PluginError: ``scores`` lack a layer, have a wrong shape or dtype, contain NaN/inf, or name
            a layer that is not prunable.
        PruningError: A ratio is outside ``[0, 1)`` or names a layer that is not prunable.
    """
    known = {layer.name for layer in layers}
    _reject_unknown(scores, known, "scores", PluginError)
    _reject_unknown(ratios, known, "ratios", PruningError)
    removals: dict[str, list[int]] = {}
    for layer in layers:
        layer_scores = _checked_scores(scores, layer)
        groups = _filter_groups(layer.module)
        per_group = layer.num_units // groups
        count = units_to_remove(float(ratios.get(layer.name, 0.0)), per_group, layer.name)
        if count:
            order = torch.sort(layer_scores.view(groups, per_group), dim=1, stable=True).indices
            offsets = torch.arange(groups).unsqueeze(1) * per_group
            removals[layer.name] = sorted((order[:, :count] + offsets).flatten().tolist())
    return removals


def _filter_groups(module: nn.Module) -> int:
    """``groups`` of a grouped conv (``1 < groups < out_channels``); 1 for any other layer."""
    groups = getattr(module, "groups", 1)
    return groups if 1 < groups < _num_units(module) else 1


def _reject_unknown(given: Mapping[str, Any], known: set[str], what: str, error: type) -> None:
    unknown = sorted(set(given) - known)
    if unknown:
        raise error(
            f"{what} given for {_few(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not "
            f"a prunable layer; prunable layers: {_few(sorted(known))}",
            "the output layer and layers outside the protocol's 'prunable_layers' cannot be pruned",
        )


def _checked_scores(scores: Mapping[str, torch.Tensor], layer: PrunableLayer) -> torch.Tensor:
    """``scores[layer.name]`` as a CPU float64 tensor of shape ``[num_units]``, or PluginError."""
    expected = f"a finite 1-D float tensor of shape [{layer.num_units}]"
    if layer.name not in scores:
        raise PluginError(
            f"scores lack layer {layer.name!r}; expected {expected}",
            "score() must return a tensor for every layer in ctx.layers",
        )
    value = scores[layer.name]
    if not isinstance(value, torch.Tensor) or value.is_complex():
        raise PluginError(
            f"scores for layer {layer.name!r} are a {type(value).__name__}; expected {expected}"
        )
    if tuple(value.shape) != (layer.num_units,):
        raise PluginError(
            f"scores for layer {layer.name!r} have shape {list(value.shape)}; expected {expected}",
            "one score per output channel (Conv2d) or output feature (Linear)",
        )
    value = value.detach().to("cpu", torch.float64)
    if not torch.isfinite(value).all():
        raise PluginError(
            f"scores for layer {layer.name!r} contain NaN or inf; expected {expected}"
        )
    return value


# ----------------------------------------------------------------------------------------------
# 4. Removing them


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
    atol: float = 1e-5,
) -> list[LayerChange]:
    """Physically remove the given units, in place, and verify the result.

    Each requested layer's torch-pruning dependency group is computed on the ORIGINAL model; the
    groups are merged (indices united per parameter, all in original numbering) and pruned at once,
    so BatchNorm entries (gamma, beta, running stats) and consumers' input channels (including the
    column blocks of a Linear after ``flatten``) are removed with the units.

    Coupled layers: a layer's group may also remove OUTPUT channels of other layers (across a
    residual add, e.g. a ResNet stem/downsample conv and the last conv of every block of a stage;
    or a depthwise conv and the conv feeding it). Requesting one of them prunes the whole group,
    and every pruned layer is reported. Requesting two coupled layers is allowed only with
    identical indices (they are pruned once); otherwise this raises, as it does when a group would
    reach the output layer. (Choosing indices for a whole coupled group comes later.)

    Depthwise and grouped convs: a depthwise conv shrinks with the conv feeding it (``groups``
    follows, e.g. 32 -> 16). A grouped conv keeps ``groups``; the removals must take equally many
    of its output channels from every filter group, and equally many of its input channels from
    every input group (e.g. a plain conv feeding a ``groups=4`` conv must lose a multiple of 4
    units, as many from each quarter of its outputs). Its input channels are removed per group
    here, not by torch-pruning 1.6, whose ``prune_conv_in_channels`` keeps the first group's
    positions for every group (``keep_idxs[:len(keep_idxs) // groups]``) and so is wrong whenever
    the groups lose different positions.

    Verification: before pruning, a deep copy is masked (for every Conv/Linear whose outputs the
    groups remove: weight rows and bias entries zeroed; for every BatchNorm: gamma and beta zeroed,
    running stats untouched). After pruning, the pruned model's eval-mode output on
    ``example_input`` must have the masked copy's shape and match it within ``atol``. If it does
    not (or the surgery itself fails), every pruned layer is put back as it was before raising.

    Args:
        model: The model, on ``example_input``'s device; modified in place. Its train/eval mode
            (per module) is restored afterwards.
        removals: Layer name -> output unit indices to remove (original numbering). Layers must be
            ``nn.Conv2d`` / ``nn.Linear``, not the output layer. Empty lists are ignored.
        example_input: A batch the model accepts, e.g. ``[B, C, H, W]``; used to trace the
            dependency graph and to verify. ``B >= 1``.
        atol: Largest allowed max absolute difference between pruned and masked outputs.

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
            from the masked reference (by more than ``atol``, or in shape). The pruned layers are
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
        _check_grouped_convs(graph, model, groups, merged)
        reference = _masked_reference(model, graph, merged)
        widths = {name: _num_units(m) for name, m in _prunable_modules(model)}
        _prune_verified(graph, merged, model, reference, example_input, atol)
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
                f"Conv2d/Linear layers: {_few([n for n, _ in _prunable_modules(model)])}",
            )
        if name == output:
            raise PruningError(
                f"cannot prune {name!r}: it is the output layer (its units are the outputs)",
                "exclude the classifier from 'prunable_layers'",
            )
        _check_indices(name, idxs, _num_units(module))
        requests[name] = sorted(idxs)
    return requests


def _check_indices(name: str, idxs: list[int], num_units: int) -> None:
    bad = [i for i in idxs if not 0 <= i < num_units]
    if bad:
        raise PruningError(f"cannot prune {name!r}: indices {bad[:5]} are outside [0, {num_units})")
    if len(set(idxs)) != len(idxs):
        raise PruningError(f"cannot prune {name!r}: repeated indices in {_short(idxs)}")
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
            f"removing units {_short(idxs)} of {name!r} would leave "
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
                    f"{_short(requests[name])} from {name!r} removes {_short(idxs)} from "
                    f"{other!r}, but {_short(requests[other])} were requested for it",
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


def _check_grouped_convs(
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
                f"{_short(counts)} {what} channels from its {module.groups} groups of "
                f"{width // module.groups}; a grouped conv must lose equally many {what} channels "
                "in every group",
                "select_removals prunes a grouped conv's filters per group; a layer feeding a "
                "grouped conv must lose equally many units in each group of the conv's inputs "
                "(and cannot lose whole groups)",
            )
    _check_depthwise_sources(model, groups, merged)


def _check_depthwise_sources(model: nn.Module, groups: Mapping[str, Group], merged: Group) -> None:
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


def _prune_verified(
    graph: tp.DependencyGraph,
    group: Group,
    model: nn.Module,
    reference: nn.Module,
    example_input: torch.Tensor,
    atol: float,
) -> None:
    """Prune ``group`` and verify against ``reference``; on any failure restore, then raise."""
    saved = _snapshot(group)
    try:
        _prune(graph, group)
        _verify(model, reference, example_input, atol)
    except VerificationError:
        _restore(saved)
        raise
    except Exception as err:  # torch-pruning's surgery fails with assorted errors
        _restore(saved)
        raise VerificationError(
            f"torch-pruning failed while pruning (the model was restored): {err}",
            "a layer in a dependency group cannot be pruned this way; report a bug",
        ) from err


def _prune(graph: tp.DependencyGraph, group: Group) -> None:
    """``group.prune()``, except grouped convs' input channels, which are pruned per group."""
    for dep, idxs in group:
        module = dep.target.module
        if graph.is_in_channel_pruning_fn(dep.handler) and _is_grouped_conv(module):
            _prune_grouped_in_channels(module, idxs)
        else:
            dep(idxs)


def _is_grouped_conv(module: Any) -> bool:
    """A non-transposed conv with ``1 < groups`` that torch-pruning does not treat as depthwise."""
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and not module.transposed
        and 1 < module.groups != module.out_channels
    )


def _prune_grouped_in_channels(conv: nn.modules.conv._ConvNd, idxs: Sequence[int]) -> None:
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


def _snapshot(group: Group) -> list[tuple[nn.Module, dict[str, Any]]]:
    """Enough of every module ``group`` can modify to put it back (pruning replaces tensors)."""
    modules = {dep.target.module for dep, _ in group}
    return [
        (m, {**vars(m), "_parameters": dict(m._parameters), "_buffers": dict(m._buffers)})
        for m in modules
        if isinstance(m, nn.Module)
    ]


def _restore(saved: Sequence[tuple[nn.Module, dict[str, Any]]]) -> None:
    for module, state in saved:
        vars(module).clear()
        vars(module).update(state)


def _masked_reference(model: nn.Module, graph: tp.DependencyGraph, group: Group) -> nn.Module:
    """A deep copy of ``model`` in which every unit ``group`` removes is zeroed instead."""
    names = {module: name for name, module in model.named_modules()}
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for dep, idxs in group:
            node = dep.target
            if node.type in _BOOKKEEPING:
                continue
            if (
                node.type not in _VERIFIABLE
                or getattr(node.module, "transposed", False)
                or (node.type == tp.ops.OPTYPE.BN and not node.module.affine)
            ):
                raise PruningError(
                    f"the dependency group reaches {names.get(node.module, node.name)!r} "
                    f"({type(node.module).__name__}), whose pruning the suite cannot verify yet",
                    "supported: Conv/Linear layers, affine BatchNorm, adds, concats and reshapes",
                )
            if graph.is_out_channel_pruning_fn(dep.handler):
                copied = reference.get_submodule(names[node.module])
                if idxs and max(idxs) >= copied.weight.shape[0]:
                    raise PruningError(
                        f"the dependency group asks to remove unit {max(idxs)} of "
                        f"{names[node.module]!r}, which has only {copied.weight.shape[0]}; "
                        "torch-pruning cannot follow this coupling (e.g. a zero-padding shortcut)",
                        "prune only layers whose outputs are not coupled through such a shortcut",
                    )
                index = torch.tensor(sorted(idxs), dtype=torch.long, device=copied.weight.device)
                copied.weight[index] = 0
                if copied.bias is not None:
                    copied.bias[index] = 0
    return reference


def _verify(
    model: nn.Module, reference: nn.Module, example_input: torch.Tensor, atol: float
) -> None:
    """Raise VerificationError unless ``model`` and ``reference`` give the same eval outputs."""
    with torch.no_grad():
        expected = _tensors(reference(example_input))
        try:
            actual = _tensors(model(example_input))
        except RuntimeError as err:
            raise VerificationError(
                f"the pruned model no longer runs on example_input: {err}"
            ) from err
    shapes = ([list(t.shape) for t in actual], [list(t.shape) for t in expected])
    if shapes[0] != shapes[1]:
        raise VerificationError(
            f"pruned output shapes {shapes[0]} differ from the masked reference's {shapes[1]}"
        )
    pairs = zip(actual, expected, strict=True)
    diff = max(
        (float((a.double() - e.double()).abs().max()) for a, e in pairs if a.numel()), default=0.0
    )
    if not diff <= atol:  # also catches NaN
        raise VerificationError(
            f"pruned model's output differs from the masked reference by {diff:.3g} (max abs; "
            f"atol {atol:g})",
            "a layer in a dependency group is not pruned consistently; report a bug",
        )


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a model output (a tensor, or nested tuples/lists/dicts of tensors)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    raise VerificationError(f"cannot compare a model output of type {type(output).__name__}")


def _changes(
    model: nn.Module, graph: tp.DependencyGraph, group: Group, widths: Mapping[str, int]
) -> list[LayerChange]:
    names = {module: name for name, module in model.named_modules()}
    removed = {names[m]: idxs for m, idxs in _pruned_outputs(graph, group) if m in names}
    return [
        LayerChange(name, widths[name], _num_units(module), removed[name])
        for name, module in model.named_modules()
        if name in removed and name in widths
    ]


# ----------------------------------------------------------------------------------------------
# Helpers


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor counted once; buffers such as BN stats excluded).

    Args:
        model: Any model.

    Returns:
        ``sum(p.numel() for p in model.parameters())``.
    """
    return sum(p.numel() for p in model.parameters())


def _prunable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]


def _num_units(module: nn.Module) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels
    return module.out_features


def _emptied(graph: tp.DependencyGraph, group: Group) -> str:
    """Which item of ``group`` would lose all its channels (what check_pruning_group refuses)."""
    for dep, idxs in group:
        out = graph.is_out_channel_pruning_fn(dep.handler)
        module = dep.target.module
        width = graph.get_out_channels(module) if out else graph.get_in_channels(module)
        if width is not None and width <= len(idxs):
            return f"the {'outputs' if out else 'inputs'} of {dep.target.name}"
    return "a layer"


def _short(idxs: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in idxs[:limit])
    return f"[{shown}, ... ({len(idxs)} in all)]" if len(idxs) > limit else f"[{shown}]"


def _few(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)} in all)"
