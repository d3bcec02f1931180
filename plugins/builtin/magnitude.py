"""Magnitude pruning (Han et al., NeurIPS 2015): unstructured, the smallest |w| are zeroed.

The weight-granularity baseline: the score of a weight is its absolute value; the core removes
the ``min(ceil(ratio * n), n - 1)`` lowest-scoring weights of each prunable layer (``n`` its
weight entries) with a mask that is held through retraining (:mod:`pruning_suite.engine.masks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruning_suite import PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free


class Magnitude(PruningMethod):
    """|w| per weight, layer by layer; the lowest are pruned first."""

    name = "magnitude"
    version = "1"
    granularity = "weight"
    description = "magnitude pruning (Han et al., NeurIPS 2015): |w| per weight, unstructured"

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``weight.abs()`` of every prunable layer, of the weight's shape."""
        import torch

        with torch.no_grad():
            return {
                layer.name: layer.module.weight.detach().abs().float().cpu() for layer in ctx.layers
            }


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [Magnitude]
