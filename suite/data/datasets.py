"""Datasets of the comparison protocols: finding, decoding, checksumming, splitting, augmenting.

Every protocol pins its data by a sha256 of the *decoded* arrays (:func:`dataset_checksum`), so
the same data gives the same checksum whether it is stored gzipped or plain, and a different release
or a corrupted file is refused before any training starts (Wang et al., arXiv 2301.05219, Sec. 3:
compared runs must share everything but the pruning stage, the data included).

Where the data comes from (no download on these machines):

- ``digits``: scikit-learn's embedded ``load_digits()`` (1797 8x8 images, values 0..16).
- ``fashion-mnist``, ``mnist``: IDX files, gzipped or not. A ``data_dir`` argument (the CLI's
  ``--data-dir``) is authoritative: the files must be there, or loading fails naming it; nothing
  else is searched. Without it they are looked for in (1) the environment variable
  ``PRUNING_SUITE_DATA``, (2) for Fashion-MNIST the folder of the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``). Within each of those roots
  the files may sit in torchvision's layout ``ROOT/FashionMNIST/raw/`` (``ROOT/MNIST/raw/``) or
  directly in ``ROOT``.
- ``cifar10``, ``cifar100``: torchvision's pickled batches, ``ROOT/cifar-10-batches-py/``
  (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) and ``ROOT/cifar-100-python/``
  (``train``, ``test``), or the same files directly in ``ROOT``. ``ROOT`` is the ``data_dir``
  when given (the only place searched), else ``PRUNING_SUITE_DATA``; there is no system folder.
  The pickles are read by a restricted unpickler (:func:`read_cifar_batch`) that refuses every
  global except NumPy's array reconstruction, so a tampered file cannot run code.
- ``imagenet``, ``imagenet100``: torchvision's ImageFolder layout (``ROOT/imagenet/train/<class>/``
  and ``val/``), never loaded into memory: :mod:`pruning_suite.data.imagefolder` lists the files,
  checksums their paths and sizes, and decodes batches through a DataLoader.

Splits are drawn with a seeded permutation (:func:`split_indices`). A :class:`Split` keeps the raw
pixels on its device (uint8 where they are whole numbers: 4x less memory than float) and
``Split.batch(index)`` returns them scaled to [0, 1] and normalized with the protocol's mean and
std, in batches, on the device; :func:`augment` crops and flips such batches there. Resized data
(e.g. 28 -> 32 pixels) is kept as float32.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DatasetError, ProtocolError
from .fastpath import to_device

if TYPE_CHECKING:
    from ..protocol.spec import Augmentation, DatasetSpec

__all__ = [
    "CIFAR_LAYOUTS",
    "DATA_ENV",
    "FOLDER_DATASET_NAMES",
    "IDX_FILES",
    "SMOKE_EVAL_EXAMPLES",
    "UNPINNED",
    "CifarLayout",
    "DataSplits",
    "Split",
    "augment",
    "compute_checksum",
    "dataset_checksum",
    "load_dataset",
    "read_cifar_batch",
    "read_idx",
    "split_indices",
]

DATA_ENV = "PRUNING_SUITE_DATA"
"""Environment variable naming a data root, searched when no ``data_dir`` is given."""

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of MNIST and Fashion-MNIST, each optionally with a ``.gz`` suffix."""

UNPINNED = "unpinned"
"""``DatasetSpec.sha256`` of a protocol whose data the maintainers could not checksum.

:func:`load_dataset` then computes the checksum without verifying it; the value computed is
recorded in every submission (``dataset_sha256``), so runs on different copies stay traceable.
"""

_TORCHVISION_FOLDER = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


@dataclass(frozen=True)
class CifarLayout:
    """Where torchvision keeps one CIFAR dataset, and what its pickled batches hold.

    Attributes:
        folder: The folder torchvision extracts under its root.
        train_files: Training batches, concatenated in this order.
        test_files: Test batches.
        label_key: The batch dict's label entry (CIFAR-100: the 100 fine classes).
        torchvision_class: The torchvision dataset class that downloads it.
    """

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    torchvision_class: str


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        "CIFAR10",
    ),
    "cifar100": CifarLayout("cifar-100-python", ("train",), ("test",), "fine_labels", "CIFAR100"),
}
"""torchvision's on-disk layout of CIFAR-10 and CIFAR-100 (the "python version" archives)."""

_CIFAR_SIDE = 32  # images are 3 x 32 x 32, stored per row as 1024 R, 1024 G, 1024 B bytes

