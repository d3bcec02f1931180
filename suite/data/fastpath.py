"""The fast path of the suite's loops: precision, memory layout, compilation and data loading.

On CUDA the training and evaluation forward passes run under bf16 autocast with the model and
its inputs in channels_last memory format (tensor-core convolutions without layout transposes);
on the CPU everything stays fp32 in the default layout, so a seed gives the same numbers as
ever. ``torch.compile`` is an option of :func:`pruning_suite.engine.train.train`. Small datasets live on
the device (:class:`pruning_suite.data.datasets.Split`); image-folder data, too large for that, is decoded
and augmented by DataLoader workers into pinned memory (:func:`folder_loader`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "autocast",
    "compiled",
    "device_layout",
    "folder_loader",
    "precision",
    "to_device",
    "with_device_layout",
]

AUTOCAST_DTYPE = torch.bfloat16
"""The reduced precision of forward passes on CUDA (bf16: fp32's exponent range, no loss scaling)."""


def autocast(device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast on CUDA, nothing elsewhere (fp32 on the CPU).

    Wrap the forward pass and the loss; run ``backward()`` outside it.
    """
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=AUTOCAST_DTYPE)
    return nullcontext()


def precision(device: torch.device) -> str:
    """The arithmetic of training on ``device``'s type: ``"bf16 autocast"`` on CUDA, else
    ``"float32"`` (recorded with every trained base model)."""
    return "bf16 autocast" if device.type == "cuda" else "float32"


def with_device_layout(inputs: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` CUDA inputs in channels_last format; any other tensor as it is."""
    if inputs.is_cuda and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


@contextmanager
def device_layout(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """``model`` with its 4-D weights in channels_last format while the block runs (CUDA only).

    The parameters are converted in place (same ``Parameter`` objects, so an optimizer built
    before keeps working) and put back in the default contiguous format on exit. A model already
    in channels_last is left alone, so blocks nest (``evaluate`` inside ``train``).
    """
    weights = [p for p in model.parameters() if p.dim() == 4]
    channels_last = all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    if device.type != "cuda" or channels_last:
        yield model
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def compiled(model: nn.Module, enabled: bool) -> nn.Module:
    """``torch.compile(model)`` when ``enabled`` (it shares ``model``'s parameters), else ``model``."""
    return torch.compile(model) if enabled else model


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; a CPU tensor bound for CUDA goes through pinned memory.

    A plain ``.to("cuda")`` of a CPU tensor waits for the GPU to finish its queued work; a
    non-blocking copy from pinned memory does not, so drawing augmentation parameters on a CPU
    generator does not stall the training loop.
    """
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def folder_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None,
    num_workers: int,
    device: torch.device | str,
) -> DataLoader:
    """A DataLoader for image-folder data: CPU workers decode and augment, batches land pinned.

    For datasets too large to live on the device (ImageNet). With ``device`` on CUDA the batches
    are in pinned memory, so ``batch.to(device, non_blocking=True)`` overlaps the copy with
    compute; workers persist across epochs and prefetch 4 batches each. The last partial batch
    is kept (evaluation sees every example).

    Reproducibility: ``generator`` draws the shuffling order and the workers' base seed (worker
    ``i`` seeds torch, ``random`` and NumPy with base seed + ``i``), so the same generator seed
    and ``num_workers`` give the same batches, random transforms included; a different
    ``num_workers`` gives different random transforms. With ``num_workers=0`` the transforms
    draw from the main process's global generators (seed them with ``torch.manual_seed``).

    Args:
        dataset: A map-style dataset returning ``(image [C, H, W] tensor, label)``.
        batch_size: Examples per batch.
        shuffle: Draw a new order every epoch (training) or keep the stored order (evaluation).
        generator: Source of the order and worker seeds; None uses torch's global generator.
        num_workers: Worker processes; 0 loads in the main process.
        device: Where the batches will be used (pinned memory only for CUDA).

    Returns:
        The loader, yielding ``(inputs [B, C, H, W], labels [B])`` on the CPU.

    Raises:
        ValueError: ``batch_size`` < 1 or ``num_workers`` < 0 (from ``DataLoader``).
    """
    workers = num_workers > 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=workers,
        prefetch_factor=4 if workers else None,
    )
