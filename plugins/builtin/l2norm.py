"""L2-norm filter pruning: the L2 variant of the L1-norm criterion of Li et al. (ICLR 2017).

Li, Kadav, Durdanovic, Samet and Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017, rank
a layer's filters by the L1 norm of their weights (``l1norm``); the L2 norm
``||W_k||_2 = sqrt(sum_j W_k[j] ** 2)`` of filter (or neuron) ``k`` is the norm of soft filter
pruning (He et al., IJCAI 2018) and torch-pruning's default magnitude criterion,
``MagnitudeImportance(p=2)``. The score is computed by that class on the layer's own rows
(``group_reduction="first"``, ``normalizer=None``: ``sum_j W_k[j] ** 2``) and square-rooted,
which keeps the order. The core removes the ``min(ceil(ratio * n), n - 1)`` lowest-scoring units
of each prunable layer. The criterion has no options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruning_suite import PruningContext, PruningMethod, hookimpl

from ._layer_group import own_rows_group

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free

__all__ = ["L2Norm", "register_methods"]


class L2Norm(PruningMethod):
    """The L2 norm of each unit's weights; the lowest are pruned first."""

    name = "l2norm"
    version = "1"
    description = "L2-norm filter pruning (Li et al., ICLR 2017, L2 variant): ||w||_2 per filter"

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``||weight[k]||_2`` of every unit ``k``, shape ``[layer.num_units]``, float32 on the CPU.

        Computed by torch-pruning's ``MagnitudeImportance(p=2)`` (sum of squares per unit) and
        square-rooted; the model is only read.
        """
        import torch
        import torch_pruning as tp

        importance = tp.importance.MagnitudeImportance(
            p=2, group_reduction="first", normalizer=None
        )
        with torch.no_grad():
            return {
                layer.name: importance(own_rows_group(layer.module, layer.num_units))
                .sqrt()
                .float()
                .cpu()
                for layer in ctx.layers
            }


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [L2Norm]