SYSTEM_DATA_DIRS: dict[str, tuple[tuple[Path, str], ...]] = {
    "fashion-mnist": (
        (Path("/usr/share/datasets/fashion-mnist"), "Debian package dataset-fashion-mnist"),
    ),
    "mnist": (),
    "cifar10": (),
    "cifar100": (),
}
"""Per dataset, system folders searched last, each with the package that provides it."""

_HAS_OFFICIAL_TEST = {"digits": False, "fashion-mnist": True, "mnist": True}
_CHANNELS = {"cifar10": 3, "cifar100": 3, "imagenet": 3, "imagenet100": 3}  # others: grayscale

FOLDER_DATASET_NAMES = ("imagenet", "imagenet100")
"""Datasets read from image folders by :mod:`pruning_suite.data.imagefolder`, batch by batch."""

SMOKE_EVAL_EXAMPLES = 256
"""Validation and test examples a smoke run evaluates on (``load_dataset``'s ``eval_limit``)."""

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); all big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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


@dataclass(frozen=True, eq=False)
class _RawData:
    """Decoded arrays: images ``[N, H, W]`` (or ``[N, H, W, C]``) uint8, labels ``[N]`` integers."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    max_pixel: float  # the value that maps to 1.0 (16 for digits, 255 for IDX)
    source: str

    def checksum(self) -> str:
        return dataset_checksum(
            self.train_images, self.train_labels, self.test_images, self.test_labels
        )


# --------------------------------------------------------------------------------------------
# Public entry points


def load_dataset(
    spec: DatasetSpec,
    data_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    verify: bool = True,
    eval_limit: int | None = None,
) -> DataSplits:
    """Load, verify, split and normalize the dataset a protocol names.

    Steps: find and decode the raw data; compare its :func:`dataset_checksum` with ``spec.sha256``
    (skipped when that is :data:`UNPINNED`: the checksum is then only computed and returned);
    split it with :func:`split_indices` (``spec.val_size`` validation examples from the training
    data; for ``digits`` first ``spec.test_size`` test examples); scale pixels to [0, 1]; resize
    bilinearly to ``spec.input_shape[1:]`` when the stored size differs (``F.interpolate``,
    ``align_corners=False``, no antialiasing; e.g. MNIST 28x28 -> 32x32 for MLP-7-Linear); then
    normalize with ``spec.mean`` / ``spec.std``.

    Image-folder datasets (``imagenet``, ``imagenet100``) are not decoded here: their splits are
    :class:`~pruning_suite.data.imagefolder.FolderSplit` objects that decode batches through a
    DataLoader (:func:`pruning_suite.data.imagefolder.load_image_folder`).

    Args:
        spec: The protocol's dataset section.
        data_dir: The folder holding a file-based dataset (ignored for ``digits``, which is
            embedded). When given, only it is searched; None searches ``$PRUNING_SUITE_DATA``,
            then the system folders.
        device: Where the returned tensors live.
        verify: Refuse data whose checksum differs from ``spec.sha256`` (no effect for an
            :data:`UNPINNED` protocol). Turn off only to pin a new protocol or on purpose-built
            test data: results are then not comparable.
        eval_limit: Keep at most this many validation and test examples, a seeded random
            subset in stored order (``numpy.random.RandomState(spec.split_seed)``), drawn after
            the split, so the checksum still covers all the data and training is unchanged. For
            smoke runs only (:data:`SMOKE_EVAL_EXAMPLES`), whose training is capped in batches.

    Returns:
        The splits, with ``sha256`` (of the data actually read) and ``source``.

    Raises:
        ProtocolError: The spec is inconsistent (channels vs mean/std, a ``test_size`` for data
            with an official test set or none for data without, more held-out than available).
        DatasetError: The data is missing (from ``data_dir`` when given), incomplete, corrupt, has
            labels outside ``[0, num_classes)``, or (``verify``) does not match ``spec.sha256``.
    """
    _check_spec(spec)
    if spec.name in FOLDER_DATASET_NAMES:
        from .imagefolder import load_image_folder

        return load_image_folder(spec, data_dir, device, verify, eval_limit)
    raw = _read_raw(spec.name, data_dir)
    checksum = raw.checksum()
    _verify_checksum(spec, checksum, raw.source, verify)
    _check_labels(raw, spec)
    train_idx, val_idx, test_idx = split_indices(
        len(raw.train_labels), spec.val_size, spec.test_size, spec.split_seed
    )
    val_idx = _limited(val_idx, eval_limit, spec.split_seed)

    def prepare(images: np.ndarray, labels: np.ndarray) -> Split:
        return _to_split(images, labels, raw.max_pixel, spec).to(device)

    if test_idx is None:
        assert raw.test_images is not None and raw.test_labels is not None
        kept = _limited(np.arange(len(raw.test_labels)), eval_limit, spec.split_seed)
        test = prepare(raw.test_images[kept], raw.test_labels[kept])
    else:
        test_idx = _limited(test_idx, eval_limit, spec.split_seed)
        test = prepare(raw.train_images[test_idx], raw.train_labels[test_idx])
    return DataSplits(
        train=prepare(raw.train_images[train_idx], raw.train_labels[train_idx]),
        val=prepare(raw.train_images[val_idx], raw.train_labels[val_idx]),
        test=test,
        sha256=checksum,
        source=raw.source,
    )


def compute_checksum(
    spec_name: str, data_dir: Path | str | None = None, class_list: str | None = None
) -> str:
    """The checksum of a dataset as found on this machine (to pin a protocol).

    :func:`dataset_checksum` of the decoded arrays; for the image folders ``imagenet`` and
    ``imagenet100`` :func:`pruning_suite.data.imagefolder.folder_checksum` (file paths and sizes, not
    contents).

    Args:
        spec_name: ``"digits"``, ``"fashion-mnist"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet"`` or ``"imagenet100"``.
        data_dir: The folder holding the data, as in :func:`load_dataset`.
        class_list: For ``imagenet100``: the class list (``DatasetSpec.class_list``); None uses
            the dataset's default list.

    Returns:
        64 lower-case hex digits, the value for a protocol's ``dataset.sha256``.

    Raises:
        ProtocolError: Unknown dataset name.
        DatasetError: The data is missing, incomplete or corrupt.
    """
    if spec_name in FOLDER_DATASET_NAMES:
        from .imagefolder import image_folder_checksum

        return image_folder_checksum(spec_name, data_dir, class_list)
    return _read_raw(spec_name, data_dir).checksum()


def dataset_checksum(
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
) -> str:
    """sha256 of decoded dataset arrays, independent of how they were stored (gzip or not).

    The byte recipe: arrays are fed to one sha256 in the order train images, train labels, then
    (when given) test images, test labels. Each array contributes a header and a body:

    - header: ASCII ``"<kind> <d0>,<d1>,...\\n"``: ``kind`` is ``uint8`` for images and
      ``int64le`` for labels, followed by the array's shape in decimal, comma-separated;
    - body: the elements in C (row-major) order, images as one unsigned byte each, labels as 8-byte
      little-endian signed ints. Images are ``[N, H, W]`` for grayscale data and ``[N, 32, 32, 3]``
      (height, width, RGB) for CIFAR: the layout of torchvision's ``CIFAR10(root).data``, the
      training batches concatenated in order ``data_batch_1`` .. ``data_batch_5``; labels are
      CIFAR-10's ``labels`` and CIFAR-100's ``fine_labels``. So
      ``dataset_checksum(train.data, np.array(train.targets), test.data, np.array(test.targets))``
      on torchvision's datasets gives the same value.

    For Fashion-MNIST this equals ``sha256(b"uint8 60000,28,28\\n" + train_images.tobytes() +
    b"int64le 60000\\n" + train_labels.astype("<i8").tobytes() + b"uint8 10000,28,28\\n" + ...)``.

    Args:
        images: Training (or all, for ``digits``) images ``[N, H, W]`` or ``[N, H, W, C]``,
            integers in 0..255, any integer or float dtype holding whole numbers.
        labels: ``[N]`` integer labels of ``images``.
        test_images: Official test images, or None.
        test_labels: Official test labels; given exactly when ``test_images`` is.

    Returns:
        64 lower-case hex digits.

    Raises:
        ValueError: Only one of the test arrays is given, or values are not whole numbers in range.
    """
    if (test_images is None) != (test_labels is None):
        raise ValueError("give both test_images and test_labels, or neither")
    digest = hashlib.sha256()
    _hash_array(digest, images, "uint8")
    _hash_array(digest, labels, "int64le")
    if test_images is not None and test_labels is not None:
        _hash_array(digest, test_images, "uint8")
        _hash_array(digest, test_labels, "int64le")
    return digest.hexdigest()


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


def read_idx(path: Path | str) -> np.ndarray:
    """Decode one IDX file (gzipped or plain, detected from its first bytes).

    Args:
        path: The file.

    Returns:
        The array with the dimensions and element type its header declares (a read-only view;
        ``uint8`` for MNIST-style images ``[N, H, W]`` and labels ``[N]``).

    Raises:
        DatasetError: The file cannot be read, is not gzip/IDX, its header declares a shape its
            payload does not hold (truncated, over-long, absurd dimensions), or it fails to decode
            in any other way; the message names the file and how to replace it.
    """
    path = Path(path)
    hint = _corrupt_hint(path)
    try:
        return _parse_idx(_read_idx_bytes(path, hint), path, hint)
    except DatasetError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, OverflowError) as err:
        # Safety net: whatever a damaged file makes the decoders raise names the file.
        detail = f"{type(err).__name__}: {err}"
        raise DatasetError(f"dataset file {path} cannot be decoded ({detail})", hint) from err


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


# --------------------------------------------------------------------------------------------
# Reading raw data


def _read_raw(name: str, data_dir: Path | str | None) -> _RawData:
    if name == "digits":
        return _read_digits()
    if name in _TORCHVISION_FOLDER:
        return _read_idx_dataset(name, data_dir)
    if name in CIFAR_LAYOUTS:
        return _read_cifar_dataset(name, data_dir)
    from difflib import get_close_matches

    known = ["digits", *_TORCHVISION_FOLDER, *CIFAR_LAYOUTS, *FOLDER_DATASET_NAMES]
    close = get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise ProtocolError(f"unknown dataset {name!r}", f"{guess}known datasets: {', '.join(known)}")


def _read_digits() -> _RawData:
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _RawData(
        train_images=_whole_numbers(bunch.images, "uint8", "sklearn digits images"),
        train_labels=np.asarray(bunch.target, dtype=np.int64),
        test_images=None,
        test_labels=None,
        max_pixel=16.0,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
    )


def _read_idx_dataset(name: str, data_dir: Path | str | None) -> _RawData:
    folder, files = _find_idx_folder(name, data_dir)
    arrays = [read_idx(files[stem]) for stem in IDX_FILES]
    train_images, train_labels, test_images, test_labels = arrays
    pairs = (("train", train_images, train_labels), ("t10k", test_images, test_labels))
    for which, images, labels in pairs:
        integer_labels = labels.ndim == 1 and labels.dtype.kind in "iu"
        if images.ndim != 3 or images.dtype != np.uint8 or not integer_labels:
            raise DatasetError(
                f"{name} files in {folder}: {which} images must be uint8 [N, H, W] and labels "
                f"[N] integers, got {images.dtype} {images.shape} and {labels.dtype} "
                f"{labels.shape}",
                "these are not MNIST-style IDX files: reinstall or re-download the original files",
            )
        if len(images) != len(labels):
            raise DatasetError(
                f"{name} files in {folder}: {len(images)} {which} images but {len(labels)} labels",
                "the files come from different releases or one is damaged; get the original files",
            )
    return _RawData(train_images, train_labels, test_images, test_labels, 255.0, str(folder))


def _find_idx_folder(name: str, data_dir: Path | str | None) -> tuple[Path, dict[str, Path]]:
    """The folder holding all four IDX files: only in ``data_dir`` when given, else searched."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        found = _idx_folder_in(name, root)
        if found is None:
            raise DatasetError(
                f"{name} not found in --data-dir {root}{_not_a_folder(root)}: looked for "
                f"{_expected_files()} in {root / _TORCHVISION_FOLDER[name] / 'raw'} and {root}; "
                f"with --data-dir given, ${DATA_ENV} and the system folders are not searched",
                _missing_hint(name, given=True),
            )
        return found
    searched = []
    for root, origin in _search_roots(name):
        found = _idx_folder_in(name, root)
        if found is not None:
            return found
        searched += [
            f"{folder} ({origin}{_not_a_folder(folder)})" for folder in _folders(name, root)
        ]
    places = "; ".join(searched) or "nowhere: no data_dir given and $" + DATA_ENV + " is not set"
    raise DatasetError(
        f"{name} not found; searched: {places}; expected files: {_expected_files()}",
        _missing_hint(name),
    )


