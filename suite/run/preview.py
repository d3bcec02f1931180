"""``pruning-suite prune``: what a method would remove, measured, without any training.

Lets a user check a configuration (achieved widths, params, MACs, FLOPs, sparsity, speedup)
before spending GPU hours. The method scores the protocol's cached base model when there is one,
else a seeded random initialization (scores of an untrained model, so widths are exact but which
units go is not what a real run would pick).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..contract.plugins import PluginRegistry, load_registry
from ..data.datasets import Split, load_dataset
from ..engine.measure import Counts, measure, measure_effective, sparsity
from ..engine.models import build_model
from ..errors import DatasetError
from ..protocol.spec import ComparisonProtocol, load_protocol
from .basecache import load_cached_base_model
from .prune import prune_model

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
    cached = load_cached_base_model(model, protocol, data_sha256)
    weights = (
        f"cached base model {cached.checkpoint_sha256[:12]}"
        if cached
        else f"random init (seed {seed})"
    )
    dense = measure(model, protocol.dataset.input_shape)
    widths = prune_model(model, method, protocol, target, seed, calibration).layers
    resolved = target.resolve([name for name, _, _ in widths])
    layers = [(name, before, after, resolved[name]) for name, before, after in widths]
    return PrunePreview(
        protocol,
        target.id,
        method.name,
        weights,
        source,
        layers,
        dense,
        measure(model, protocol.dataset.input_shape),
        measure_effective(model, protocol.dataset.input_shape),
    )


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
