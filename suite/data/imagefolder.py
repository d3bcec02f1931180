"""Image-folder datasets (ImageNet, ImageNet-100): torchvision's ImageFolder layout, read by a DataLoader.

The layout is torchvision's (``torchvision.datasets.ImageFolder`` / ``ImageNet``):
``ROOT/train/<class>/<image>`` and ``ROOT/val/<class>/<image>``, one folder per class named by
its WordNet id (``n01440764`` ...), images in any of :data:`IMAGE_EXTENSIONS` (case-insensitive),
possibly in sub-folders or behind symbolic links (subsets are often folders of links). Folders
whose name starts with ``.`` are ignored.

- ``imagenet``: every class folder of ``train/``, in sorted order (torchvision's class order,
  the order of its pretrained weights' outputs); ``val/`` must hold the same class folders, and
  their number must be the protocol's ``num_classes``. Looked for in ``DIR/imagenet/`` then
  ``DIR``.
- ``imagenet100``: only the classes of a committed, versioned class list
  (``pruning_suite/protocol/files/imagenet100-classes-v1.txt``: the suite's own list; the paper's is
  unpublished), labelled by their position in it. Looked for in ``DIR/imagenet100/`` (a folder
  holding just those classes, or more), then ``DIR/imagenet/`` (full ImageNet), then ``DIR``.

``DIR`` is the ``data_dir`` (``--data-dir``) when given, the only place searched, else
``$PRUNING_SUITE_DATA``. The first candidate holding ``train/`` or ``val/`` is the dataset; it
must then hold every class it needs (no silent fall-through to another copy).

Images are never loaded into memory as a whole: a :class:`FolderSplit` decodes them in batches
through a ``torch.utils.data.DataLoader`` (PIL, as torchvision's ``default_loader``). Training
images get ``RandomResizedCrop(H x W)`` (scale (0.08, 1), ratio (3/4, 4/3), bilinear,
antialiased) then, when the recipe says so, a horizontal flip with probability 0.5; evaluation
images get ``Resize(eval_resize)`` (shorter side, bilinear, antialiased) then ``CenterCrop(H x
W)``: torchvision's ImageNet reference transforms (``H x W`` = ``input_shape[1:]``, 224 x 224
and ``eval_resize`` 256 in the shipped protocols). Pixels are scaled to [0, 1] and normalized
with the protocol's mean / std on the target device.

Randomness of the training crops and flips comes from a per-image generator seeded from the
run's generator and the image's index, so the same seed gives the same crops whatever the number
of DataLoader workers.

Listing and checksum live in :mod:`pruning_suite.data.folderscan`. Checksum (:func:`folder_checksum`): a sha256 over the sorted lines ``<split>/<relative path>\\t
<size in bytes>\\n`` of every image used. File *contents are not hashed*, for speed: hashing
ImageNet's ~150 GB would take longer than many runs; listing 1.3 million file sizes takes
seconds to a minute. So a renamed, added, removed or resized file changes the checksum, but an
image rewritten with the same size does not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import DatasetError
from .folderscan import (
    CLASS_LISTS,
    FOLDER_DATASETS,
    IMAGE_EXTENSIONS,
    SPLITS,
    FolderLayout,
    FolderScan,
    find_image_folder,
    folder_checksum,
    image_folder_checksum,
    read_class_list,
    scan_image_folder,
)
from .shards import batch_part
from .source import limited, verify_checksum
from .splits import DataSplits, split_indices

if TYPE_CHECKING:
    from PIL import Image

    from ..protocol.spec import DatasetSpec

__all__ = [
    "CLASS_LISTS",
    "FOLDER_DATASETS",
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FolderLayout",
    "FolderScan",
    "FolderSplit",
    "FolderTransform",
    "default_workers",
    "find_image_folder",
    "folder_checksum",
    "image_folder_checksum",
    "load_image_folder",
    "random_resized_crop_params",
    "read_class_list",
    "scan_image_folder",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet-1k training pixels in [0, 1], as torchvision's weights expect."""


IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel std of ImageNet-1k training pixels in [0, 1], as torchvision's weights expect."""


EVAL_BATCH_CAP = 250
"""Largest evaluation batch decoded at once (accuracy does not depend on it; memory does)."""


WORKERS_ENV = "PRUNING_SUITE_WORKERS"
"""Environment variable giving the number of DataLoader worker processes for image folders."""


@dataclass(frozen=True)
class FolderTransform:
    """How variable-size images become ``[3, H, W]`` model inputs (torchvision's ImageNet recipe).

    Attributes:
        size: ``(H, W)`` of the model input: the random crop (training) and center crop
            (evaluation) size.
        eval_resize: Evaluation images' shorter side is resized to this before the center crop.
        mean: Per-channel normalization mean, on pixels scaled to [0, 1].
        std: Per-channel normalization std.
        scale: ``RandomResizedCrop`` area fraction range.
        ratio: ``RandomResizedCrop`` aspect-ratio range (width / height).
    """

    size: tuple[int, int]
    eval_resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


def random_resized_crop_params(
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random crop, as ``RandomResizedCrop.get_params``.

    torchvision's algorithm and draw order, from ``generator`` instead of the global RNG: up to
    10 tries of an area fraction ``uniform(scale)`` and a log-uniform aspect ratio in ``ratio``,
    then a uniform position; if no try fits, a center crop clamped to ``ratio``. So seeding
    ``generator`` with ``s`` gives the crop torchvision draws after ``torch.manual_seed(s)``.

    Args:
        width: Image width in pixels.
        height: Image height in pixels.
        scale: Range of the crop's area as a fraction of the image's.
        ratio: Range of the crop's aspect ratio (width / height).
        generator: A CPU generator.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        log_aspect = torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator)
        aspect = torch.exp(log_aspect).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def _open_rgb(path: Path) -> Image.Image:
    """The image at ``path`` as RGB (torchvision's ``pil_loader``)."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            image = Image.open(handle)
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DatasetError(
            f"cannot decode image {path}: {type(err).__name__}: {err}",
            "replace the file with an intact copy, or remove it (the dataset checksum changes)",
        ) from err


class _FolderImages(torch.utils.data.Dataset):
    """Decodes ``folder/paths[i]`` to a uint8 ``[3, H, W]`` tensor, with the split's transform."""

    def __init__(
        self,
        folder: Path,
        paths: np.ndarray,
        labels: torch.Tensor,
        transform: FolderTransform,
        train: bool,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        self.folder, self.paths, self.labels = folder, paths, labels
        self.transform, self.train, self.flip, self.seed = transform, train, flip, seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as TF

        image = _open_rgb(self.folder / self.paths[index].decode("utf-8"))
        t = self.transform
        if self.train:
            generator = torch.Generator().manual_seed((self.seed + index * 0x9E3779B1) % 2**63)
            top, left, h, w = random_resized_crop_params(*image.size, t.scale, t.ratio, generator)
            image = TF.resized_crop(
                image, top, left, h, w, list(t.size), InterpolationMode.BILINEAR, antialias=True
            )
            if self.flip and torch.randint(0, 2, (1,), generator=generator).item():
                image = TF.hflip(image)
        else:
            image = TF.resize(image, t.eval_resize, InterpolationMode.BILINEAR, antialias=True)
            image = TF.center_crop(image, list(t.size))
        return TF.pil_to_tensor(image), self.labels[index]


@dataclass(frozen=True, eq=False)
class FolderSplit:
    """One split of an image-folder dataset, decoded in batches by a DataLoader (never all in memory).

    Iterate it with :meth:`train_batches` (random crops, flips; shuffled) or :meth:`eval_batches`
    (resize + center crop; in order). Batches are ``(inputs, labels)``: inputs ``[B, 3, H, W]``
    float32 on :attr:`device`, scaled to [0, 1] and normalized; labels ``[B]`` int64 there too.

    Attributes:
        folder: The split's image folder (``ROOT/train`` or ``ROOT/val``).
        paths: ``[N]`` relative paths under ``folder`` (UTF-8 bytes, one contiguous NumPy array
            so DataLoader workers share it without copying).
        labels: ``[N]`` int64 class indices, on :attr:`device`.
        transform: The decoding recipe.
        device: Where batches are delivered (pinned-memory copies when it is CUDA).
        workers: DataLoader worker processes; 0 decodes in the calling process.
    """

    folder: Path
    paths: np.ndarray
    labels: torch.Tensor
    transform: FolderTransform
    device: torch.device = torch.device("cpu")
    workers: int = 0

    def __post_init__(self) -> None:
        if self.paths.ndim != 1 or self.labels.shape != (len(self.paths),):
            raise ValueError("FolderSplit needs paths [N] and labels [N]")

    def __len__(self) -> int:
        return len(self.paths)

    def to(self, device: torch.device | str) -> FolderSplit:
        """This split, delivering batches on ``device`` (only the labels move now)."""
        device = torch.device(device)
        return replace(self, labels=self.labels.to(device), device=device)

    def subset(self, indices: np.ndarray) -> FolderSplit:
        """The examples at ``indices`` (``[M]`` int64), in that order."""
        index = np.asarray(indices, dtype=np.int64)
        labels = self.labels[torch.from_numpy(index).to(self.labels.device)]
        return replace(self, paths=self.paths[index], labels=labels)

    def train_batches(
        self,
        batch_size: int,
        generator: torch.Generator,
        horizontal_flip: bool = False,
        max_batches: int | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled epoch of randomly cropped (and flipped) training batches.

        Draws from ``generator``, in this order: the permutation ``randperm(N)``, then one seed
        ``randint(0, 2**62)`` from which every image's crop and flip are drawn
        (:func:`random_resized_crop_params`, then ``randint(0, 2)`` for the flip), seeded by
        the seed and the image's index, so an image gets the same crop whichever process reads it.

        Args:
            batch_size: Examples per batch (the last batch may be smaller).
            generator: The run's CPU generator (advanced by the two draws above).
            horizontal_flip: Flip each image left-right with probability 0.5.
            max_batches: Stop after this many batches (smoke runs); only those images are read.
            shard: ``(rank, world size)`` of a data-parallel run: decode and yield only the
                rank's contiguous part of every batch (:func:`~.shards.batch_part`).
        """
        order = torch.randperm(len(self), generator=generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        if max_batches is not None:
            order = order[: max_batches * batch_size]
        labels = self.labels.cpu()
        images = _FolderImages(
            self.folder, self.paths, labels, self.transform, True, horizontal_flip, seed
        )
        batches = _chunks(order.tolist(), batch_size)
        yield from self._batches(
            images, [batch[batch_part(len(batch), *shard)] for batch in batches]
        )

    def eval_batches(
        self, batch_size: int = EVAL_BATCH_CAP, order: Sequence[int] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Resized and center-cropped batches, in stored order (or ``order``), deterministic.

        Args:
            batch_size: Examples per batch, at most :data:`EVAL_BATCH_CAP`.
            order: Indices to read, in this order; None reads every example.
        """
        images = _FolderImages(self.folder, self.paths, self.labels.cpu(), self.transform, False)
        indices = list(range(len(self))) if order is None else [int(i) for i in order]
        yield from self._batches(images, _chunks(indices, min(batch_size, EVAL_BATCH_CAP)))

    def batch(self, index: torch.Tensor | slice) -> torch.Tensor:
        """Evaluation-transformed inputs of the examples ``index`` selects, decoded now.

        The in-memory :class:`~pruning_suite.data.datasets.Split` interface, for code that picks a few
        examples (calibration batches, example inputs); loops use the iterators above.

        Args:
            index: ``[B]`` int64 indices (on any device) or a slice.

        Returns:
            ``[B, 3, H, W]`` float32 on :attr:`device`.
        """
        if isinstance(index, slice):
            order = range(len(self))[index]
        else:
            order = torch.as_tensor(index).reshape(-1).tolist()
        batches = [inputs for inputs, _ in self.eval_batches(EVAL_BATCH_CAP, order)]
        if not batches:
            size = self.transform.size
            return torch.empty(0, 3, *size, device=self.device)
        return torch.cat(batches)

    def _batches(
        self, images: _FolderImages, batches: list[list[int]]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not any(batches):
            return
        cuda = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            images, batch_sampler=batches, num_workers=self.workers, pin_memory=cuda
        )
        mean = torch.tensor(self.transform.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.transform.std, device=self.device).view(1, -1, 1, 1)
        for pixels, labels in loader:
            pixels = pixels.to(self.device, non_blocking=cuda)
            inputs = pixels.float().div_(255).sub_(mean).div_(std)
            yield inputs, labels.to(self.device, non_blocking=cuda)


def _chunks(indices: list[int], batch_size: int) -> list[list[int]]:
    """``indices`` cut into consecutive batches of ``batch_size`` (the last may be smaller)."""
    return [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]


def load_image_folder(
    spec: DatasetSpec,
    data_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    verify: bool = True,
    eval_limit: int | None = None,
) -> DataSplits:
    """Find, list, verify and split an image-folder dataset (``imagenet``, ``imagenet100``).

    Called by :func:`pruning_suite.data.datasets.load_dataset`, which documents the arguments. The
    validation split is ``spec.val_size`` images of ``train/`` drawn with
    :func:`~pruning_suite.data.datasets.split_indices` (seed ``spec.split_seed``); the test split is
    ``val/`` (ImageNet's official validation set, the test set of every ImageNet paper).
    ``eval_limit`` keeps a seeded random subset of at most that many validation and test
    examples (smoke runs).

    Raises:
        DatasetError: Missing or incomplete folder, unreadable files, or (``verify``) a checksum
            other than ``spec.sha256``.
    """
    scan = _scan(spec, data_dir)
    checksum = scan.checksum()
    verify_checksum(spec, checksum, str(scan.root), verify)
    train_idx, val_idx, _ = split_indices(
        len(scan.files["train"]), spec.val_size, None, spec.split_seed
    )
    transform = FolderTransform(
        size=(spec.input_shape[1], spec.input_shape[2]),
        eval_resize=int(spec.eval_resize or max(spec.input_shape[1:])),
        mean=tuple(spec.mean),
        std=tuple(spec.std),
    )
    splits = {split: _folder_split(scan, split, transform) for split in SPLITS}
    test_idx = np.arange(len(splits["val"]), dtype=np.int64)
    val_idx, test_idx = (limited(idx, eval_limit, spec.split_seed) for idx in (val_idx, test_idx))
    train, val = splits["train"].subset(train_idx), splits["train"].subset(val_idx)
    test = splits["val"].subset(test_idx)
    return DataSplits(train, val, test, checksum, str(scan.root)).to(device)


def default_workers() -> int:
    """DataLoader workers for image folders: ``$PRUNING_SUITE_WORKERS``, else min(8, CPUs - 1)."""
    value = os.environ.get(WORKERS_ENV)
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            raise DatasetError(
                f"${WORKERS_ENV} is {value!r}, not a number", f"set {WORKERS_ENV}=0 .. N"
            ) from None
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def _scan(spec: DatasetSpec, data_dir: Path | str | None) -> FolderScan:
    layout = FOLDER_DATASETS[spec.name]
    chosen = spec.class_list or layout.default_class_list
    classes = read_class_list(chosen) if chosen else None
    root = find_image_folder(spec.name, data_dir)
    return scan_image_folder(root, classes, spec.num_classes, spec.name)


def _folder_split(scan: FolderScan, split: str, transform: FolderTransform) -> FolderSplit:
    paths = np.array([p.encode("utf-8") for p in scan.files[split]], dtype=np.bytes_)
    labels = torch.from_numpy(scan.labels[split])
    return FolderSplit(scan.root / split, paths, labels, transform, workers=default_workers())
