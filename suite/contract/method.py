"""The pruning-method contract: what a plugin implements (the paper's "pruning stage").

A method decides WHAT to prune; the core applies it, measures it, retrains and evaluates. Following
Wang et al. (arXiv 2301.05219, Sec. 3) a method may earn credit only for its pruning criterion,
its layer-wise ratio scheme and its schedule, so the contract has exactly those seams:

- :meth:`PruningMethod.score` (required): one importance score per output unit (filter of a conv,
  neuron of a Linear) of every prunable layer for ``granularity = "filter"``, or per weight for
  ``granularity = "weight"`` (unstructured); the lowest scores are removed first;
- :meth:`PruningMethod.layer_ratios` (optional): the method's own layer-wise pruning ratios; by
  default the protocol target's ratios are used unchanged;
- :meth:`PruningMethod.allocation` (optional): layer-wise (the default) or global ranking of the
  scores across layers, with a per-layer maximum ratio; the core allocates
  (:mod:`pruning_suite.engine.allocation`);
- :meth:`PruningMethod.schedule` (optional): one-shot (the default) or ``rounds`` prune steps with a
  linear or geometric ratio schedule, and whether the method trains in the pruning stage;
- :meth:`PruningMethod.regularize` and :meth:`PruningMethod.on_pruning_epoch_end` (optional): the
  hooks of a training-aware method into the pruning-stage training loop, which the SUITE runs with
  the protocol's ``pruning_budget`` (epochs, LR schedule), so its data and compute are counted and
  certified (setups S4.1 / S4.2, rules R-STAGE-1..3).

Methods are handed data only by the suite (``ctx.calibration_batches`` and the pruning-stage
loop); both are counted in samples seen. The method's process holds the training split alone, but
it can reach all of it, and open the dataset's files (README, "Method code runs isolated").
Methods must not mutate the model they are given to score; the core checks this.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "Allocation",
    "MethodConfig",
    "PrunableLayer",
    "PruningContext",
    "PruningMethod",
    "PruningSchedule",
]

Granularity = Literal["filter", "weight"]
"""``filter``: structured, whole filters / neurons removed physically; ``weight``: unstructured,
individual weights zeroed by masks held through retraining."""


class MethodConfig(BaseModel):
    """Base of every method's configuration: frozen, unknown keys are errors.

    Subclass it to give a method options; the values land in the submission and the run id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class PruningSchedule(BaseModel):
    """When the core prunes, and whether the method trains in the pruning stage.

    The pruning stage lasts ``E`` epochs, the protocol's ``pruning_budget.epochs``, for every
    method alike (so one-shot and training-aware methods spend the same budget). The core prunes in ``rounds`` steps; round ``i`` (1-based) happens after
    epoch ``ceil(i * E / rounds)`` of the stage (all rounds back to back when ``E = 0``), so the
    last round ends the stage. Round ``i`` removes units until the layer has lost the cumulative
    ratio ``r_i`` of its original units (weights, for weight granularity), ``r`` being the final
    ratio: ``r * i / rounds`` (``linear``) or ``1 - (1 - r) ** (i / rounds)`` (``geometric``,
    the same fraction of what is left each round, as in iterative magnitude pruning, Frankle &
    Carbin, ICLR 2019). The last round always lands on ``r``, under the one count rule.

    Attributes:
        rounds: Prune steps, ``1`` = one-shot.
        ratio_schedule: ``"linear"`` or ``"geometric"`` cumulative ratios.
        trains: The method needs the pruning stage's training (its regularizer): a protocol
            without a pruning budget is refused before any training. The hooks
            :meth:`PruningMethod.regularize` and :meth:`PruningMethod.on_pruning_epoch_end` are
            called for every method whenever the stage trains.
        rewind: After each round but the last, reset the surviving weights to the values they had
            when the pruning stage started (lottery-ticket rewinding; Frankle & Carbin 2019).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rounds: int = Field(1, ge=1, le=100)
    ratio_schedule: Literal["linear", "geometric"] = "linear"
    trains: bool = False
    rewind: bool = False

    def cumulative_ratio(self, final_ratio: float, round_index: int) -> float:
        """``r_i`` of 1-based ``round_index`` for the final ratio ``final_ratio`` (a fraction)."""
        if round_index >= self.rounds:
            return final_ratio
        fraction = round_index / self.rounds
        if self.ratio_schedule == "linear":
            return final_ratio * fraction
        return 1.0 - (1.0 - final_ratio) ** fraction

    def round_epochs(self, epochs: int) -> list[int]:
        """The stage epoch after which each round happens (``0`` = before any training)."""
        return [-(-i * epochs // self.rounds) for i in range(1, self.rounds + 1)]


class Allocation(BaseModel):
    """How the core turns a method's scores into per-layer counts.

    ``layer`` (the default): every layer loses its own ratio's count of its lowest-scoring units.
    ``global``: the scores of all prunable layers, each layer's first normalized by
    ``normalizer``, are ranked together and the lowest ``n`` units go, ``n`` being what the
    target removes in total (or what reaches a budget target), as torch-pruning's global pruning
    does (``MetaPruner(global_pruning=True)``, Fang et al., CVPR 2023); no layer loses more
    than ``max_layer_ratio`` of its units (protection), and every layer keeps one.

    Attributes:
        scope: ``"layer"`` or ``"global"``.
        normalizer: Per-layer score normalization before global ranking: ``none``, ``mean``
            (divide by the layer's mean), ``max``, ``sum`` or ``l2`` (divide by the L2 norm);
            LAMP scores (Lee et al., ICLR 2021) are comparable across layers already: ``none``.
        max_layer_ratio: The largest fraction of any layer's units global ranking may remove.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Literal["layer", "global"] = "layer"
    normalizer: Literal["none", "mean", "max", "sum", "l2"] = "none"
    max_layer_ratio: float = Field(0.95, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _normalizer_needs_global(self) -> Allocation:
        if self.scope == "layer" and self.normalizer != "none":
            raise ValueError("a normalizer only matters for global allocation (scope='global')")
        return self


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
            criteria. Never the validation or test split. Every example handed out is counted
            (``pruning_stage.calibration_samples`` of the submission, checked against the
            protocol's ``pruning_budget.calibration_samples`` by R-STAGE-3).
        round_index: The prune round being decided, 1-based (always 1 for one-shot methods).
        epoch: Pruning-stage epochs completed so far (0 before any training).
        example: Two training examples ``[2, C, H, W]`` on ``device`` for tracing the model
            (e.g. torch-pruning's ``DependencyGraph``); not counted as calibration data.
        step: Optimizer steps of the pruning stage taken so far (in :meth:`PruningMethod.regularize`).
        stage_epochs: Epochs the pruning stage trains in all (0 for a one-shot stage).
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
    round_index: int = 1
    epoch: int = 0
    example: torch.Tensor | None = field(default=None, repr=False)
    step: int = 0
    stage_epochs: int = 0


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

    def allocation(self) -> Allocation:
        """How the core allocates the pruning across layers; layer-wise by default."""
        return Allocation()

    def schedule(self) -> PruningSchedule:
        """When the core prunes and whether the method trains first; one-shot by default."""
        return PruningSchedule()

    def code_delegates(self) -> tuple[type[PruningMethod], ...]:
        """Other method classes whose code decides this method's result (e.g. the scratch
        baseline's ``arch_from``): their code is part of the run's code digest
        (:func:`pruning_suite.contract.codedigest.method_code_sha256`). None by default."""
        return ()

    def regularize(self, ctx: PruningContext, model: nn.Module) -> None:  # noqa: B027 -- optional hook
        """Pruning-stage hook, after ``loss.backward()`` and before ``optimizer.step()``.

        Called on every step of the suite's pruning-stage loop when ``schedule().trains``; add
        the regularizer's gradient to ``param.grad`` in place (e.g. ``lam * sign(gamma)`` on
        BatchNorm scales for network slimming). Changing a parameter's VALUE is refused: the
        optimizer step is the suite's.

        Args:
            ctx: The pruning context (``ctx.model`` is the model being trained, ``ctx.epoch``).
            model: The model being trained, in train mode; its grads are set.
        """

    def on_pruning_epoch_end(self, ctx: PruningContext, model: nn.Module) -> None:  # noqa: B027
        """Pruning-stage hook after each training epoch (e.g. grow a penalty, GReg).

        Args:
            ctx: The pruning context; ``ctx.epoch`` is the number of epochs completed.
            model: The model being trained. Read it; do not modify it.
        """
