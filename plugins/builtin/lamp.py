"""Layer-adaptive magnitude-based pruning (LAMP; Lee, Park, Mo, Ahn and Shin, ICLR 2021).

Unstructured. Within a layer, index the weights so that ``|W[u]| <= |W[v]|`` whenever ``u < v``
(ascending magnitude); the LAMP score of weight ``u`` is (the paper's Eq. 2)

    score(u) = W[u] ** 2 / sum_{v >= u} W[v] ** 2,

its squared magnitude over the squared magnitudes of itself and every larger weight of the layer.
Scores lie in ``(0, 1]``, the largest weight of a layer scores exactly 1, and within a layer they
keep the magnitude order, so LAMP prunes each layer by magnitude; what it changes is how much each
layer loses: the scores of all layers are ranked together and the lowest go, which the paper shows
needs no further normalization (``Allocation(scope="global", normalizer="none")``; the core
allocates, :mod:`pruning_suite.engine.allocation`). Equal magnitudes are ordered by position
(stable sort), the lower index first, so it scores lower, as the core's tie rule removes it first.

torch-pruning's ``LAMPImportance`` scores structured groups (the LAMP normalization of per-filter
group norms); the per-weight score of the paper is computed directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import Field

from pruning_suite import Allocation, MethodConfig, PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free

__all__ = ["LAMP", "LAMPConfig", "lamp_scores", "register_methods"]


class LAMPConfig(MethodConfig):
    """Options of :class:`LAMP`."""

    max_layer_ratio: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="the largest fraction of a layer's weights the global ranking may remove; "
        "LAMP itself caps nothing (its top weight per layer always survives), 0.95 is the "
        "suite's default protection",
    )


class LAMP(PruningMethod):
    """LAMP scores per weight, ranked across layers; the lowest are pruned first."""

    name = "lamp"
    version = "1"
    granularity = "weight"
    description = "LAMP (Lee et al., ICLR 2021): w^2 / sum of larger w^2, ranked globally"
    Config = LAMPConfig

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """The LAMP score of every weight of every prunable layer, of the weight's shape
        (float64 on the CPU)."""
        return {layer.name: lamp_scores(layer.module.weight) for layer in ctx.layers}

    def allocation(self) -> Allocation:
        """Global ranking of the raw LAMP scores, capped at ``max_layer_ratio`` per layer."""
        return Allocation(
            scope="global", normalizer="none", max_layer_ratio=self.config.max_layer_ratio
        )


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """``W[u]**2 / sum_{v >= u} W[v]**2`` in ascending-magnitude order (ties by position).

    Args:
        weight: Any shape; read only.

    Returns:
        float64 on the CPU, of ``weight``'s shape, in ``[0, 1]``; a zero weight with only zero
        weights at or above it in the order (a zero tail sum) scores 0.
    """
    import torch

    with torch.no_grad():
        squares = weight.detach().to("cpu", torch.float64).flatten() ** 2
        ordered, order = torch.sort(squares, stable=True)
        tail = ordered.flip(0).cumsum(0).flip(0)  # sum_{v >= u} W[v]**2
        ratios = torch.where(tail > 0, ordered / tail.clamp_min(torch.finfo(tail.dtype).tiny), 0.0)
        scores = torch.empty_like(squares)
        scores[order] = ratios
        return scores.view(weight.shape)


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [LAMP]
