"""Train / validation / test splits: the seeded split of indices and the on-device :class:`Split`.

Splits are drawn with a seeded permutation (:func:`split_indices`). A :class:`Split` keeps the raw
pixels on its device (uint8 where they are whole numbers: 4x less memory than float) and
``Split.batch(index)`` returns them scaled to [0, 1] and normalized with the protocol's mean and
std, in batches, on the device. Resized data (e.g. 28 -> 32 pixels) is kept as float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ProtocolError
from .source import whole_numbers

if TYPE_CHECKING:
    from ..protocol.spec import DatasetSpec

__all__ = [
    "DataSplits",
    "Split",
    "split_indices",
    "to_split",
]


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: stored pixels, labels, and the normalization that makes model inputs.

    Small datasets stay on the device in their stored form, raw pixels as uint8 (4x smaller than
    float32); :meth:`batch` turns one batch into model inputs on the device:
    ``(images / scale - mean) / std`` per channel, in float32, the same operations in the same
    order as normalizing the whole split up front, so the values are bit-identical to that (and
    to torchvision's ``ToTensor()`` + ``Normalize(mean, std)``).

    Attributes:
        images: ``[N, C, H, W]`` stored pixels: uint8 raw values, or float32 (pixels resized to
            the protocol's input size, already scaled to [0, 1]; or ready model inputs when
            ``mean`` is empty and ``scale`` is 1).
        labels: ``[N]`` int64 class indices in ``[0, num_classes)``.
        scale: The stored value that maps to 1.0 (255 for 8-bit pixels, 16 for ``digits``).
        mean: Per-channel normalization mean on pixels scaled to [0, 1] (``DatasetSpec.mean``);
            ``()`` when ``images / scale`` are the model inputs as they are.
        std: Per-channel normalization std; given exactly when ``mean`` is.

    Raises:
        ValueError: ``images`` is not 4-D, ``labels`` not 1-D, their lengths differ, ``mean`` and
            ``std`` do not give one value per channel, or ``scale`` or a ``std`` is not positive.
    """

    images: torch.Tensor
    labels: torch.Tensor
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    _scale: torch.Tensor = field(init=False, repr=False)
    _mean: torch.Tensor | None = field(init=False, repr=False)
    _std: torch.Tensor | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dim() != 4 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(
                f"Split needs images [N, C, H, W] and labels [N], got {tuple(images.shape)} "
                f"and {tuple(labels.shape)}"
            )
        scale, mean, std = float(self.scale), _floats(self.mean), _floats(self.std)
        channels = images.shape[1]
        if len(mean) != len(std) or len(mean) not in (0, channels) or min((*std, scale)) <= 0:
            raise ValueError(
                f"Split of {channels}-channel images needs one mean and std per channel (or "
                f"neither), std > 0 and scale > 0; got mean {mean}, std {std}, scale {scale}"
            )
        for name, value in (("scale", scale), ("mean", mean), ("std", std)):
            object.__setattr__(self, name, value)
        # Divisors as device tensors, not Python scalars: CUDA divides by a CPU scalar through
        # its reciprocal, which can move the last bit; a tensor divisor gives IEEE division.
        object.__setattr__(self, "_scale", _per_channel((scale,), images.device))
        object.__setattr__(self, "_mean", _per_channel(mean, images.device) if mean else None)
        object.__setattr__(self, "_std", _per_channel(std, images.device) if mean else None)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        """Where the images and labels live."""
        return self.images.device

    @property
    def inputs(self) -> torch.Tensor:
        """Every example's model input, ``[N, C, H, W]`` float32, as :meth:`batch` makes them.

        Built anew on each access, a float32 copy of the whole split (``images`` itself for a
        split of ready inputs): loops should take their batches with :meth:`batch`.
        """
        return self.images if self._ready else self.batch(slice(None))

    @property
    def _ready(self) -> bool:
        return self.images.dtype == torch.float32 and self.scale == 1.0 and self._mean is None

    def batch(self, index: torch.Tensor | slice) -> torch.Tensor:
        """Model inputs of the examples ``index`` selects, on the split's device.

        Args:
            index: ``[B]`` int64 indices (on the split's device) or a slice.

        Returns:
            ``[B, C, H, W]`` float32, ``(images[index] / scale - mean) / std`` per channel in that
            order; ``images[index]`` itself when the split holds ready float32 inputs.
        """
        stored = self.images[index]
        if self._ready:
            return stored
        x = stored.to(torch.float32, copy=True)  # a copy: the in-place steps never touch images
        if self.scale != 1.0:
            x.div_(self._scale)
        if self._mean is not None and self._std is not None:
            x.sub_(self._mean).div_(self._std)
        return x

    def to(self, device: torch.device | str) -> Split:
        """This split with both tensors on ``device`` (no copy when already there)."""
        images, labels = self.images.to(device), self.labels.to(device)
        return Split(images, labels, self.scale, self.mean, self.std)


