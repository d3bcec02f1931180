"""``pruning-suite prune``: what a method would remove, measured, without any training.

Lets a user check a configuration (achieved widths, params, MACs, FLOPs, sparsity, speedup)
before spending GPU hours. The method scores the protocol's cached base model when there is one,
else a seeded random initialization (scores of an untrained model, so widths are exact but which
units go is not what a real run would pick). One prune step with the method's allocation
(layer-wise or global, :mod:`pruning_suite.engine.allocation`; a budget target resolved by
:mod:`pruning_suite.engine.budget`), then a one-line warning when the result would miss
R-TARGET-1, so setup S1 would not be certified.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..contract.method import Allocation, PruningMethod
from ..contract.plugins import PluginRegistry, load_registry
from ..data.datasets import Split, load_dataset
from ..engine.allocation import allocate
from ..engine.budget import budget_ratios, target_ratios
from ..engine.measure import Counts, measure, measure_effective, sparsity
from ..engine.models import build_model
from ..engine.pruning import find_prunable_layers
from ..errors import DatasetError, PluginError
from ..protocol.spec import ComparisonProtocol, PruningTarget, list_protocols, load_protocol
from ..rules.targets import TargetMiss, target_misses
from .basecache import load_cached_base_model
from .config import cpu_threads_in_force
from .prune import (
    PruningDecision,
    PruningStage,
    apply_decision,
    check_granularity,
    target_reference,
)

__all__ = ["PrunePreview", "preview_pruning"]

SYNTHETIC_EXAMPLES = 256


@dataclass(frozen=True)
class PrunePreview:
    """The outcome of pruning without retraining.

    Attributes:
        protocol: The protocol.
        target: Target id used.
        method: Method name.
        weights: ``"cached base model <sha256 prefix>"`` or ``"random init (seed N)"``.
        calibration: ``"training split"`` or ``"synthetic N(0, 1) inputs"`` (data unavailable).
        layers: ``(name, width before, width after, target ratio)`` per prunable layer.
        dense: Params / MACs / FLOPs of the dense model (per example at the protocol's input size).
        pruned: The same after pruning (tensor shapes: for weight granularity equal to ``dense``).
        effective: The same counting only non-zero weights (what weight granularity removes).
        allocation: ``"layer"`` or ``"global"`` (the method's).
        warning: One line when the result would miss R-TARGET-1 (not certified S1), else None.
    """

    protocol: ComparisonProtocol
    target: str
    method: str
    weights: str
    calibration: str
    layers: list[tuple[str, int, int, float]]
    dense: Counts
    pruned: Counts
    effective: Counts
    allocation: str = "layer"
    warning: str | None = None

    @property
    def sparsity(self) -> float:
        """Removed fraction of parameters (:func:`pruning_suite.engine.measure.sparsity`)."""
        return sparsity(
            self.protocol.granularity, self.dense.params, self.pruned.params, self.effective.params
        )

    @property
    def effective_speedup(self) -> float:
        """Dense MACs / MACs with a non-zero weight."""
        return self.dense.macs / self.effective.macs

    @property
    def speedup(self) -> float:
        """Dense MACs / pruned MACs."""
        return self.dense.macs / self.pruned.macs

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--json``)."""
        return {
            "protocol": {"id": self.protocol.id, "version": self.protocol.version},
            "target": self.target,
            "method": self.method,
            "weights": self.weights,
            "calibration": self.calibration,
            "layers": [
                {
                    "name": n,
                    "before": b,
                    "after": a,
                    "target_ratio": r,
                    "achieved_ratio": (b - a) / b,
                }
                for n, b, a, r in self.layers
            ],
            "params_dense": self.dense.params,
            "params_pruned": self.pruned.params,
            "macs_dense": self.dense.macs,
            "macs_pruned": self.pruned.macs,
            "flops_dense": self.dense.flops,
            "flops_pruned": self.pruned.flops,
            "granularity": self.protocol.granularity,
            "params_nonzero": self.effective.params,
            "macs_effective": self.effective.macs,
            "flops_effective": self.effective.flops,
            "sparsity": self.sparsity,
            "speedup": self.speedup,
            "effective_speedup": self.effective_speedup,
            "allocation": self.allocation,
            "warning": self.warning,
        }


def preview_pruning(
    protocol_id: str | None,
    plugin: str,
    target_id: str | None = None,
    seed: int = 0,
    method_config: dict[str, Any] | None = None,
    data_dir: Any = None,
    registry: PluginRegistry | None = None,
) -> PrunePreview:
    """Prune the protocol's architecture with ``plugin`` on the CPU and measure it; no training.

    Raises:
        PruningSuiteError: Unknown protocol, target or plugin; a misbehaving plugin; a request
            that cannot be applied.
    """
    protocol = load_protocol(protocol_id)
    target = protocol.target(target_id)
    method = (registry or load_registry()).method(plugin, method_config or {})
    torch.manual_seed(seed)
    model = build_model(
        protocol.architecture, protocol.dataset.input_shape, protocol.dataset.num_classes
    )
    calibration, source, data_sha256 = _calibration_split(protocol, data_dir, seed)
    with cpu_threads_in_force(torch.device("cpu")):  # the threads a run's base model has in its key
        cached = load_cached_base_model(model, protocol, data_sha256)
    weights = (
        f"cached base model {cached.checkpoint_sha256[:12]}"
        if cached
        else f"random init (seed {seed})"
    )
    shape = protocol.dataset.input_shape
    dense, example = measure(model, shape), calibration.batch(slice(0, 2))
    allocation, base, ratios, scores = _decide(model, method, protocol, target, seed, calibration)
    who = _who(allocation, ratios, base)
    reference = None  # the target's own ratios meet R-TARGET-1 by construction
    if who is not None and not target.is_budget:
        reference = target_reference(model, protocol, target, example)
    outcome = apply_decision(model, PruningDecision(scores, ratios), protocol, example)
    layers = [(name, before, after, base[name]) for name, before, after in outcome.layers]
    pruned, effective = measure(model, shape), measure_effective(model, shape)
    preview = PrunePreview(
        protocol, target.id, method.name, weights, source, layers, dense, pruned, effective,
        allocation.scope,
    )  # fmt: skip
    if who is None:
        return preview
    return replace(preview, warning=target_warning(preview, target, reference, who))


def _decide(
    model: nn.Module,
    method: PruningMethod,
    protocol: ComparisonProtocol,
    target: PruningTarget,
    seed: int,
    calibration: Split,
) -> tuple[Allocation, dict[str, float], dict[str, float], dict]:
    """One prune step as a run's pruning stage decides it: the method's allocation, the target's
    layer ratios (a budget target's: the uniform ratio that first reaches its speedup), the
    ratios to apply, and the method's scores."""
    check_granularity(method, protocol)
    model.eval()
    layers = find_prunable_layers(model, protocol.prunable_layers)
    shape, granularity = protocol.dataset.input_shape, protocol.granularity
    example = calibration.batch(slice(0, 2))
    base = target_ratios(target, model, layers, granularity, shape, example)
    as_ratios = PruningTarget(id=target.id, layer_ratios=base) if target.is_budget else target
    stage = PruningStage(method, protocol, as_ratios, seed)
    decision = stage.decide(model, calibration)
    allocation = stage.call("allocation")
    if not isinstance(allocation, Allocation):
        raise PluginError(
            f"plugin {method.name!r}: allocation() returned {type(allocation).__name__}",
            "return a pruning_suite.Allocation",
        )
    if allocation.scope == "layer":
        ratios = decision.ratios
    elif target.speedup is not None:
        ratios = budget_ratios(
            model, decision.scores, layers, allocation, granularity, target.speedup, shape, example
        )
    else:
        ratios = allocate(decision.scores, decision.ratios, layers, allocation, granularity)
    return allocation, base, ratios, decision.scores


def _who(allocation: Allocation, ratios: dict[str, float], base: dict[str, float]) -> str | None:
    """What allocated other ratios than the target's, or None (the target's own ratios)."""
    if allocation.scope == "global":
        return "global allocation"
    return "the method's layer ratios" if ratios != base else None


def target_warning(
    preview: PrunePreview, target: PruningTarget, reference: dict[str, float] | None, who: str
) -> str | None:
    """One line when ``preview`` misses R-TARGET-1 against the target's ``reference`` figures
    (:func:`~pruning_suite.rules.targets.target_misses`), naming a budget target to use instead.

    Args:
        preview: The measured preview (achieved sparsity; speedup, effective for weight
            granularity).
        target: The protocol's target.
        reference: ``{"sparsity", "speedup"}`` the target's ratios give (``target_reference``);
            not read for a budget target (None).
        who: What allocated the pruning, e.g. ``"global allocation"``.

    Returns:
        ``"global allocation removes 70.29% of params vs the target's 74.33%: this run would not
        certify S1; use a budget target (digits-convnet-budget)"``, or None when it is met.
    """
    protocol = preview.protocol
    weight = protocol.granularity == "weight"
    speedup = preview.effective_speedup if weight else preview.speedup
    reference = reference or {}
    misses = target_misses(
        target, protocol.target_tolerance, preview.sparsity, speedup,
        reference.get("sparsity"), reference.get("speedup"),
    )  # fmt: skip
    if not misses:
        return None
    said = " and ".join(_missed(miss, target) for miss in misses)
    return f"{who} {said}: this run would not certify S1{_advice(protocol, target)}"


def _missed(miss: TargetMiss, target: PruningTarget) -> str:
    if miss.quantity == "sparsity":
        return (
            f"removes {100 * miss.achieved:.2f}% of params vs the target's "
            f"{100 * miss.reference:.2f}%"
        )
    if target.is_budget:
        return f"gives a {miss.achieved:.2f}x MACs speedup, below the target's {miss.reference:g}x"
    return f"gives a {miss.achieved:.2f}x MACs speedup vs the target's {miss.reference:.2f}x"


def _advice(protocol: ComparisonProtocol, target: PruningTarget) -> str:
    """Where a budget target is: this protocol's, or a protocol on the same data and model."""
    if target.is_budget:
        return ""
    own = [t.id for t in protocol.targets if t.is_budget]
    if own:
        return f"; use one of its budget targets ({', '.join(own)})"
    siblings = [
        p.id
        for p in list_protocols()
        if p.id != protocol.id
        and (p.dataset.name, p.architecture, p.granularity)
        == (protocol.dataset.name, protocol.architecture, protocol.granularity)
        and any(t.is_budget for t in p.targets)
    ]
    return f"; use a budget target ({', '.join(sorted(set(siblings)))})" if siblings else ""


def _calibration_split(
    protocol: ComparisonProtocol, data_dir: Any, seed: int
) -> tuple[Split, str, str]:
    """Training examples for the method, how they were obtained, and the data's checksum."""
    try:
        data = load_dataset(protocol.dataset, data_dir)
        return data.train, "training split", data.sha256
    except DatasetError:
        gen = torch.Generator().manual_seed(seed)
        inputs = torch.randn(SYNTHETIC_EXAMPLES, *protocol.dataset.input_shape, generator=gen)
        labels = torch.randint(
            0, protocol.dataset.num_classes, (SYNTHETIC_EXAMPLES,), generator=gen
        )
        note = f"synthetic N(0, 1) inputs (the {protocol.dataset.name} data is not here)"
        return Split(inputs, labels), note, protocol.dataset.sha256
