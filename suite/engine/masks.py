"""Unstructured (weight-granularity) pruning: per-weight keep-masks enforced through retraining.

Structured pruning (:mod:`pruning_suite.engine.pruning`) removes whole filters and shrinks the model;
unstructured pruning zeroes individual weights and keeps every tensor's shape, so the zeros must be
held in place while the model is retrained (Wang et al., arXiv 2301.05219, Sec. 3). Two steps:

1. :func:`select_weight_masks` -- the lowest-scoring WEIGHTS of every layer, as many as
   :func:`~pruning_suite.engine.pruning.units_to_remove` says (the same count rule as for filters, with
   a layer's weights as its units), ties to the lowest flat index (the same tie rule);
2. :class:`WeightMasks` -- holds the masks; :meth:`WeightMasks.apply` zeroes the pruned weights and
   :meth:`WeightMasks.enforce`, called after EVERY optimizer step, re-zeroes them and zeroes the
   optimizer state (momentum, Adam moments) of the pruned entries::

       masks = WeightMasks(select_weight_masks(scores, ratios, layers))
       masks.apply(model)
       training_step(model, optimizer, x, y, after_step=lambda: masks.enforce(model, optimizer))

Masks cover only the ``weight`` of ``nn.Conv2d`` / ``nn.Linear`` layers; biases are never masked.
A pruned model's cost is reported twice: dense (:func:`~pruning_suite.engine.measure.measure`, the
shapes) and effective (:func:`~pruning_suite.engine.measure.measure_effective`, the non-zero weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..contract.method import PrunableLayer
from ..errors import CheckpointError, PluginError, PruningError
from .pruning import PRUNABLE_TYPES, checked_layer_scores, reject_unknown_layers, units_to_remove

__all__ = ["WeightMasks", "select_weight_masks"]


# ----------------------------------------------------------------------------------------------
# 1. Which weights


def select_weight_masks(
    scores: Mapping[str, torch.Tensor],
    ratios: Mapping[str, float],
    layers: Sequence[PrunableLayer],
) -> dict[str, torch.Tensor]:
    """Keep-masks removing the lowest-scoring weights of every layer.

    Count rule: a layer whose weight has ``n`` entries loses
    ``units_to_remove(ratio, n, name)`` weights, i.e. ``min(ceil(ratio * n), n - 1)``: the ratio
    is never under-delivered and at least one weight is kept. Tie rule: the flattened scores are
    sorted ascending with a STABLE sort on the CPU in float64, so among equal scores the lowest
    flat (row-major) index is removed first -- the filter tie rule of
    :func:`~pruning_suite.engine.pruning.select_removals`, applied to weights.

    Args:
        scores: For every ``layer.name``, a finite real tensor of the layer's WEIGHT shape
            (``[out, in // groups, kh, kw]`` for a Conv2d, ``[out, in]`` for a Linear), any device;
            lower is pruned first (e.g. ``weight.abs()`` for magnitude pruning).
        ratios: Fraction (not percent) of each layer's weights to remove, in ``[0, 1)``; a
            missing name means 0.
        layers: The prunable layers (from :func:`~pruning_suite.engine.pruning.find_prunable_layers`).

    Returns:
        Layer name -> CPU ``torch.bool`` mask of the weight's shape, ``True`` = kept. Layers with
        nothing to remove are omitted; keys follow ``layers`` order.

    Raises:
        PluginError: ``scores`` lack a layer, name a layer not in ``layers``, or hold a value that
            is not a finite real tensor of the weight's shape.
        PruningError: A ratio is outside ``[0, 1)`` or names a layer not in ``layers``.
    """
    known = [layer.name for layer in layers]
    reject_unknown_layers(scores, known, "weight scores", PluginError)
    reject_unknown_layers(ratios, known, "ratios", PruningError)
    masks: dict[str, torch.Tensor] = {}
    for layer in layers:
        layer_scores = _checked_weight_scores(scores, layer)
        count = units_to_remove(
            float(ratios.get(layer.name, 0.0)), layer_scores.numel(), layer.name
        )
        if count:
            order = torch.sort(layer_scores.flatten(), stable=True).indices
            keep = torch.ones(layer_scores.numel(), dtype=torch.bool)
            keep[order[:count]] = False
            masks[layer.name] = keep.view(layer_scores.shape)
    return masks


def _checked_weight_scores(
    scores: Mapping[str, torch.Tensor], layer: PrunableLayer
) -> torch.Tensor:
    """``scores[layer.name]`` as a CPU float64 tensor of the weight's shape, or PluginError."""
    shape = list(layer.module.weight.shape)
    return checked_layer_scores(
        scores,
        layer,
        shape,
        f"a finite real tensor of the weight's shape {shape}",
        noun="weight scores",
        shape_hint="unstructured methods score every weight, not every filter (granularity 'weight')",
    )


# ----------------------------------------------------------------------------------------------
# 2. Keeping them pruned


class WeightMasks:
    """Per-weight keep-masks of ``nn.Conv2d`` / ``nn.Linear`` weights, held through retraining.

    Args:
        masks: Module name -> ``torch.bool`` tensor of that module's ``weight`` shape, ``True`` =
            kept (e.g. from :func:`select_weight_masks`). Stored on the CPU; copied.

    Raises:
        PruningError: A mask is not a bool tensor, or keeps no weight at all (it would empty the
            layer).
    """

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        self._masks = {name: _checked_mask(name, mask) for name, mask in masks.items()}
        self._pruned_on: dict[torch.device, dict[str, torch.Tensor]] = {}

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """A copy of the masks: module name -> CPU bool tensor of the weight's shape."""
        return {name: mask.clone() for name, mask in self._masks.items()}

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        pruned = sum(int((~m).sum()) for m in self._masks.values())
        total = sum(m.numel() for m in self._masks.values())
        return f"WeightMasks({len(self)} layers, {pruned:,} of {total:,} weights pruned)"

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Zero the pruned weights of ``model`` in place (exact zeros, also over NaN/inf).

        Args:
            model: The model the masks were made for.

        Raises:
            PruningError: A masked module is missing from ``model``, is not a Conv2d/Linear, or
                its weight's shape differs from its mask's.
        """
        for weight, pruned in self._pruned_weights(model):
            weight.masked_fill_(pruned, 0)

    @torch.no_grad()
    def enforce(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Re-apply the masks after an optimizer step and zero the pruned entries' optimizer state.

        Every per-entry state tensor the optimizer keeps for a masked weight (any state tensor of
        the weight's shape: SGD's ``momentum_buffer``; Adam's ``exp_avg``, ``exp_avg_sq`` and
        ``max_exp_avg_sq``; RMSprop's ``square_avg``, ...) is zeroed at the pruned entries, so no
        stale momentum pushes a pruned weight and every run's optimizer state is the same. Scalar
        state (``step``) is left alone. Pass it to
        :func:`~pruning_suite.engine.train.training_step` as
        ``after_step=lambda: masks.enforce(model, optimizer)``.

        Args:
            model: The model being retrained.
            optimizer: Its optimizer, right after ``optimizer.step()``.

        Raises:
            PruningError: As :meth:`apply`.
        """
        for weight, pruned in self._pruned_weights(model):
            weight.masked_fill_(pruned, 0)
            for value in optimizer.state.get(weight, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                    value.masked_fill_(pruned, 0)

    @torch.no_grad()
    def sparsity(self, model: nn.Module) -> float:
        """Fraction (not percent) of the masked weights of ``model`` that are exactly zero.

        Read from the model, not the masks: it counts weights pruned by the masks and any weight
        that happens to be zero, over all entries of the masked weights (unmasked layers and
        biases are not counted).

        Args:
            model: The model the masks were made for.

        Returns:
            Zero weights / weights of the masked layers, in ``[0, 1]``; 0.0 if there are no masks.

        Raises:
            PruningError: As :meth:`apply`.
        """
        weights = [weight for weight, _ in self._pruned_weights(model)]
        total = sum(w.numel() for w in weights)
        zeros = sum(w.numel() - int(torch.count_nonzero(w)) for w in weights)
        return zeros / total if total else 0.0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The masks as ``{module name: CPU bool tensor}``, safe for ``torch.load(weights_only=True)``."""
        return self.masks

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> WeightMasks:
        """Masks from :meth:`state_dict` output (e.g. read back with ``weights_only=True``).

        Args:
            state: Module name -> ``torch.bool`` tensor of the weight's shape.

        Returns:
            The masks.

        Raises:
            CheckpointError: ``state`` is not a mapping of names to bool tensors each keeping at
                least one weight.
        """
        if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
            raise CheckpointError(
                f"weight masks must be a mapping of module names to bool tensors, "
                f"not a {type(state).__name__}",
                "write them with WeightMasks.state_dict()",
            )
        try:
            return cls(state)
        except PruningError as err:
            raise CheckpointError(
                f"stored weight masks are invalid: {err.message}",
                "write them with WeightMasks.state_dict()",
            ) from err

    def _pruned_weights(self, model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """(weight, pruned-entries mask on the weight's device) for every masked module."""
        pairs = []
        for name, mask in self._masks.items():
            weight = _masked_weight(model, name, list(mask.shape))
            pruned_here = self._pruned_on.setdefault(weight.device, {})
            if name not in pruned_here:
                pruned_here[name] = (~mask).to(weight.device)
            pairs.append((weight, pruned_here[name]))
        return pairs


def _checked_mask(name: str, mask: object) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        what = f"a {mask.dtype} tensor" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise PruningError(
            f"the weight mask of {name!r} is {what}; expected a torch.bool tensor "
            "of the weight's shape (True = kept)"
        )
    if mask.numel() and not bool(mask.any()):
        raise PruningError(
            f"the weight mask of {name!r} prunes all {mask.numel()} weights, which would empty "
            "the layer",
            "at least one weight must be kept; see units_to_remove",
        )
    return mask.detach().to("cpu").clone()


def _masked_weight(model: nn.Module, name: str, shape: list[int]) -> nn.Parameter:
    """``model.get_submodule(name).weight``, checked to be a Conv2d/Linear weight of ``shape``."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        module = None
    if not isinstance(module, PRUNABLE_TYPES):
        found = "no module" if module is None else f"a {type(module).__name__}"
        raise PruningError(
            f"cannot mask the weight of {name!r}: in this model it is {found}, "
            "not a Conv2d or Linear",
            "apply masks only to the model they were selected on",
        )
    if list(module.weight.shape) != shape:
        raise PruningError(
            f"the weight mask of {name!r} has shape {shape}, but its weight has shape "
            f"{list(module.weight.shape)}",
            "apply masks only to the model they were selected on (before any structured surgery)",
        )
    return module.weight
