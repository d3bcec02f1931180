"""The pruning stage and the core's application of it.

:class:`PruningStage` is the paper's pruning stage (Wang et al., arXiv 2301.05219, Sec. 3): the
method looks at a copy of the base model and decides what to prune (scores, layer-wise ratios).
Training-aware methods hook in here. :func:`apply_decision` is the core's side: it applies the
decision (physical removal for filter granularity, verified; masks for weight granularity).
"""

from __future__ import annotations

import copy
import hashlib
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..contract.method import PruningContext, PruningMethod
from ..data.datasets import Split
from ..engine.budget import target_ratios
from ..engine.masks import WeightMasks, select_weight_masks
from ..engine.measure import measure, measure_effective, sparsity
from ..engine.meter import ComputeMeter
from ..engine.pruning import apply_structured_pruning, find_prunable_layers, select_removals
from ..errors import PluginError, PruningSuiteError
from ..protocol.spec import ComparisonProtocol, PruningTarget

__all__ = [
    "CalibrationChannel",
    "PruningDecision",
    "PruningOutcome",
    "PruningStage",
    "apply_decision",
    "check_granularity",
    "prune_model",
    "target_reference",
]

CALIBRATION_BATCH_SIZE = 100
"""Examples per calibration batch handed to a method."""


@dataclass(frozen=True)
class PruningDecision:
    """What a method decided in the pruning stage, checked: the core applies it.

    Attributes:
        scores: Layer name -> importance scores as float64 CPU tensors (``[units]`` for filter
            granularity, the weight's shape for weight granularity); lowest pruned first.
        ratios: Layer name -> pruning ratio in [0, 1) (the target's, or the method's own).
    """

    scores: dict[str, torch.Tensor]
    ratios: dict[str, float]


@dataclass(frozen=True)
class PruningOutcome:
    """What :func:`prune_model` did to the model.

    Attributes:
        layers: ``(layer name, units before, units after)`` for every prunable layer, in module
            order; units are filters/neurons (filter granularity) or weights, with ``after`` the
            weights kept (weight granularity).
        masks: The weight masks to hold through retraining (weight granularity), else None.
        removals: Layer name -> the output units removed (filter granularity; numbered as in
            the model the round was applied to), so the surgery can be replayed on another copy.
    """

    layers: list[tuple[str, int, int]]
    masks: WeightMasks | None = None
    removals: dict[str, list[int]] = field(default_factory=dict)


