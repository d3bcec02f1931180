"""Filter pruning via geometric median (FPGM; He, Liu, Wang, Hu and Yang, CVPR 2019).

He et al. prune the filters of a layer that lie closest to the layer's geometric median, as the
most replaceable ones, rather than those of smallest norm. Finding the geometric median is
approximated by its definition restricted to the filters themselves (the paper's Eq. 4-6): the
score of filter ``k`` of a layer with filters ``F_1 .. F_n`` (each flattened to a vector) is

    g(k) = sum_{j=1..n} ||F_k - F_j||_p,        p = 2 (the Euclidean distance of Eq. 3),

and the filters of lowest ``g`` go first (the authors' code, ``similar_sum``; PyTorch's
``torch.ao.pruning`` ``FPGMPruner`` also offers ``p = 1``). Neurons of a Linear layer are scored
the same way, each a row of the weight; biases are not part of a filter.

torch-pruning's ``FPGMImportance`` is not used: it measures distances between the elementwise
magnitudes ``|W|^p`` of the filters rather than between the filters (a filter and its negation are
at distance 0 there), and averages over every layer of the dependency group; the paper's criterion
is computed directly. The core removes the ``min(ceil(ratio * n), n - 1)`` lowest-scoring units
of each prunable layer (the paper prunes each layer at its own rate too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from pruning_suite import MethodConfig, PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free

__all__ = ["FPGM", "FPGMConfig", "register_methods"]


class FPGMConfig(MethodConfig):
    """Options of :class:`FPGM`."""

    distance_norm: Literal[1, 2] = Field(
        2, description="p of the distance ||F_k - F_j||_p; the paper's Euclidean distance is 2"
    )


class FPGM(PruningMethod):
    """Sum of distances from each filter to the layer's other filters; the lowest go first."""

    name = "fpgm"
    version = "1"
    description = (
        "filter pruning via geometric median (He et al., CVPR 2019): filters nearest the GM"
    )
    Config = FPGMConfig

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``g(k) = sum_j ||F_k - F_j||_p`` per unit, shape ``[layer.num_units]``, float32 CPU.

        Distances are computed in float64 (``torch.cdist``) on the weight rows
        ``weight.flatten(1)``, shape ``[n, in // groups * kh * kw]``; the model is only read.
        """
        return {
            layer.name: distance_sums(layer.module.weight, self.config.distance_norm)
            for layer in ctx.layers
        }


def distance_sums(weight: torch.Tensor, p: int = 2) -> torch.Tensor:
    """For each row ``k`` of ``weight.flatten(1)``, the sum of its ``L_p`` distances to every row.

    Args:
        weight: ``[n, ...]``, one unit per leading index.
        p: The norm of the distance (1 or 2).

    Returns:
        ``[n]`` float32 on the CPU.
    """
    import torch

    with torch.no_grad():
        rows = weight.detach().flatten(1).to("cpu", torch.float64)
        exact = "donot_use_mm_for_euclid_dist"  # the matmul shortcut is off by rounding
        return torch.cdist(rows, rows, p=float(p), compute_mode=exact).sum(dim=1).float()


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [FPGM]
