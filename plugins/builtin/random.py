"""Random pruning: the same per-layer counts as any other method, units chosen at random.

The sanity baseline every criterion must beat under the same protocol. The choice is drawn from
the run's seeded generator, so the same seed removes the same units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pruning_suite import PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free


class RandomPruning(PruningMethod):
    """A uniformly random score per unit, from the run's seeded generator."""

    name = "random"
    version = "1"
    description = "random filter choice at the protocol's per-layer counts (seeded baseline)"

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """A random permutation of ``0..n-1`` per layer, shape ``[n]`` (so no ties)."""
        import torch

        return {
            layer.name: torch.randperm(layer.num_units, generator=ctx.generator).float()
            for layer in ctx.layers
        }


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [RandomPruning]
