"""Shared by the training-aware method tests: a pruning context for a tiny model, and a run of
the real runner whose submission is read back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from pruning_suite import PruningContext
from pruning_suite.engine.layers import find_prunable_layers
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file


def tiny_context(
    model: nn.Module,
    prunable: Iterable[str],
    ratios: Mapping[str, float],
    input_shape: tuple[int, ...] = (1, 6, 6),
) -> PruningContext:
    """The context the suite would give ``model``: seeded calibration batches of 10 examples."""
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(40, *input_shape, generator=gen)
    labels = torch.randint(0, 3, (40,), generator=gen)

    def batches(n: int):
        for i in range(min(n, 4)):
            yield inputs[i * 10 : (i + 1) * 10], labels[i * 10 : (i + 1) * 10]

    return PruningContext(
        model=model,
        layers=find_prunable_layers(model, list(prunable)),
        ratios=dict(ratios),
        seed=0,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        calibration_batches=batches,
    )


def zero_grads(model: nn.Module) -> None:
    """Give every parameter a zero gradient (as after ``backward`` of a loss that ignores it)."""
    for param in model.parameters():
        param.grad = torch.zeros_like(param)


def run_record(out: Path, plugin: str, protocol: str, smoke: bool = True, **kw) -> dict:
    """Run ``plugin`` with the real runner; the submission as a dict (it must validate)."""
    result = run(RunConfig(plugin=plugin, protocol=protocol, smoke=smoke, out=out, **kw))
    assert validate_file(result.path) == []
    return json.loads(Path(result.path).read_text())
