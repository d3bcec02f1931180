"""The parameters that go with each unit of a prunable layer, found with torch-pruning's
``DependencyGraph`` and recorded by module name (shared by ``slimming`` and ``group-norm``).

Removing filter ``k`` of a conv also removes entry ``k`` of the BatchNorm after it and the input
columns of the layers that consume it (through a ``Flatten``, ``spatial`` columns per filter).
Network slimming needs the first (its scores are the BatchNorm scales after each conv); DepGraph's
group regularizer needs all of them. torch-pruning's dependency groups (Fang et al., CVPR 2023)
list exactly these, but a graph is bound to the module objects it traced; the method sees the
model being trained in one hook and a copy of it in ``score()``. So the group of every prunable
layer is traced once, on a copy in eval mode (tracing runs a forward pass, which in train mode
would move BatchNorm running statistics), and kept as :class:`UnitSlice` rows by module name,
valid for any model of the same architecture.

Tracing needs one example input, and the pruning context does not say the input's shape, so the
first calibration batch is drawn once (counted by the suite like any calibration data, and well
within a pruning budget's ``calibration_samples``); its first example is traced.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pruning_suite import PrunableLayer, PruningContext

__all__ = ["UnitGroups", "UnitSlice", "layer_group"]

Kind = Literal["out", "in", "bn"]


@dataclass(frozen=True)
class UnitSlice:
    """Where the units of one prunable layer sit in one module's parameters.

    Attributes:
        module: The module's name in the model (``model.get_submodule(module)``).
        kind: ``"out"``: rows of the layer's own ``weight`` (``weight[index]``); ``"in"``:
            input columns of a consuming Conv2d / Linear (``weight[:, index]``); ``"bn"``:
            entries of a BatchNorm's ``weight`` (scale, gamma) and ``bias`` (shift, beta).
        index: ``[m]`` int64 positions along that dimension.
        unit: ``[m]`` int64, the layer's unit (filter / neuron) each position belongs to.
    """

    module: str
    kind: Kind
    index: torch.Tensor
    unit: torch.Tensor


@dataclass
class UnitGroups:
    """The unit slices of every prunable layer, traced once per architecture and cached.

    A method holds one instance; :meth:`of` traces the first time it meets an architecture
    (keyed by its parameters' names and shapes) and answers from the cache after that.
    """

    _example: Any = None
    _cache: dict[tuple[Any, ...], dict[str, tuple[UnitSlice, ...]]] = field(default_factory=dict)

    def of(self, ctx: PruningContext) -> dict[str, tuple[UnitSlice, ...]]:
        """Layer name -> its unit slices (its own rows first), for every layer of ``ctx.layers``.

        Raises:
            ValueError: torch-pruning cannot trace the model (the core's own surgery would fail
                on it too); the suite reports it as the method's error.
        """
        key = tuple((name, tuple(p.shape)) for name, p in ctx.model.named_parameters())
        if key not in self._cache:
            graph, traced = self.trace(ctx)
            names = {module: name for name, module in traced.named_modules()}
            self._cache[key] = {
                layer.name: _slices(layer_group(graph, traced, layer), names)
                for layer in ctx.layers
            }
        return self._cache[key]

    def trace(self, ctx: PruningContext) -> tuple[Any, nn.Module]:
        """torch-pruning's ``DependencyGraph`` of a copy of ``ctx.model`` in eval mode, and the copy."""
        import torch
        import torch_pruning as tp

        traced = copy.deepcopy(ctx.model).eval()
        if self._example is None:
            inputs, _ = next(iter(ctx.calibration_batches(1)))
            self._example = inputs[:1].detach().clone()
        with torch.enable_grad():  # torch-pruning traces through autograd
            graph = tp.DependencyGraph().build_dependency(
                traced, example_inputs=self._example.to(ctx.device), verbose=False
            )
        return graph, traced


def layer_group(graph: Any, model: nn.Module, layer: PrunableLayer) -> Any:
    """torch-pruning's pruning group of all units of ``layer`` (looked up by name in ``model``)."""
    import torch_pruning as tp
    from torch import nn

    module = model.get_submodule(layer.name)
    conv = isinstance(module, nn.Conv2d)
    handler = tp.prune_conv_out_channels if conv else tp.prune_linear_out_channels
    return graph.get_pruning_group(module, handler, list(range(layer.num_units)))


def _slices(group: Any, names: dict[Any, str]) -> tuple[UnitSlice, ...]:
    """The group's Conv2d / Linear rows and columns and BatchNorm entries as :class:`UnitSlice`.

    Other members (parameter-free ops; LayerNorm, grouped-conv inputs) are left out.
    """
    import torch
    import torch_pruning as tp

    kinds = {
        tp.prune_conv_out_channels: "out",
        tp.prune_linear_out_channels: "out",
        tp.prune_depthwise_conv_out_channels: "out",
        tp.prune_conv_in_channels: "in",
        tp.prune_linear_in_channels: "in",
        tp.prune_batchnorm_out_channels: "bn",
    }
    found = []
    for item in group:
        module, kind = item.dep.target.module, kinds.get(item.dep.handler)
        if kind is None or module not in names:
            continue
        if kind == "in" and getattr(module, "groups", 1) > 1:
            continue  # a grouped conv's input columns are not weight[:, index]
        if kind == "bn" and not getattr(module, "affine", False):
            continue
        if any(r is None for r in item.root_idxs):
            continue
        found.append(
            UnitSlice(
                names[module],
                kind,
                torch.tensor(list(item.idxs), dtype=torch.long),
                torch.tensor(list(item.root_idxs), dtype=torch.long),
            )
        )
    return tuple(found)
