"""Measured inference latency of a dense and a pruned model: the speed-up a user actually gets.

MACs say what pruning removed; latency says whether the hardware notices (masked weights keep
their dense shapes, so unstructured pruning gives no speed-up without sparse kernels). Each model
is timed with ``torch.utils.benchmark.Timer`` (it synchronizes CUDA and fixes the thread count):
eval mode, ``torch.inference_mode``, one fixed input batch, ``warmup`` untimed forward passes,
then ``repeats`` timed blocks with dense and pruned interleaved (so a machine's drift hits both),
each block ``number`` forward passes long (chosen from the warm-up so a block takes about
``block_seconds``); the median block time per forward pass is recorded. Latency depends on the
machine: a result names its device and thread count, and no table ranks across devices.
"""

from __future__ import annotations

import copy
import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "SMOKE_SETTINGS",
    "LatencyResult",
    "LatencySettings",
    "cpu_name",
    "device_name",
    "latency_devices",
    "measure_latency",
]


@dataclass(frozen=True)
class LatencySettings:
    """How latency is measured.

    Attributes:
        batch_sizes: Examples per forward pass, each measured (batch 1: latency; 64: throughput).
        warmup: Untimed forward passes per model and batch size.
        repeats: Timed blocks per model and batch size (the median is kept).
        block_seconds: Target duration of one timed block, seconds.
        max_number: Most forward passes in one block.
    """

    batch_sizes: tuple[int, ...] = (1, 64)
    warmup: int = 3
    repeats: int = 7
    block_seconds: float = 0.01
    max_number: int = 100


SMOKE_SETTINGS = LatencySettings(warmup=1, repeats=3, block_seconds=0.002, max_number=10)
"""A smoke run's budget: the same measurement, fewer and shorter blocks."""


@dataclass(frozen=True)
class LatencyResult:
    """Median seconds per forward pass of the dense and the pruned model, one device and batch.

    Attributes:
        device: ``"cpu"`` or ``"cuda"``.
        device_name: The processor or GPU name.
        num_threads: CPU intra-op threads used.
        batch_size: Examples per forward pass.
        warmup: Untimed passes per model; ``repeats`` timed blocks per model.
        dense_seconds: Median seconds per forward pass of the dense model.
        pruned_seconds: Median seconds per forward pass of the pruned model.
    """

    device: str
    device_name: str
    num_threads: int
    batch_size: int
    warmup: int
    repeats: int
    dense_seconds: float
    pruned_seconds: float

    @property
    def speedup(self) -> float:
        """Measured speedup: dense seconds / pruned seconds."""
        return self.dense_seconds / self.pruned_seconds


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, else the CPU's (:func:`cpu_name`)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def latency_devices(run_device: torch.device) -> list[torch.device]:
    """Where latency is measured: always the CPU, and the run's CUDA device when it has one."""
    cpu = torch.device("cpu")
    return [cpu, run_device] if run_device.type == "cuda" else [cpu]


def measure_latency(
    dense: nn.Module,
    pruned: nn.Module,
    input_shape: Sequence[int],
    devices: Sequence[torch.device],
    settings: LatencySettings = LatencySettings(),
) -> list[LatencyResult]:
    """Time ``dense`` and ``pruned`` on every device and batch size of ``settings``.

    The models are copied to each device (the originals keep their device and train/eval mode);
    the input is ``torch.randn`` from a fixed generator, shape ``[batch, *input_shape]``.

    Args:
        dense: The dense model (e.g. a freshly built one of the architecture: latency depends on
            shapes, not on weight values).
        pruned: The pruned model.
        input_shape: One example's shape, e.g. ``(C, H, W)``.
        devices: Where to time, e.g. :func:`latency_devices`.
        settings: Batch sizes, warm-up and repeats.

    Returns:
        One result per device and batch size, in that order.
    """
    results = []
    for device in devices:
        models = [_on(model, device) for model in (dense, pruned)]
        for batch in settings.batch_sizes:
            generator = torch.Generator().manual_seed(batch)
            example = torch.randn((batch, *input_shape), generator=generator).to(device)
            dense_s, pruned_s = _time_pair(models, example, settings)
            results.append(
                LatencyResult(
                    device=device.type,
                    device_name=device_name(device),
                    num_threads=torch.get_num_threads(),
                    batch_size=batch,
                    warmup=settings.warmup,
                    repeats=settings.repeats,
                    dense_seconds=dense_s,
                    pruned_seconds=pruned_s,
                )
            )
    return results


def _on(model: nn.Module, device: torch.device) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` (the original is left as it is)."""
    return copy.deepcopy(model).to(device).eval()


def _time_pair(
    models: list[nn.Module], example: torch.Tensor, settings: LatencySettings
) -> tuple[float, float]:
    """Median seconds per forward pass of each model: warm-up, then interleaved timed blocks."""
    from torch.utils.benchmark import Timer

    numbers = [_block_length(model, example, settings) for model in models]
    timers = [
        Timer(
            "model(x)", globals={"model": model, "x": example}, num_threads=torch.get_num_threads()
        )
        for model in models
    ]
    times: list[list[float]] = [[], []]
    with torch.inference_mode():
        for _ in range(settings.repeats):
            for i, timer in enumerate(timers):
                times[i].append(timer.timeit(numbers[i]).mean)
    return statistics.median(times[0]), statistics.median(times[1])


def _block_length(model: nn.Module, example: torch.Tensor, settings: LatencySettings) -> int:
    """Run the warm-up passes; return how many passes make a block of about ``block_seconds``."""
    seconds = math.inf
    with torch.inference_mode():
        for _ in range(max(settings.warmup, 1)):
            started = time.perf_counter()
            model(example)
            if example.device.type == "cuda":
                torch.cuda.synchronize(example.device)
            seconds = min(seconds, time.perf_counter() - started)
    return max(1, min(settings.max_number, int(settings.block_seconds / max(seconds, 1e-9))))