def _floats(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


def _per_channel(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """``values`` as a float32 ``[1, len(values), 1, 1]`` tensor on ``device``."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


@dataclass(frozen=True, eq=False)
class DataSplits:
    """The train, validation and test splits of one protocol's dataset.

    Attributes:
        train: Training examples (the validation examples removed).
        val: Validation examples, carved from the training data with the protocol's split seed.
        test: The official test set, or examples held out with the split seed (``digits``).
        sha256: :func:`dataset_checksum` of the raw data that was read.
        source: Where the raw data was read from (a folder, or the scikit-learn loader).
    """

    train: Split
    val: Split
    test: Split
    sha256: str
    source: str

    def to(self, device: torch.device | str) -> DataSplits:
        """These splits with every tensor on ``device``."""
        train, val, test = (split.to(device) for split in (self.train, self.val, self.test))
        return DataSplits(train, val, test, self.sha256, self.source)


def split_indices(
    n: int, val_size: int, test_size: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Seeded train / validation / (test) indices into ``n`` training examples.

    One permutation ``numpy.random.RandomState(seed).permutation(n)`` is drawn. Its first
    ``test_size`` entries are the test examples (only for data without an official test set), the
    next ``val_size`` the validation examples, the rest the training examples; each set is returned
    sorted, so examples keep their stored order. ``RandomState`` is used, not ``default_rng``,
    because NumPy freezes its stream across versions (NEP 19), so a protocol's split never moves.
    The split is not stratified.

    Args:
        n: Number of examples available (the training file, or all of ``digits``).
        val_size: Validation examples.
        test_size: Test examples to hold out, or None when the data has an official test set.
        seed: The protocol's ``split_seed``, in ``[0, 2**32)``.

    Returns:
        ``(train, val, test)`` int64 index arrays; ``test`` is None when ``test_size`` is None.

    Raises:
        ProtocolError: The seed is out of range, or nothing would be left for training.
    """
    held = val_size + (test_size or 0)
    if held >= n:
        raise ProtocolError(
            f"dataset split holds out {held} examples (val_size {val_size}, test_size {test_size}) "
            f"but only {n} are available, leaving none for training",
            "lower dataset.val_size / dataset.test_size in the protocol",
        )
    if not 0 <= seed < 2**32:
        raise ProtocolError(f"dataset.split_seed {seed} is out of range", "use one in [0, 2**32)")
    order = np.random.RandomState(seed).permutation(n).astype(np.int64)
    n_test = test_size or 0
    test = np.sort(order[:n_test]) if test_size is not None else None
    val = np.sort(order[n_test : n_test + val_size])
    train = np.sort(order[n_test + val_size :])
    return train, val, test


def to_split(images: np.ndarray, labels: np.ndarray, max_pixel: float, spec: DatasetSpec) -> Split:
    """``[N, H, W]`` or ``[N, H, W, C]`` stored images to a :class:`Split` of ``[N, C, H', W']``.

    Pixels are kept as uint8, exactly (:func:`dataset_checksum` admits only whole numbers in
    0..255). Data resized to ``spec.input_shape`` is kept as float32 scaled to [0, 1], since
    bilinear values are not whole numbers. Either way the split normalizes with ``spec.mean`` /
    ``spec.std`` batch by batch (:meth:`Split.batch`).
    """
    nchw = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    size = tuple(spec.input_shape[1:])
    if tuple(nchw.shape[-2:]) == size or not len(nchw):
        pixels = np.ascontiguousarray(whole_numbers(nchw, "uint8", "images"))
        return Split(torch.from_numpy(pixels), targets, max_pixel, spec.mean, spec.std)
    x = torch.from_numpy(np.ascontiguousarray(nchw, dtype=np.float32)).div_(max_pixel)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    return Split(x.contiguous(), targets, 1.0, spec.mean, spec.std)
