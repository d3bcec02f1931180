"""Allocation: how many units each layer loses, layer-wise or by one global ranking.

A method scores units; the core decides how many go from each layer (Wang et al., arXiv
2301.05219, Sec. 3: the layer-wise ratio scheme is part of a pruning algorithm). Two allocations
(:class:`~pruning_suite.contract.method.Allocation`):

- ``layer``: every layer loses its own ratio's count of its lowest-scoring units (the ratios are
  returned unchanged);
- ``global``: the scores of all prunable layers, each layer's first normalized, are ranked
  together and the lowest ``n`` units go, as torch-pruning's global pruning does
  (``MetaPruner(global_pruning=True)``, Fang et al., "DepGraph", CVPR 2023), with a per-layer
  cap (protection).

:func:`allocate` returns per-layer RATIOS, so the core's one count rule and one tie rule still
apply: fed to :func:`~pruning_suite.engine.pruning.select_removals` (filter granularity) or
:func:`~pruning_suite.engine.masks.select_weight_masks` (weight granularity), layer ``L`` with
``n_L`` units loses exactly the ``c_L`` units the global ranking chose, its ratio being
``c_L / n_L`` (``units_to_remove(c_L / n_L, n_L) == c_L``, checked).

Budget targets (a protocol target that fixes only a MACs speedup) are resolved by
:mod:`pruning_suite.engine.budget`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from ..contract.method import Allocation, Granularity, PrunableLayer
from ..errors import PluginError, PruningError
from .grouped import is_grouped_conv
from .pruning import checked_layer_scores, reject_unknown_layers, units_to_remove

__all__ = ["GlobalRanking", "allocate", "layer_caps", "num_units_of", "ratio_for_count"]


def allocate(
    scores: Mapping[str, torch.Tensor],
    ratios: Mapping[str, float],
    layers: Sequence[PrunableLayer],
    allocation: Allocation,
    granularity: Granularity,
    total_units_to_remove: int | None = None,
) -> dict[str, float]:
    """Per-layer pruning ratios under ``allocation``.

    ``scope = "layer"``: ``ratios`` unchanged (as a dict). ``scope = "global"``:

    1. each layer's scores (float64) are divided by the layer's ``normalizer`` statistic
       (``none``: 1; ``mean``, ``max``, ``sum``; ``l2``: the Euclidean norm); a layer whose
       statistic is 0 (all scores 0) keeps its scores;
    2. all units are ranked together, ascending, with a STABLE sort; ties go to the earlier layer
       in ``layers`` (module) order, then, within a layer, in the layer's own order (lowest index
       first among equal scores, the tie rule of ``select_removals``);
    3. the lowest ``n`` are chosen: ``n = total_units_to_remove`` when given, else the total the
       layer-wise ``ratios`` remove under the one count rule (``sum(units_to_remove(r_L, n_L))``),
       so global allocation removes as many units as the layer-wise target would;
    4. protection: layer ``L`` loses at most ``min(floor(max_layer_ratio * n_L), n_L - 1)``
       units. Chosen units past a layer's cap are NOT removed and NOT replaced by the next ones
       in the ranking, so a binding cap removes fewer than ``n`` units in all (a budget target
       compensates by searching over ``n``, :func:`~pruning_suite.engine.budget.budget_ratios`).
       torch-pruning 1.6 does not redistribute either (nor cap layers in one-shot pruning; it
       skips a layer whose every unit is chosen).

    Units are filters (scores ``[n_L]``) or weights (scores of the weight's shape, flattened).

    Args:
        scores: Layer name -> finite real scores (any dtype and device); lower is removed first.
        ratios: Layer name -> ratio in ``[0, 1)`` (a missing name means 0); the layer-wise
            allocation, and the default total for global allocation.
        layers: The prunable layers, in module order.
        allocation: The method's allocation; granularity: ``"filter"`` or ``"weight"``.
        total_units_to_remove: Units (filters, or weights) to remove in all, for global
            allocation; in ``[0, sum(n_L)]``.

    Returns:
        Layer name -> ratio ``c_L / n_L`` in ``[0, 1)`` for every layer, in ``layers`` order
        (global scope), or ``dict(ratios)`` (layer scope).

    Raises:
        PluginError: Scores lack a layer, name an unknown one, have the wrong shape, contain
            NaN/inf, or a negative normalizer statistic (it would reverse their order).
        PruningError: A ratio is outside ``[0, 1)`` or names an unknown layer;
            ``total_units_to_remove`` is out of range; a prunable layer is a grouped conv
            (``1 < groups < out_channels``) under global filter allocation.
    """
    if allocation.scope == "layer":
        return dict(ratios)
    reject_unknown_layers(ratios, [layer.name for layer in layers], "ratios", PruningError)
    ranking = GlobalRanking(scores, layers, allocation, granularity)
    if total_units_to_remove is None:
        total_units_to_remove = sum(
            units_to_remove(float(ratios.get(layer.name, 0.0)), size, layer.name)
            for layer, size in zip(layers, ranking.sizes, strict=True)
        )
    return ranking.ratios(total_units_to_remove)


class GlobalRanking:
    """All units of the prunable layers ranked together once (steps 1-2 of :func:`allocate`), so
    the ratios of many totals ``n`` cost one sort (the budget search asks for many).

    Args:
        scores: As :func:`allocate`.
        layers: The prunable layers, in module order.
        allocation: Supplies ``normalizer`` and ``max_layer_ratio`` (its scope is not read).
        granularity: ``"filter"`` or ``"weight"``.

    Raises:
        PluginError, PruningError: As :func:`allocate`.
    """

    def __init__(
        self,
        scores: Mapping[str, torch.Tensor],
        layers: Sequence[PrunableLayer],
        allocation: Allocation,
        granularity: Granularity,
    ) -> None:
        self.layers = tuple(layers)
        self.sizes = [num_units_of(layer, granularity) for layer in self.layers]
        self.caps = layer_caps(self.sizes, allocation.max_layer_ratio)
        ranked = _ranked_scores(scores, self.layers, granularity, allocation.normalizer)
        layer_of = torch.repeat_interleave(torch.arange(len(ranked)), torch.tensor(self.sizes))
        order = torch.sort(torch.cat(ranked), stable=True).indices
        self._layer_order = layer_of[order]  # [sum(n_L)]: the layer of the i-th lowest unit

    @property
    def total_units(self) -> int:
        """Units of all prunable layers, ``sum(n_L)``."""
        return sum(self.sizes)

    def counts(self, n: int) -> list[int]:
        """Units each layer loses when the ``n`` lowest-ranked go, after the caps.

        Raises:
            PruningError: ``n`` is not an integer in ``[0, total_units]``.
        """
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= self.total_units:
            raise PruningError(
                f"total_units_to_remove is {n!r}; the prunable layers have {self.total_units} "
                "units",
                "give an integer between 0 and the prunable layers' units",
            )
        chosen = torch.bincount(self._layer_order[:n], minlength=len(self.layers)).tolist()
        return [min(count, cap) for count, cap in zip(chosen, self.caps, strict=True)]

    def ratios(self, n: int) -> dict[str, float]:
        """Layer name -> ``c_L / n_L`` for the ``n`` lowest-ranked units (:meth:`counts`)."""
        return {
            layer.name: ratio_for_count(count, size, layer.name)
            for layer, size, count in zip(self.layers, self.sizes, self.counts(n), strict=True)
        }


def num_units_of(layer: PrunableLayer, granularity: Granularity) -> int:
    """The layer's units under ``granularity``: filters / neurons, or weight entries."""
    if granularity == "weight":
        return layer.module.weight.numel()
    return layer.num_units


def layer_caps(sizes: Sequence[int], max_layer_ratio: float) -> list[int]:
    """``min(floor(max_layer_ratio * n_L), n_L - 1)`` per layer (``max_layer_ratio * n_L`` rounded
    to 9 decimals first, as in the count rule, so ``0.95 * 20`` caps at 19, not 18)."""
    return [min(math.floor(round(max_layer_ratio * size, 9)), size - 1) for size in sizes]


def ratio_for_count(count: int, size: int, layer_name: str) -> float:
    """A ratio ``r`` with ``units_to_remove(r, size) == count``: ``count / size``, nudged by one
    float step at a time in the rare case float error moves the count.

    Raises:
        PruningError: ``count`` is not in ``[0, size - 1]``.
    """
    if not 0 <= count < size:
        raise PruningError(
            f"cannot remove {count} of the {size} units of layer {layer_name!r}",
            "at least one unit of every layer is kept",
        )
    ratio = count / size
    for _ in range(64):
        got = units_to_remove(ratio, size, layer_name)
        if got == count:
            return ratio
        ratio = math.nextafter(ratio, 0.0 if got > count else 1.0)
    raise PruningError(f"no float ratio removes exactly {count} of {size} units of {layer_name!r}")


def _ranked_scores(
    scores: Mapping[str, torch.Tensor],
    layers: Sequence[PrunableLayer],
    granularity: Granularity,
    normalizer: str,
) -> list[torch.Tensor]:
    """Per layer, its normalized float64 scores flattened and sorted ascending (stable), so a
    stable sort of their concatenation ranks ties by layer, then by the layer's own order."""
    reject_unknown_layers(scores, [layer.name for layer in layers], "scores", PluginError)
    ranked = []
    for layer in layers:
        values = _layer_scores(scores, layer, granularity).flatten()
        values = values / _statistic(values, normalizer, layer.name)
        ranked.append(torch.sort(values, stable=True).values)
    return ranked


def _layer_scores(
    scores: Mapping[str, torch.Tensor], layer: PrunableLayer, granularity: Granularity
) -> torch.Tensor:
    if granularity == "weight":
        shape = list(layer.module.weight.shape)
        return checked_layer_scores(
            scores, layer, shape, f"a finite real tensor of the weight's shape {shape}",
            noun="weight scores", shape_hint="weight granularity scores every weight",
        )  # fmt: skip
    if is_grouped_conv(layer.module):
        raise PruningError(
            f"global allocation cannot rank the filters of grouped conv {layer.name!r} "
            f"(groups={layer.module.groups}): every filter group must lose as many filters",
            "leave grouped convs out of the protocol's prunable_layers, or use layer-wise "
            "allocation (Allocation(scope='layer'))",
        )
    return checked_layer_scores(
        scores, layer, [layer.num_units], f"a finite 1-D float tensor of shape [{layer.num_units}]",
        noun="scores", shape_hint="one score per output channel (Conv2d) or output feature (Linear)",
    )  # fmt: skip


def _statistic(values: torch.Tensor, normalizer: str, layer_name: str) -> float:
    """What ``normalizer`` divides the layer's scores by; 1.0 when it is 0."""
    if normalizer == "none" or values.numel() == 0:
        return 1.0
    statistic = {
        "mean": values.mean,
        "max": values.max,
        "sum": values.sum,
        "l2": lambda: torch.linalg.vector_norm(values),
    }[normalizer]()
    value = float(statistic)
    if value < 0:
        raise PluginError(
            f"the scores of layer {layer_name!r} have a negative {normalizer} ({value:g}); "
            "dividing by it would reverse their order",
            "give non-negative scores, or normalizer 'none' or 'l2'",
        )
    return value if value > 0 else 1.0