class CalibrationChannel:
    """The only way a method gets data while scoring: seeded training batches, counted.

    ``channel(n)`` yields up to ``n`` batches ``(inputs [B, C, H, W], labels [B])`` of the
    training split in an order seeded by the run's seed (each call starts the same order over);
    :attr:`samples` is the number of examples handed out so far (R-STAGE-3 checks it against the
    protocol's ``pruning_budget.calibration_samples``).
    """

    def __init__(self, split: Split, seed: int, batch_size: int = CALIBRATION_BATCH_SIZE) -> None:
        self.split, self.seed, self.batch_size = split, seed, batch_size
        self.samples = 0

    def __call__(self, n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for inputs, labels in calibration_batches(self.split, self.seed, self.batch_size)(n):
            self.samples += len(labels)
            yield inputs, labels


class PruningStage:
    """The pruning stage of one run: the method decides, on a copy, what to prune.

    Every call into method code goes through :meth:`call` under :attr:`meter`, and all data
    through :attr:`channel`, so the compute the method spends is counted (R-STAGE-3).

    Args:
        method: The configured method; its granularity must be the protocol's.
        protocol: Supplies the prunable-layer patterns.
        target: Supplies the layer-wise pruning ratios (unless the method allocates its own).
        seed: Seeds the method's generator and the calibration batches' order.
    """

    def __init__(
        self, method: PruningMethod, protocol: ComparisonProtocol, target: PruningTarget, seed: int
    ) -> None:
        self.method, self.protocol, self.target, self.seed = method, protocol, target, seed
        self.meter = ComputeMeter()
        self.channel: CalibrationChannel | None = None
        self.stage_epochs = 0  # set by the pruning-stage loop once it knows the budget
        self.steps = 0  # optimizer steps of the pruning-stage loop so far
        self.target_ratios: dict[str, float] | None = None  # resolved on the dense model

    def decide(
        self, model: nn.Module, calibration: Split, round_index: int = 1, epoch: int = 0
    ) -> PruningDecision:
        """Ask the method for scores and layer-wise ratios on a copy of ``model``.

        Args:
            model: The (dense or partly pruned) model, in eval mode on ``calibration``'s device
                (not modified).
            calibration: Training examples the method may look at (``[N, C, H, W]`` inputs).
            round_index: The 1-based prune round being decided.
            epoch: Pruning-stage epochs completed so far.

        Raises:
            PluginError: The method raised, returned malformed scores or ratios, or modified
                the model it was given.
        """
        scored = copy.deepcopy(model)  # the method sees a copy: nothing it does can reach the run
        ctx = self.context(scored, calibration, round_index, epoch)
        before = model_fingerprint(scored)
        scores = _checked_scores(self.method, self.call("score", ctx))
        ratios = _checked_ratios(self.method, self.call("layer_ratios", ctx))
        if model_fingerprint(scored) != before:
            raise PluginError(
                f"plugin {self.method.name!r} modified the model while scoring (weights, buffers, modules or hooks)",
                "a method returns scores; the core applies pruning. Work on a copy (copy.deepcopy) if you must",
            )
        return PruningDecision(scores, ratios)

    def context(
        self, model: nn.Module, calibration: Split, round_index: int = 1, epoch: int = 0
    ) -> PruningContext:
        """The :class:`PruningContext` the method sees for ``model``."""
        layers = find_prunable_layers(model, self.protocol.prunable_layers)
        if self.channel is None or self.channel.split is not calibration:
            self.channel = CalibrationChannel(calibration, self.seed)
        example = calibration.batch(slice(0, 2))
        if self.target_ratios is None:  # the first context sees the dense model
            self.target_ratios = target_ratios(
                self.target,
                model,
                layers,
                self.protocol.granularity,
                self.protocol.dataset.input_shape,
                example,
            )
        return PruningContext(
            model=model,
            layers=layers,
            ratios=self.target_ratios,
            seed=self.seed,
            generator=torch.Generator().manual_seed(self.seed),
            device=calibration.device,
            calibration_batches=self.channel,
            round_index=round_index,
            epoch=epoch,
            example=example,
            stage_epochs=self.stage_epochs,
        )

    def call(self, step: str, *args: Any) -> Any:
        """Call the method's ``step`` under the compute meter; its errors become PluginError."""
        with self.meter.watch():
            return _call_plugin(self.method, step, *args)

    @property
    def calibration_samples(self) -> int:
        """Examples handed to the method through ``ctx.calibration_batches`` so far."""
        return 0 if self.channel is None else self.channel.samples


def apply_decision(
    model: nn.Module,
    decision: PruningDecision,
    protocol: ComparisonProtocol,
    example: torch.Tensor,
) -> PruningOutcome:
    """Apply a method's decision to ``model`` (the core mutates, never the plugin).

    Filter granularity removes the chosen filters physically (verified against the masked
    reference); weight granularity zeroes the chosen weights with masks that the caller must hold
    through retraining (:class:`~pruning_suite.engine.masks.WeightMasks`).

    Args:
        model: The dense model; pruned in place.
        decision: The checked scores and ratios.
        protocol: Supplies the granularity and the prunable-layer patterns.
        example: A few input examples ``[B, C, H, W]`` on the model's device.

    Raises:
        PruningError: The request cannot be applied (empties a layer, touches the output layer).
    """
    layers = find_prunable_layers(model, protocol.prunable_layers)
    if protocol.granularity == "weight":
        masks = WeightMasks(select_weight_masks(decision.scores, decision.ratios, layers))
        masks.apply(model)
        kept = masks.masks
        widths = [(la.name, kept[la.name].numel(), int(kept[la.name].sum())) for la in layers]
        return PruningOutcome(widths, masks)
    removals = select_removals(decision.scores, decision.ratios, layers)
    apply_structured_pruning(model, removals, example)
    return PruningOutcome(
        [
            (layer.name, layer.num_units, _width(model.get_submodule(layer.name)))
            for layer in layers
        ],
        removals=removals,
    )


def prune_model(
    model: nn.Module,
    method: PruningMethod,
    protocol: ComparisonProtocol,
    target: PruningTarget,
    seed: int,
    calibration: Split,
) -> PruningOutcome:
    """Ask the method what to prune, then apply it: :class:`PruningStage` + :func:`apply_decision`.

    Args:
        model: The dense model, on ``calibration``'s device; pruned in place.
        method: The plugin's method instance; its granularity must be the protocol's.
        protocol: Supplies the granularity and the prunable-layer patterns.
        target: Supplies the layer-wise pruning ratios (unless the method allocates its own).
        seed: Seeds the method's generator and the calibration batches' order.
        calibration: Training examples the method may look at (``[N, C, H, W]`` inputs).

    Returns:
        The per-layer widths (or weight counts) before and after, and the masks if any.

    Raises:
        PluginError: The method raised, returned malformed scores, modified the model, or prunes
            at another granularity than the protocol's.
        PruningError: The request cannot be applied (empties a layer, touches the output layer).
    """
    check_granularity(method, protocol)
    model.eval()
    decision = PruningStage(method, protocol, target, seed).decide(model, calibration)
    return apply_decision(model, decision, protocol, calibration.batch(slice(0, 2)))


def check_granularity(method: PruningMethod, protocol: ComparisonProtocol) -> None:
    """Refuse a method whose granularity is not the protocol's, before any training is spent.

    Raises:
        PluginError: The granularities differ; the hint names methods of the right kind.
    """
    if method.granularity != protocol.granularity:
        kind = {"filter": "filter (structured)", "weight": "weight (unstructured)"}
        raise PluginError(
            f"plugin {method.name!r} prunes at {kind[method.granularity]} granularity, but "
            f"protocol {protocol.id!r} is {kind[protocol.granularity]}",
            "pick a protocol of the method's granularity (`pruning-suite protocols`) or a method "
            "of the protocol's (`pruning-suite plugins` lists each method's granularity)",
        )


def target_reference(
    model: nn.Module, protocol: ComparisonProtocol, target: PruningTarget, example: torch.Tensor
) -> dict[str, float]:
    """The sparsity and speedup the target's own layer ratios give (the reference of R-TARGET-1).

    A copy of the dense model is pruned at exactly the target's ratios under the one count rule
    (which units go does not change the counts, so the lowest indices are taken) and measured
    like a run. Effective figures for weight granularity. A budget target (``speedup`` only) is
    pruned at the uniform ratio that first reaches its speedup
    (:func:`~pruning_suite.engine.budget.target_ratios`); R-TARGET-1 then requires only the
    speedup, and these figures are recorded for comparison.

    Args:
        model: The dense model (not modified).
        protocol: Supplies granularity, prunable layers and input shape.
        target: The target.
        example: A few input examples ``[B, C, H, W]`` on the model's device.

    Returns:
        ``{"sparsity": fraction, "speedup": dense MACs / pruned (effective) MACs}``.
    """
    reference = copy.deepcopy(model).eval()
    layers = find_prunable_layers(reference, protocol.prunable_layers)
    input_shape = protocol.dataset.input_shape
    ratios = target_ratios(target, reference, layers, protocol.granularity, input_shape, example)
    dense = measure(reference, input_shape)
    weight = protocol.granularity == "weight"
    if weight:
        scores = {layer.name: torch.zeros_like(layer.module.weight) for layer in layers}
    else:
        scores = {layer.name: torch.zeros(layer.num_units) for layer in layers}
    apply_decision(reference, PruningDecision(scores, ratios), protocol, example)
    pruned, effective = measure(reference, input_shape), measure_effective(reference, input_shape)
    macs = effective.macs if weight else pruned.macs
    return {
        "sparsity": sparsity(protocol.granularity, dense.params, pruned.params, effective.params),
        "speedup": dense.macs / macs,
    }


def calibration_batches(
    split: Split, seed: int, batch_size: int = CALIBRATION_BATCH_SIZE
) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """``batches(n)``: up to ``n`` batches ``(inputs, labels)`` of ``split`` in a seeded order."""

    def batches(n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(
            split.device
        )
        for i in range(min(n, (len(split) + batch_size - 1) // batch_size)):
            idx = order[i * batch_size : (i + 1) * batch_size]
            yield split.batch(idx), split.labels[idx]

    return batches


def model_fingerprint(model: nn.Module) -> str:
    """Hash of the weights, buffers, module structure, hyper-parameters and hooks of ``model``."""
    digest = hashlib.sha256(repr(model).encode())
    for module in model.modules():
        hooks = (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks)
        extra = (module.training, getattr(module, "momentum", None), tuple(len(h) for h in hooks))
        digest.update(repr(extra).encode())
    for param in model.parameters():
        digest.update(repr(param.requires_grad).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _checked_scores(method: PruningMethod, scores: Any) -> dict[str, torch.Tensor]:
    """The method's scores as float64 CPU tensors, or a PluginError naming what is wrong."""
    if not isinstance(scores, Mapping):
        raise PluginError(
            f"plugin {method.name!r}: score() returned {type(scores).__name__}",
            "return a dict mapping each prunable layer's name to a 1-D tensor of scores",
        )
    checked = {}
    for name, value in scores.items():
        try:
            checked[name] = torch.as_tensor(value).detach().to("cpu", torch.float64)
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as err:
            raise PluginError(
                f"plugin {method.name!r}: scores for layer {name!r} are not a real-valued tensor "
                f"on a device the CPU can read ({type(value).__name__}): {err}",
                "return a 1-D float tensor per layer",
            ) from err
    return checked


def _checked_ratios(method: PruningMethod, ratios: Any) -> dict[str, float]:
    """The method's layer-wise ratios as floats, or a PluginError naming what is wrong."""
    if not isinstance(ratios, Mapping):
        raise PluginError(
            f"plugin {method.name!r}: layer_ratios() returned {type(ratios).__name__}",
            "return a dict mapping layer names to pruning ratios in [0, 1)",
        )
    for name, value in ratios.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise PluginError(
                f"plugin {method.name!r}: ratio for layer {name!r} is {value!r}, not a number",
                "return a dict mapping layer names to pruning ratios in [0, 1)",
            )
    return {name: float(value) for name, value in ratios.items()}


def _width(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _call_plugin(method: PruningMethod, step: str, *args: Any) -> Any:
    try:
        return getattr(method, step)(*args)
    except PruningSuiteError:
        raise
    except (Exception, SystemExit) as err:
        raise PluginError(
            f"plugin {method.name!r} raised {type(err).__name__} in {step}(): {err}",
            f"this is a bug in the plugin {method.name!r}; rerun with --debug for its traceback",
        ) from err
