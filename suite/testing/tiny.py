"""The tiny model and the pruning context the conformance checks score on.

The context is built as the suite builds it (:meth:`pruning_suite.run.prune.PruningStage.context`):
the prunable layers found by the core, a generator seeded with the seed, and the suite's own
counted calibration channel (:class:`~pruning_suite.run.prune.CalibrationChannel`) over a small
seeded training split, so a data-driven criterion sees batches exactly as in a run.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract.method import PruningContext
from ..data.splits import Split
from ..engine.layers import find_prunable_layers
from ..run.prune import CalibrationChannel

__all__ = [
    "TINY_CLASSES",
    "TINY_INPUT_SHAPE",
    "TINY_PRUNABLE",
    "TinyNet",
    "tiny_context",
    "tiny_model",
]

TINY_INPUT_SHAPE = (1, 8, 8)
"""``[C, H, W]`` of one input of :class:`TinyNet`."""
TINY_CLASSES = 3
"""Output classes of :class:`TinyNet`."""
TINY_PRUNABLE = ("conv1", "conv2", "fc1")
"""The layers a check may prune: two convolutions followed by BatchNorm, and a Linear without."""

_EXAMPLES = 40
_BATCH = 10


class TinyNet(nn.Module):
    """``[B, 1, 8, 8]`` -> conv1 (4 filters) -> BN -> ReLU -> conv2 (6) -> BN -> ReLU -> 2x2 max
    pool -> fc1 (8 neurons) -> ReLU -> fc (3 classes, the output layer, never prunable)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.fc1 = nn.Linear(6 * 4 * 4, 8)
        self.fc = nn.Linear(8, TINY_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def tiny_model(seed: int = 0) -> TinyNet:
    """A :class:`TinyNet` with seeded weights and non-trivial BatchNorm statistics, in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    net = TinyNet()
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        for bn in (net.bn1, net.bn2):
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
    return net.eval()


def tiny_split(seed: int = 0) -> Split:
    """40 seeded examples ``[40, 1, 8, 8]`` float32 with labels ``[40]`` in ``[0, 3)``."""
    gen = torch.Generator().manual_seed(1_000 + seed)
    images = torch.randn(_EXAMPLES, *TINY_INPUT_SHAPE, generator=gen)
    labels = torch.randint(0, TINY_CLASSES, (_EXAMPLES,), generator=gen)
    return Split(images, labels)


def tiny_context(
    model: nn.Module,
    seed: int = 0,
    ratio: float = 0.5,
    round_index: int = 1,
    split: Split | None = None,
) -> PruningContext:
    """The context the suite would give a method scoring ``model`` (a :class:`TinyNet`).

    Args:
        model: The model to score, in eval mode.
        seed: The run's seed (seeds ``ctx.generator`` and the calibration order).
        ratio: The target's pruning ratio of every prunable layer (a fraction).
        round_index: The 1-based prune round.
        split: The calibration data; default :func:`tiny_split` (4 batches of 10 examples).

    Returns:
        A :class:`~pruning_suite.PruningContext` on the CPU whose ``calibration_batches`` is the
        suite's counted, seeded channel.
    """
    layers = find_prunable_layers(model, list(TINY_PRUNABLE))
    channel = CalibrationChannel(split if split is not None else tiny_split(), seed, _BATCH)
    return PruningContext(
        model=model,
        layers=layers,
        ratios={layer.name: ratio for layer in layers},
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        device=torch.device("cpu"),
        calibration_batches=channel,
        round_index=round_index,
    )
