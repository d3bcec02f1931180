"""A torch-pruning pruning group holding one layer's own output rows, for torch-pruning's
importance classes (shared by ``l2norm`` and ``hessian``).

torch-pruning's importance classes (``MagnitudeImportance``, ``HessianImportance``, ...) score a
``Group``: every parameter removed with a unit, found by tracing the model with
``DependencyGraph``. The suite's one-shot criteria score a unit by the layer's own weights
(Li et al. 2017 and OBD score a filter by its own weights), and tracing would run the model
forward with gradients, which the suite counts as method compute (R-STAGE-3). So the group is
built directly, as ``DependencyGraph.get_pruning_group`` builds its root item: one dependency of
the layer on itself, all units as indices, their root indices equal. With
``group_reduction="first"`` and ``normalizer=None`` an importance then returns the layer's own
per-unit score unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["own_rows_group"]


def own_rows_group(module: nn.Module, num_units: int) -> Any:
    """torch-pruning's ``Group`` of all ``num_units`` output units of ``module`` and nothing else.

    Args:
        module: An ``nn.Conv2d`` (weight ``[out, in // groups, kh, kw]``) or ``nn.Linear``
            (``[out, in]``); importances read its ``weight`` (and ``weight.grad``) rows.
        num_units: Its output channels or features.

    Returns:
        A ``torch_pruning.Group`` with one item, ``(module -> module, [0 .. num_units - 1])``,
        its ``root_idxs`` the same indices.
    """
    import torch_pruning as tp
    from torch import nn

    conv = isinstance(module, nn.Conv2d)
    handler = tp.prune_conv_out_channels if conv else tp.prune_linear_out_channels
    node = tp.Node(module, grad_fn=None)
    group = tp.Group()
    units = list(range(num_units))
    group.add_dep(tp.Dependency(handler, handler, source=node, target=node), units)
    group[0].root_idxs = units
    return group
