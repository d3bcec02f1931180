"""Augmentation of in-memory batches on their device: random crop with zero padding, flip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .fastpath import to_device

if TYPE_CHECKING:
    from ..protocol.spec import Augmentation

__all__ = [
    "augment",
]


def augment(
    inputs: torch.Tensor,
    aug: Augmentation,
    generator: torch.Generator,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Random crop with zero padding and horizontal flip, batch-wise on the inputs' device.

    Same semantics as torchvision's ``RandomCrop(size, padding=p)`` followed by
    ``RandomHorizontalFlip(0.5)`` applied to each raw image before normalization: the image is
    padded by ``p`` pixels of raw value 0 (black) and cropped back at a per-example offset drawn
    uniformly from ``0..2p`` in each axis; then each example is flipped left-right with
    probability 0.5. Since the inputs are already normalized (:meth:`Split.batch`), the padding
    value is the normalized zero, ``(0 - mean[c]) / std[c]`` per channel, computed in float64 and
    rounded to the inputs' dtype (within one float32 ulp of torchvision's float32 ``Normalize``
    of a black pixel; the image pixels themselves are bit-identical to torchvision's).

    Random draws, in this order, from ``generator`` on its own device (a CPU generator works for
    CUDA inputs): row offsets ``randint(0, 2p+1, (N,))``, column offsets (same), then flips
    ``randint(0, 2, (N,))`` (1 = flip). Crop draws happen only when ``p > 0``, flip draws only when
    flipping is on.

    Args:
        inputs: ``[N, C, H, W]`` normalized images.
        aug: The recipe's augmentation.
        generator: Source of randomness (advanced by the draws above).
        mean: Per-channel normalization mean of ``inputs`` (``DatasetSpec.mean``); required when
            ``aug.random_crop_padding > 0``.
        std: Per-channel normalization std (``DatasetSpec.std``); required with ``mean``.

    Returns:
        ``[N, C, H, W]`` augmented images; ``inputs`` itself when augmentation is off.

    Raises:
        ValueError: ``inputs`` is not 4-D, or padding is asked for without a matching mean/std.
    """
    pad = aug.random_crop_padding
    if pad == 0 and not aug.horizontal_flip:
        return inputs
    if inputs.dim() != 4:
        raise ValueError(f"augment needs inputs [N, C, H, W], got {tuple(inputs.shape)}")
    out = inputs
    if pad > 0:
        out = _random_crop(out, pad, _normalized_zero(mean, std, inputs), generator)
    if aug.horizontal_flip:
        out = _random_flip(out, generator)
    return out


def _normalized_zero(
    mean: Sequence[float] | None, std: Sequence[float] | None, inputs: torch.Tensor
) -> torch.Tensor:
    channels = inputs.shape[1]
    if mean is None or std is None or len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"random crop padding needs the per-channel normalization of the {channels}-channel "
            f"inputs to pad with black: pass mean=spec.mean, std=spec.std (got {mean}, {std})"
        )
    fill = [(0.0 - m) / s for m, s in zip(mean, std, strict=True)]
    return torch.tensor(fill, dtype=inputs.dtype, device=inputs.device)


def _draw(generator: torch.Generator, high: int, n: int, device: torch.device) -> torch.Tensor:
    values = torch.randint(0, high, (n,), generator=generator, device=generator.device)
    return to_device(values, device)


def _random_crop(
    x: torch.Tensor, pad: int, fill: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    n, c, h, w = x.shape
    padded = fill.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad : pad + h, pad : pad + w] = x
    rows = _draw(generator, 2 * pad + 1, n, x.device)[:, None] + torch.arange(h, device=x.device)
    cols = _draw(generator, 2 * pad + 1, n, x.device)[:, None] + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def _random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = _draw(generator, 2, len(x), x.device).bool().view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)
