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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..contract.method import PrunableLayer
from ..errors import PluginError, PruningError
from .layers import (
    PRUNABLE_TYPES,
    count_params,
    few,
    find_prunable_layers,
    num_units,
    output_layer_name,
)
from .surgery import LayerChange, apply_structured_pruning

__all__ = [
    "PRUNABLE_TYPES",
    "LayerChange",
    "apply_structured_pruning",
    "count_params",
    "find_prunable_layers",
    "output_layer_name",
    "select_removals",
    "units_to_remove",
]

# Steps 1 (:func:`find_prunable_layers`, in :mod:`.layers`) and 4 (:func:`apply_structured_pruning`,
# in :mod:`.surgery`) live in their own modules; this one holds steps 2 and 3.


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
    reject_unknown_layers(scores, known, "scores", PluginError)
    reject_unknown_layers(ratios, known, "ratios", PruningError)
    removals: dict[str, list[int]] = {}
    for layer in layers:
        layer_scores = checked_layer_scores(
            scores,
            layer,
            [layer.num_units],
            f"a finite 1-D float tensor of shape [{layer.num_units}]",
            noun="scores",
            shape_hint="one score per output channel (Conv2d) or output feature (Linear)",
        )
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
    return groups if 1 < groups < num_units(module) else 1


def reject_unknown_layers(
    given: Mapping[str, Any], known: Sequence[str], what: str, error: type
) -> None:
    """Raise ``error`` when ``given`` names a layer that is not in ``known`` (the prunable ones)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise error(
            f"{what} given for {few(unknown)}, which {'is' if len(unknown) == 1 else 'are'} not "
            f"a prunable layer; prunable layers: {few(sorted(known))}",
            "the output layer and layers outside the protocol's 'prunable_layers' cannot be pruned",
        )


def checked_layer_scores(
    scores: Mapping[str, torch.Tensor],
    layer: PrunableLayer,
    shape: list[int],
    expected: str,
    *,
    noun: str,
    shape_hint: str,
) -> torch.Tensor:
    """``scores[layer.name]`` as a CPU float64 tensor of ``shape``, or PluginError.

    Args:
        scores: A method's scores by layer name.
        layer: The layer whose scores are checked.
        shape: The shape the scores must have (``[num_units]`` or the weight's shape).
        expected: What a valid value is, in words, for the error messages.
        noun: What the scores are called in the messages (``"scores"``, ``"weight scores"``).
        shape_hint: The hint given when the shape is wrong.
    """
    if layer.name not in scores:
        raise PluginError(
            f"{noun} lack layer {layer.name!r}; expected {expected}",
            "score() must return a tensor for every layer in ctx.layers",
        )
    value = scores[layer.name]
    if not isinstance(value, torch.Tensor) or value.is_complex():
        raise PluginError(
            f"{noun} for layer {layer.name!r} are a {type(value).__name__}; expected {expected}"
        )
    if list(value.shape) != shape:
        raise PluginError(
            f"{noun} for layer {layer.name!r} have shape {list(value.shape)}; expected {expected}",
            shape_hint,
        )
    value = value.detach().to("cpu", torch.float64)
    if not torch.isfinite(value).all():
        raise PluginError(
            f"{noun} for layer {layer.name!r} contain NaN or inf; expected {expected}"
        )
    return value
