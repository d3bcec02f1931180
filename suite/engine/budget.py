"""Budget targets: the smallest pruning that reaches a MACs speedup, measured by the suite.

A protocol target may fix only a budget, ``speedup = s``: dense MACs / pruned MACs ``>= s``
(effective MACs for weight granularity), so that methods with their own allocation (global
ranking, learned ratios) are compared at equal cost rather than forced onto the uniform
allocation's parameter count AND MACs at once. The pruning that first reaches ``s`` is found by
bisection, each candidate pruned on a copy of the model and counted with
:mod:`pruning_suite.engine.measure` (what a run records):

- layer-wise allocation: the smallest UNIFORM ratio ``r`` (every prunable layer at ``r``);
- global allocation: the smallest total ``n`` of units removed
  (:class:`~pruning_suite.engine.allocation.GlobalRanking`).

Both are monotone: removing more units never adds MACs. Candidates with the same per-layer counts
are measured once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ..contract.method import Allocation, Granularity, PrunableLayer
from ..errors import PruningError
from ..protocol.spec import PruningTarget
from .allocation import GlobalRanking, num_units_of
from .grouped import is_grouped_conv
from .masks import WeightMasks, select_weight_masks
from .measure import count_macs, effective_macs
from .pruning import select_removals, units_to_remove
from .surgery import apply_structured_pruning

__all__ = ["budget_ratios", "target_ratios"]


def budget_ratios(
    model: nn.Module,
    scores: Mapping[str, torch.Tensor] | None,
    layers: Sequence[PrunableLayer],
    allocation: Allocation,
    granularity: Granularity,
    speedup: float,
    input_shape: Sequence[int],
    example: torch.Tensor,
    *,
    dense_macs: int | None = None,
) -> dict[str, float]:
    """Per-layer ratios of the smallest pruning under ``allocation`` that reaches ``speedup``.

    Layer scope: the smallest uniform ratio ``r`` with ``speedup(r) >= speedup``; ``r`` is always
    a breakpoint ``k / n_L`` of the count rule (so ``0.5``, not ``0.4999...``), every layer gets
    it. Global scope: the smallest ``n`` with ``speedup(n) >= speedup``, returned as
    ``allocate(scores, {}, layers, allocation, granularity, total_units_to_remove=n)`` would.

    Args:
        model: The model to prune (not modified); in eval mode on ``example``'s device.
        scores: The method's scores (as :func:`~pruning_suite.engine.allocation.allocate`); they
            pick which units go, and rank units under global scope. None (layer scope only):
            the lowest indices go, which gives the same counts.
        layers: ``model``'s prunable layers, in module order.
        allocation: The method's allocation.
        granularity: ``"filter"`` (speedup of the physically pruned model) or ``"weight"``
            (effective speedup: MACs with a non-zero weight).
        speedup: The budget, dense MACs / pruned MACs, ``> 1``.
        input_shape: One example's shape ``(C, H, W)``.
        example: A few inputs ``[B, C, H, W]`` on the model's device (surgery traces with it).
        dense_macs: MACs of the dense model the speedup is relative to, when ``model`` is
            already partly pruned (a later prune round); default: ``count_macs(model)``.

    Returns:
        Layer name -> ratio in ``[0, 1)``, in ``layers`` order.

    Raises:
        PruningError: Even the most the allocation may remove (all but one unit of every layer;
            the ``max_layer_ratio`` caps under global scope) misses ``speedup``; or as
            :func:`~pruning_suite.engine.allocation.allocate`.
        PluginError: Malformed scores, as :func:`~pruning_suite.engine.allocation.allocate`.
    """
    if scores is None:
        if allocation.scope == "global":
            raise PruningError("global allocation needs the method's scores to rank units")
        scores = _lowest_first(layers, granularity)
    meter = _SpeedupMeter(model, scores, layers, granularity, input_shape, example, dense_macs)
    if allocation.scope == "global":
        return _global_budget(
            meter, GlobalRanking(scores, layers, allocation, granularity), speedup
        )
    return _uniform_budget(meter, layers, granularity, speedup)


def target_ratios(
    target: PruningTarget,
    model: nn.Module,
    layers: Sequence[PrunableLayer],
    granularity: Granularity,
    input_shape: Sequence[int],
    example: torch.Tensor,
    *,
    dense_macs: int | None = None,
) -> dict[str, float]:
    """The layer-wise ratios of any target: its own for a ratio target, else the uniform ratio
    that first reaches its speedup (:func:`budget_ratios`, layer scope).

    Args:
        target: A protocol target.
        model, layers, granularity, input_shape, example, dense_macs: As :func:`budget_ratios`.

    Returns:
        Layer name -> ratio in ``[0, 1)``, in ``layers`` order.

    Raises:
        PruningError: A budget no uniform ratio reaches.
        ProtocolError: A per-stage target that does not fit the network.
    """
    if not target.is_budget:
        return target.resolve([layer.name for layer in layers])
    assert target.speedup is not None
    return budget_ratios(
        model, None, layers, Allocation(), granularity, target.speedup, input_shape, example,
        dense_macs=dense_macs,
    )  # fmt: skip


class _SpeedupMeter:
    """Speedup of ``model`` pruned at given ratios, measured on a copy; memoized by the counts."""

    def __init__(
        self,
        model: nn.Module,
        scores: Mapping[str, torch.Tensor],
        layers: Sequence[PrunableLayer],
        granularity: Granularity,
        input_shape: Sequence[int],
        example: torch.Tensor,
        dense_macs: int | None,
    ) -> None:
        self.model, self.scores, self.layers = model, scores, tuple(layers)
        self.granularity, self.input_shape, self.example = granularity, input_shape, example
        self.dense_macs = count_macs(model, input_shape) if dense_macs is None else dense_macs
        self._units = [_count_units(layer, granularity) for layer in self.layers]
        self._seen: dict[tuple[int, ...], float] = {}

    def __call__(self, ratios: Mapping[str, float]) -> float:
        key = tuple(
            units_to_remove(ratios[layer.name], units, layer.name)
            for layer, units in zip(self.layers, self._units, strict=True)
        )
        if key not in self._seen:
            self._seen[key] = self.dense_macs / self._pruned_macs(ratios)
        return self._seen[key]

    def _pruned_macs(self, ratios: Mapping[str, float]) -> int:
        pruned = copy.deepcopy(self.model).eval()
        layers = [
            PrunableLayer(layer.name, pruned.get_submodule(layer.name), layer.num_units)
            for layer in self.layers
        ]
        if self.granularity == "weight":
            WeightMasks(select_weight_masks(self.scores, ratios, layers)).apply(pruned)
            return effective_macs(pruned, self.input_shape)
        removals = select_removals(self.scores, ratios, layers)
        apply_structured_pruning(pruned, removals, self.example)
        return count_macs(pruned, self.input_shape)


def _uniform_budget(
    meter: _SpeedupMeter, layers: Sequence[PrunableLayer], granularity: Granularity, speedup: float
) -> dict[str, float]:
    """The smallest breakpoint ratio ``k / n_L`` whose uniform pruning reaches ``speedup``."""
    units = [_count_units(layer, granularity) for layer in layers]

    def uniform(ratio: float) -> dict[str, float]:
        return dict.fromkeys((layer.name for layer in layers), ratio)

    top = max((n - 1) / n for n in units)
    _check_reachable(meter(uniform(top)), speedup, "uniform layer-wise pruning")
    lo, hi = 0.0, top
    if meter(uniform(lo)) >= speedup:
        return uniform(lo)
    while (mid := _breakpoint_between(lo, hi, units)) is not None:
        if meter(uniform(mid)) >= speedup:
            hi = mid
        else:
            lo = mid
    return uniform(hi)


def _global_budget(
    meter: _SpeedupMeter, ranking: GlobalRanking, speedup: float
) -> dict[str, float]:
    """The ratios of the smallest total ``n`` of globally ranked units that reaches ``speedup``."""
    lo, hi = 0, ranking.total_units
    _check_reachable(meter(ranking.ratios(hi)), speedup, "global allocation (within its caps)")
    if meter(ranking.ratios(lo)) >= speedup:
        return ranking.ratios(lo)
    while hi - lo > 1:  # speedup(lo) misses, speedup(hi) reaches
        mid = (lo + hi) // 2
        if meter(ranking.ratios(mid)) >= speedup:
            hi = mid
        else:
            lo = mid
    return ranking.ratios(hi)


def _breakpoint_between(lo: float, hi: float, units: Sequence[int]) -> float | None:
    """A ratio ``k / n`` (``n`` in ``units``, ``k <= n - 1``) strictly between ``lo`` and ``hi``,
    near their middle; None when there is none. Counts are constant between breakpoints (on
    ``(b_i, b_{i+1}]``), so only breakpoints need measuring."""
    mid = (lo + hi) / 2
    above = _nearest(mid, units, math.ceil, min)
    if above is not None and lo < above < hi:
        return above
    below = _nearest(mid, units, math.floor, max)
    return below if below is not None and lo < below < hi else None


def _nearest(
    x: float, units: Sequence[int], rounding: Callable[[float], int], pick: Callable
) -> float | None:
    candidates = [k / n for n in units if 0 <= (k := rounding(round(x * n, 9))) <= n - 1]
    return pick(candidates) if candidates else None


def _check_reachable(best: float, speedup: float, what: str) -> None:
    if best < speedup:
        raise PruningError(
            f"{what} cannot reach a {speedup:g}x MACs speedup: the most it gives is {best:.3f}x",
            "lower the target's speedup, raise the method's max_layer_ratio, or make more "
            "layers prunable",
        )


def _count_units(layer: PrunableLayer, granularity: Granularity) -> int:
    """The ``n`` of the count rule for ``layer``: per filter group for a grouped conv, as
    :func:`~pruning_suite.engine.pruning.select_removals` counts."""
    if granularity == "filter" and is_grouped_conv(layer.module):
        return layer.num_units // layer.module.groups
    return num_units_of(layer, granularity)


def _lowest_first(
    layers: Sequence[PrunableLayer], granularity: Granularity
) -> dict[str, torch.Tensor]:
    """Zero scores: the lowest indices go (same counts as any scores)."""
    if granularity == "weight":
        return {layer.name: torch.zeros(layer.module.weight.shape) for layer in layers}
    return {layer.name: torch.zeros(layer.num_units) for layer in layers}
