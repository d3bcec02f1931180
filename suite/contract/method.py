"""The pruning-method contract: what a plugin implements (the paper's "pruning stage").

A method decides WHAT to prune; the core applies it, measures it, retrains and evaluates. Following
Wang et al. (arXiv 2301.05219, Sec. 3) a method may earn credit only for its pruning criterion,
its layer-wise ratio scheme and its schedule, so the contract has exactly those seams:

- :meth:`PruningMethod.score` (required): one importance score per output unit (filter of a conv,
  neuron of a Linear) of every prunable layer for ``granularity = "filter"``, or per weight for
  ``granularity = "weight"`` (unstructured); the lowest scores are removed first;
- :meth:`PruningMethod.layer_ratios` (optional): the method's own layer-wise pruning ratios; by
  default the protocol target's ratios are used unchanged.

Methods must not mutate the model they are given; the core checks this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["MethodConfig", "PrunableLayer", "PruningContext", "PruningMethod"]

Granularity = Literal["filter", "weight"]
"""``filter``: structured, whole filters / neurons removed physically; ``weight``: unstructured,
individual weights zeroed by masks held through retraining."""


class MethodConfig(BaseModel):
    """Base of every method's configuration: frozen, unknown keys are errors.

    Subclass it to give a method options; the values land in the submission and the run id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class PrunableLayer:
    """One layer the protocol allows to be pruned.

    Attributes:
        name: Module name in the model (``model.get_submodule(name)``).
        module: The ``nn.Conv2d`` or ``nn.Linear``; its weight has shape
            ``[out_channels, in_channels // groups, kh, kw]`` or ``[out_features, in_features]``.
        num_units: Output channels (filters) or output features (neurons).
    """

    name: str
    module: nn.Module
    num_units: int


@dataclass(frozen=True)
class PruningContext:
    """Everything a method may look at while deciding what to prune.

    Attributes:
        model: The trained dense base model, in eval mode. Do not modify it.
        layers: The prunable layers, in module order.
        ratios: The protocol target's pruning ratio per layer name (fraction of units removed).
        seed: The run's seed; use ``generator`` for any randomness.
        generator: A ``torch.Generator`` on the CPU seeded with ``seed``.
        device: Where the model and data live.
        calibration_batches: ``calibration_batches(n)`` yields up to ``n`` training batches
            ``(inputs [B, C, H, W] float32, labels [B] int64)`` on ``device``, for data-driven
            criteria. Never the validation or test split.
    """

    model: nn.Module
    layers: tuple[PrunableLayer, ...]
    ratios: Mapping[str, float]
    seed: int
    generator: torch.Generator
    device: torch.device
    calibration_batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]] = field(
        repr=False
    )


class PruningMethod(ABC):
    """Base class of every pruning method, built-in or third-party.

    Class attributes:
        name: The method's name; equal to its entry-point name and to ``--plugin``.
        version: Bump it whenever a change can move a number; it lands in every submission.
        granularity: ``"filter"`` (structured: whole filters / neurons are removed) or
            ``"weight"`` (unstructured: individual weights are masked to zero); it must equal the
            protocol's granularity.
        description: One line for ``pruning-suite plugins``.
        Config: The pydantic model of the method's options (default: no options).
        from_scratch: True for a scratch baseline: the core re-initializes the pruned
            architecture (PyTorch's default init) and trains it from scratch under the SX-A / SX-B
            budget its config names (``setup``), instead of retraining (Wang et al., arXiv 2301.05219, Table 2).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    granularity: ClassVar[Granularity] = "filter"
    from_scratch: ClassVar[bool] = False
    description: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, config: MethodConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """Importance of every output unit of every prunable layer.

        Args:
            ctx: The pruning context.

        Returns:
            For each ``layer.name`` in ``ctx.layers``: for filter granularity a 1-D float tensor
            of shape ``[layer.num_units]``; for weight granularity a float tensor of the layer's
            weight shape (``[out, in // groups, kh, kw]`` or ``[out, in]``). Lower means pruned
            first. Ties are broken by the core (lowest index removed first), never by the method.
        """

    def layer_ratios(self, ctx: PruningContext) -> Mapping[str, float]:
        """Layer-wise pruning ratios; the default is the protocol target's (``ctx.ratios``).

        Returns:
            A ratio in [0, 1) for each layer name; the core turns it into a count with
            ``min(ceil(ratio * n), n - 1)``, ``n`` the layer's units (filter granularity) or
            weights (weight granularity).
        """
        return ctx.ratios
