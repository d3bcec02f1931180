"""L1-norm filter pruning (Li et al., ICLR 2017), as Wang et al. (arXiv 2301.05219) implement it.

The score of a filter (or neuron) is the mean absolute value of its weights; the core removes the
``min(ceil(ratio * n), n - 1)`` lowest-scoring units of each prunable layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruning_suite import PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free


class L1Norm(PruningMethod):
    """Mean |w| per output unit; the lowest are pruned first."""

    name = "l1norm"
    version = "1"
    description = "L1-norm filter pruning (Li et al., ICLR 2017): mean |w| per filter"

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """Mean |w| over each unit's weights: ``weight.abs().flatten(1).mean(1)``, shape ``[n]``."""
        import torch

        with torch.no_grad():
            return {
                layer.name: layer.module.weight.detach().abs().flatten(1).mean(dim=1).float().cpu()
                for layer in ctx.layers
            }


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [L1Norm]