def _idx_folder_in(name: str, root: Path) -> tuple[Path, dict[str, Path]] | None:
    """The folder under ``root`` (torchvision's layout first) holding all four IDX files, if any.

    Raises:
        DatasetError: A folder holds some of the four files but not all.
    """
    for folder in _folders(name, root):
        found = {stem: p for stem in IDX_FILES if (p := _idx_file(folder, stem)) is not None}
        if len(found) == len(IDX_FILES):
            return folder, found
        if found:
            missing = [stem for stem in IDX_FILES if stem not in found]
            raise DatasetError(
                f"{name} folder {folder} is incomplete: it lacks {', '.join(missing)} (.gz or not)",
                _missing_hint(name),
            )
    return None


def _folders(name: str, root: Path) -> tuple[Path, Path]:
    return root / _TORCHVISION_FOLDER[name] / "raw", root


def _not_a_folder(path: Path) -> str:
    """``""`` for a folder, else why it is not one (as a note to append to the path)."""
    if os.path.isdir(path):
        return ""
    return ", is not a folder" if os.path.lexists(path) else ", does not exist"


def _search_roots(name: str) -> list[tuple[Path, str]]:
    """The roots searched when no ``data_dir`` is given: ``$PRUNING_SUITE_DATA``, system folders."""
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append((Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"))
    return roots + list(SYSTEM_DATA_DIRS.get(name, ()))


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or else ``folder/stem.gz``, whichever is a file (plain reads faster).

    ``os.path.isfile`` rather than ``Path.is_file``: an unreadable folder counts as not holding
    the file instead of raising ``PermissionError``.
    """
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if os.path.isfile(candidate):
            return candidate
    return None


def _expected_files() -> str:
    return ", ".join(f"{stem}[.gz]" for stem in IDX_FILES)


def _missing_hint(name: str, given: bool = False) -> str:
    """How to get the data; ``given``: an explicit ``--data-dir`` lacked it."""
    files = ", ".join(f"{stem}.gz" for stem in IDX_FILES)
    where = (
        f"the four IDX files in DIR/{_TORCHVISION_FOLDER[name]}/raw/ (torchvision's layout) or "
        f"directly in DIR: {files} (the .gz suffix is optional)"
    )
    if given:
        system = " and the system folders" if SYSTEM_DATA_DIRS.get(name) else ""
        layout = (
            f"point --data-dir at a folder DIR with {where}, or leave --data-dir out to search "
            f"${DATA_ENV}{system}"
        )
    else:
        layout = f"pass --data-dir DIR with {where}; setting {DATA_ENV}=DIR works too"
    if name == "fashion-mnist" and given:
        return (
            f"{layout} (after 'apt-get install dataset-fashion-mnist' the system folder has them)"
        )
    if name == "fashion-mnist":
        return (
            "install the Debian package: 'apt-get install dataset-fashion-mnist' (puts the files "
            f"in /usr/share/datasets/fashion-mnist), or {layout}"
        )
    return f"{layout}; nothing is downloaded on these machines"


def _corrupt_hint(path: Path) -> str:
    return (
        f"replace {path} with an intact copy: reinstall or re-download the data (Debian's "
        "Fashion-MNIST: 'apt-get install --reinstall dataset-fashion-mnist')"
    )


def _read_idx_bytes(path: Path, hint: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DatasetError(f"cannot read dataset file {path}: {err.strerror or err}", hint) from err
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        message = f"dataset file {path} is a truncated or corrupt gzip file: {err}"
        raise DatasetError(message, hint) from err


def _parse_idx(raw: bytes, path: Path, hint: str) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(
            f"dataset file {path} is not an IDX file (magic number {raw[:4].hex() or 'missing'}, "
            "expected 0000 followed by a type code such as 08 and the number of dimensions)",
            hint,
        )
    ndim, dtype = raw[3], _IDX_DTYPES[raw[2]]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"dataset file {path} is truncated: its header is cut off", hint)
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        state = (
            "truncated or its header is corrupt"
            if len(raw) < expected
            else "longer than its header says"
        )
        raise DatasetError(
            f"dataset file {path} is {state}: {len(raw)} bytes (decompressed), but its header "
            f"declares an IDX array of shape {dims} ({expected} bytes)",
            hint,
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


# --------------------------------------------------------------------------------------------
# CIFAR: torchvision's pickled batches, read without running code


class _ForbiddenGlobalError(pickle.UnpicklingError):
    """A pickle referred to a global the CIFAR reader does not allow."""


def _numpy_reconstructors() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR batch may name: NumPy's array reconstruction.

    Batches pickled by NumPy 1.x (the published files) name ``numpy.core.multiarray._reconstruct``;
    NumPy 2 writes ``numpy._core...``; pickle protocol 5 uses ``numeric._frombuffer`` instead. The
    objects are taken from NumPy's own ``__reduce__``, so no module is imported by name.
    """
    array = np.zeros(1, dtype=np.uint8)
    reconstruct, frombuffer = array.__reduce__()[0], array.__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only NumPy's array-reconstruction globals.

    A CIFAR batch is a dict of bytes, ints, lists and one NumPy array; building the array needs
    ``_reconstruct`` (or ``_frombuffer``), ``ndarray`` and ``dtype``, nothing else. Every other
    global (``os.system``, ``builtins.eval``, ...) is refused before it is looked up, so a
    tampered file cannot run code. Persistent ids are refused by :class:`pickle.Unpickler` itself.
    """

    _ALLOWED = _numpy_reconstructors()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobalError(f"{module}.{name}") from None


# Whatever a damaged pickle makes the decoder raise (kept explicit; no bare ``except``).
_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
    MemoryError,
)


def read_cifar_batch(path: Path | str, label_key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR batch file of torchvision's layout, without running code from it.

    The file is a pickled dict (``encoding="bytes"``, as the CIFAR website prescribes for the
    Python 2 pickles) with ``data``, uint8 ``[N, 3072]`` (per image 1024 red, 1024 green, 1024
    blue bytes, row-major), and ``label_key``, ``N`` integers; keys may be bytes or str. It is
    read by an unpickler that allows only NumPy's array-reconstruction globals
    (:class:`_CifarUnpickler`), so unlike ``pickle.load`` it is safe on untrusted files.

    Args:
        path: The batch file (e.g. ``cifar-10-batches-py/data_batch_1``).
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).

    Returns:
        ``(images, labels)``: uint8 ``[N, 32, 32, 3]`` (height, width, RGB; torchvision's
        ``.data`` layout) and int64 ``[N]``.

    Raises:
        DatasetError: The file cannot be read, names a global other than NumPy's reconstruction
            (not a CIFAR batch, or tampered with), fails to unpickle, or does not hold the
            expected dict; the message names the file.
    """
    path = Path(path)
    batch = _unpickle_cifar(path)
    entries = {(k.decode("latin-1") if isinstance(k, bytes) else k): v for k, v in batch.items()}
    images = entries.get("data")
    labels = _as_array(entries.get(label_key, ()))
    size = 3 * _CIFAR_SIDE * _CIFAR_SIDE
    valid_images = isinstance(images, np.ndarray) and images.dtype == np.uint8
    if not valid_images or images.ndim != 2 or images.shape[1] != size:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images)
        raise DatasetError(
            f"CIFAR batch {path} has no uint8 [N, {size}] 'data' array (got {got})",
            _cifar_corrupt_hint(path),
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise DatasetError(
            f"CIFAR batch {path} needs {len(images)} integer '{label_key}', got "
            f"{labels.dtype} {labels.shape}",
            _cifar_corrupt_hint(path),
        )
    side = _CIFAR_SIDE
    hwc = images.reshape(len(images), 3, side, side).transpose(0, 2, 3, 1)
    return hwc, labels.astype(np.int64)


def _as_array(value: object) -> np.ndarray:
    """``value`` as an array; an object array when it is ragged or not array-like."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError):
        return np.empty(0, dtype=object)


def _unpickle_cifar(path: Path) -> dict:
    hint = _cifar_corrupt_hint(path)
    try:
        with open(path, "rb") as file:
            batch = _CifarUnpickler(file, encoding="bytes").load()
    except OSError as err:
        raise DatasetError(f"cannot read dataset file {path}: {err.strerror or err}", hint) from err
    except _ForbiddenGlobalError as err:
        raise DatasetError(
            f"dataset file {path} is not a plain CIFAR batch: its pickle refers to {err}, and "
            "only NumPy's array reconstruction is allowed (loading it could run code)",
            f"do not use this file; {hint}",
        ) from err
    except _UNPICKLE_ERRORS as err:
        detail = f"{type(err).__name__}: {err}"
        raise DatasetError(f"dataset file {path} cannot be unpickled ({detail})", hint) from err
    if not isinstance(batch, dict):
        raise DatasetError(f"CIFAR batch {path} holds a {type(batch).__name__}, not a dict", hint)
    return batch


def _read_cifar_dataset(name: str, data_dir: Path | str | None) -> _RawData:
    layout = CIFAR_LAYOUTS[name]
    folder = _find_cifar_folder(name, data_dir)

    def read(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        batches = [read_cifar_batch(folder / file, layout.label_key) for file in files]
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    train_images, train_labels = read(layout.train_files)
    test_images, test_labels = read(layout.test_files)
    return _RawData(train_images, train_labels, test_images, test_labels, 255.0, str(folder))


def _find_cifar_folder(name: str, data_dir: Path | str | None) -> Path:
    """The folder holding every batch file: only under ``data_dir`` when given, else the env."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        found = _cifar_folder_in(name, root)
        if found is None:
            raise DatasetError(
                f"{name} not found in --data-dir {root}{_not_a_folder(root)}: looked for "
                f"{_cifar_files(name)} in {root / CIFAR_LAYOUTS[name].folder} and {root}; with "
                f"--data-dir given, ${DATA_ENV} is not searched",
                _cifar_missing_hint(name),
            )
        return found
    searched = []
    for root, origin in _search_roots(name):
        found = _cifar_folder_in(name, root)
        if found is not None:
            return found
        folders = (root / CIFAR_LAYOUTS[name].folder, root)
        searched += [f"{folder} ({origin}{_not_a_folder(folder)})" for folder in folders]
    places = "; ".join(searched) or "nowhere: no data_dir given and $" + DATA_ENV + " is not set"
    raise DatasetError(
        f"{name} not found; searched: {places}; expected files: {_cifar_files(name)}",
        _cifar_missing_hint(name),
    )


def _cifar_folder_in(name: str, root: Path) -> Path | None:
    """``root/<torchvision folder>`` or ``root`` itself, whichever holds every batch file.

    Raises:
        DatasetError: A folder holds some of the batch files but not all.
    """
    layout = CIFAR_LAYOUTS[name]
    files = (*layout.train_files, *layout.test_files)
    for folder in (root / layout.folder, root):
        present = [file for file in files if os.path.isfile(folder / file)]
        if len(present) == len(files):
            return folder
        if present:
            missing = ", ".join(file for file in files if file not in present)
            raise DatasetError(
                f"{name} folder {folder} is incomplete: it lacks {missing}",
                _cifar_missing_hint(name),
            )
    return None


def _cifar_files(name: str) -> str:
    layout = CIFAR_LAYOUTS[name]
    return ", ".join((*layout.train_files, *layout.test_files))


def _cifar_missing_hint(name: str) -> str:
    layout = CIFAR_LAYOUTS[name]
    return (
        f"put torchvision's layout in a folder DIR: DIR/{layout.folder}/ holding "
        f"{_cifar_files(name)} (the extracted 'python version' archive), and pass --data-dir DIR "
        f"or set {DATA_ENV}=DIR; on a machine with internet, "
        f"'torchvision.datasets.{layout.torchvision_class}(DIR, download=True)' writes exactly "
        "that; nothing is downloaded on these machines"
    )


def _cifar_corrupt_hint(path: Path) -> str:
    return (
        f"replace {path} with the original file: extract torchvision's download of CIFAR again "
        "(or run 'torchvision.datasets.CIFAR10(DIR, download=True)' / CIFAR100 on a machine with "
        "internet and copy DIR here)"
    )


# --------------------------------------------------------------------------------------------
# Checks and conversion


def _check_spec(spec: DatasetSpec) -> None:
    channels, expected = spec.input_shape[0], _CHANNELS.get(spec.name, 1)
    if channels != expected:
        kind = "grayscale" if expected == 1 else f"RGB ({expected} channels)"
        raise ProtocolError(
            f"dataset {spec.name!r} is {kind}, but dataset.input_shape {spec.input_shape} has "
            f"{channels} channels",
            f"set dataset.input_shape to ({expected}, H, W)",
        )
    if len(spec.mean) != channels or len(spec.std) != channels or min(spec.std) <= 0:
        raise ProtocolError(
            f"dataset.mean {spec.mean} and dataset.std {spec.std} must give one value per channel "
            f"({channels}), std > 0",
            "fix dataset.mean / dataset.std in the protocol",
        )
    official = _HAS_OFFICIAL_TEST.get(spec.name, True)
    if official and spec.test_size is not None:
        raise ProtocolError(
            f"dataset {spec.name!r} has an official test set, but dataset.test_size is "
            f"{spec.test_size}",
            "remove dataset.test_size from the protocol",
        )
    if not official and spec.test_size is None:
        raise ProtocolError(
            f"dataset {spec.name!r} has no official test set and dataset.test_size is not set",
            "set dataset.test_size (examples held out for testing) in the protocol",
        )
    _check_folder_fields(spec)


def _check_folder_fields(spec: DatasetSpec) -> None:
    """``eval_resize`` and ``class_list`` belong to image folders; ``eval_resize`` is required there."""
    folder = spec.name in FOLDER_DATASET_NAMES
    if folder and spec.eval_resize is None:
        raise ProtocolError(
            f"dataset {spec.name!r} is an image folder, but dataset.eval_resize is not set",
            "set dataset.eval_resize (evaluation images' shorter side before the center crop, "
            "256 for 224 x 224 inputs)",
        )
    if folder and spec.eval_resize < max(spec.input_shape[1:]):
        raise ProtocolError(
            f"dataset.eval_resize {spec.eval_resize} is smaller than the input size "
            f"{spec.input_shape[1:]}: the center crop would need padding",
            "set dataset.eval_resize >= the input height and width",
        )
    extra = [f for f in ("eval_resize", "class_list") if getattr(spec, f) is not None]
    if not folder and extra:
        raise ProtocolError(
            f"dataset {spec.name!r} is not an image folder, but sets dataset.{', '.join(extra)}",
            f"remove them (only {', '.join(FOLDER_DATASET_NAMES)} use them)",
        )
    if spec.class_list is not None and spec.name != "imagenet100":
        raise ProtocolError(
            f"dataset {spec.name!r} uses every class folder, but dataset.class_list is set",
            "remove dataset.class_list (only imagenet100 restricts ImageNet to a class list)",
        )


def _verify_checksum(spec: DatasetSpec, checksum: str, source: str, verify: bool) -> None:
    """Refuse data whose checksum is not the pinned one (``verify`` and a pinned protocol)."""
    if verify and spec.sha256 != UNPINNED and checksum != spec.sha256:
        raise DatasetError(
            f"{spec.name} data from {source} has sha256 {checksum}, but the protocol expects "
            f"{spec.sha256}: it is different data (another release, a modified copy) or a "
            "corrupted file",
            "get the original files (for Fashion-MNIST: 'apt-get install --reinstall "
            "dataset-fashion-mnist'); only to pin a new protocol load it with verify=False",
        )


def _limited(indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """``indices``, or a seeded random ``limit`` of them, kept in stored order (smoke subsets)."""
    if limit is None or len(indices) <= limit:
        return indices
    keep = np.random.RandomState(seed).permutation(len(indices))[:limit]
    return indices[np.sort(keep)]


def _check_labels(raw: _RawData, spec: DatasetSpec) -> None:
    for labels in (raw.train_labels, raw.test_labels):
        if labels is None or not len(labels):
            continue
        if not 0 <= labels.min() <= labels.max() < spec.num_classes:
            raise DatasetError(
                f"{spec.name} data from {raw.source} has labels {labels.min()}..{labels.max()}, "
                f"outside [0, {spec.num_classes}) (dataset.num_classes)",
                "check dataset.num_classes in the protocol, or the data files",
            )


def _to_split(images: np.ndarray, labels: np.ndarray, max_pixel: float, spec: DatasetSpec) -> Split:
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
        pixels = np.ascontiguousarray(_whole_numbers(nchw, "uint8", "images"))
        return Split(torch.from_numpy(pixels), targets, max_pixel, spec.mean, spec.std)
    x = torch.from_numpy(np.ascontiguousarray(nchw, dtype=np.float32)).div_(max_pixel)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    return Split(x.contiguous(), targets, 1.0, spec.mean, spec.std)


def _hash_array(digest: hashlib._Hash, array: np.ndarray, kind: str) -> None:
    dtype = "uint8" if kind == "uint8" else "<i8"
    data = _whole_numbers(array, dtype, "array")
    digest.update(f"{kind} {','.join(str(d) for d in data.shape)}\n".encode("ascii"))
    digest.update(np.ascontiguousarray(data).data)


def _whole_numbers(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """``array`` as ``dtype``, refusing values that would change in the conversion."""
    array = np.asarray(array)
    if array.dtype == np.dtype(dtype):
        return array
    converted = array.astype(dtype)
    if not np.array_equal(converted, array):
        raise ValueError(f"{what} holds values that are not whole numbers in range for {dtype}")
    return converted


# --------------------------------------------------------------------------------------------
# Augmentation


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
