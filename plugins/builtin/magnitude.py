"""Magnitude pruning (Han et al., NeurIPS 2015): unstructured, the smallest |w| are zeroed.

The weight-granularity baseline: the score of a weight is its absolute value. With
``allocation = "layer"`` (the default, Han et al.'s per-layer thresholds) the core removes the
``min(ceil(ratio * n), n - 1)`` lowest-scoring weights of each prunable layer (``n`` its weight
entries); with ``"global"`` it ranks the raw ``|w|`` of all prunable layers together and removes
as many weights in all as the layer-wise target would (global magnitude pruning, the baseline of
Frankle & Carbin, ICLR 2019, and of Lee et al.'s LAMP, ICLR 2021), no layer losing more than
``max_layer_ratio`` of its weights (:mod:`pruning_suite.engine.allocation`). Either way the mask
is held through retraining (:mod:`pruning_suite.engine.masks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from pruning_suite import Allocation, MethodConfig, PruningContext, PruningMethod, hookimpl

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free

__all__ = ["Magnitude", "MagnitudeConfig", "register_methods"]


class MagnitudeConfig(MethodConfig):
    """Options of :class:`Magnitude`.

    The defaults are left out of the serialized config, so runs at the defaults keep the run
    ids they had before these options existed (the run id hashes the config).
    """

    allocation: Literal["layer", "global"] = Field(
        "layer",
        description="'layer': the target's ratio per layer (Han et al.); 'global': one "
        "ranking of |w| across layers",
    )
    max_layer_ratio: float = Field(
        0.95,
        gt=0.0,
        lt=1.0,
        description="global only: the largest fraction of a layer's "
        "weights the ranking may remove (the suite's default protection)",
    )

    @model_validator(mode="after")
    def _cap_needs_global(self) -> MagnitudeConfig:
        if self.allocation == "layer" and self.max_layer_ratio != 0.95:
            raise ValueError("max_layer_ratio only matters with allocation='global'")
        return self

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        defaults = type(self)()
        return {key: value for key, value in data.items() if value != getattr(defaults, key)}


class Magnitude(PruningMethod):
    """|w| per weight, ranked per layer or across layers; the lowest are pruned first."""

    name = "magnitude"
    version = "1"
    granularity = "weight"
    description = "magnitude pruning (Han et al., NeurIPS 2015): |w| per weight, unstructured"
    Config = MagnitudeConfig

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """``weight.abs()`` of every prunable layer, of the weight's shape."""
        import torch

        with torch.no_grad():
            return {
                layer.name: layer.module.weight.detach().abs().float().cpu() for layer in ctx.layers
            }

    def allocation(self) -> Allocation:
        """Layer-wise, or a global ranking of raw ``|w|`` (no normalizer) when configured."""
        if self.config.allocation == "layer":
            return Allocation()
        return Allocation(
            scope="global", normalizer="none", max_layer_ratio=self.config.max_layer_ratio
        )


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [Magnitude]
