"""Where a dataset's data comes from: the typed source a plugin registers, the decoded arrays,
the search roots, the checksum recipe and the checks every loader shares.

A :class:`DatasetSource` is what the hook ``register_datasets`` returns, one per dataset name a
protocol's ``dataset.name`` uses; :func:`pruning_suite.data.datasets.load_dataset` looks it up in
``load_registry().datasets``. The suite's own sources (digits, MNIST, Fashion-MNIST, CIFAR-10/100,
ImageNet) are registered the same way, from :mod:`pruning_suite.data.builtin`. Torch-free.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..errors import DatasetError

if TYPE_CHECKING:
    from ..protocol.spec import DatasetSpec

T = TypeVar("T")

__all__ = [
    "DATA_ENV",
    "SMOKE_EVAL_EXAMPLES",
    "SYSTEM_DATA_DIRS",
    "UNPINNED",
    "DatasetSource",
    "RawData",
    "dataset_checksum",
    "limited",
    "find_data_folder",
    "not_a_folder",
    "search_roots",
    "verify_checksum",
    "whole_numbers",
]

DATA_ENV = "PRUNING_SUITE_DATA"
"""Environment variable naming a data root, searched when no ``data_dir`` is given."""


UNPINNED = "unpinned"
"""``DatasetSpec.sha256`` of a protocol whose data the maintainers could not checksum.

:func:`load_dataset` then computes the checksum without verifying it; the value computed is
recorded in every submission (``dataset_sha256``), so runs on different copies stay traceable.
"""


SYSTEM_DATA_DIRS: dict[str, tuple[tuple[Path, str], ...]] = {
    "fashion-mnist": (
        (Path("/usr/share/datasets/fashion-mnist"), "Debian package dataset-fashion-mnist"),
    ),
    "mnist": (),
    "cifar10": (),
    "cifar100": (),
}
"""Per dataset, system folders searched last, each with the package that provides it."""


SMOKE_EVAL_EXAMPLES = 256
"""Validation and test examples a smoke run evaluates on (``load_dataset``'s ``eval_limit``)."""


ReadArrays = Callable[[Path | str | None], "RawData"]
"""Reads a dataset's decoded arrays: ``read(data_dir) -> RawData`` (``data_dir`` may be None)."""

LoadFolder = Callable[..., Any]
"""Loads an image-folder dataset batch by batch:
``load(spec, data_dir, device, verify, eval_limit) -> DataSplits`` (see ``load_dataset``)."""

FolderChecksum = Callable[[Path | str | None, str | None], str]
"""The checksum of an image-folder dataset as found: ``checksum(data_dir, class_list) -> str``."""


@dataclass(frozen=True)
class DatasetSource:
    """One dataset a protocol can name: what it is and how its data is read.

    A source reads either decoded arrays held on the device (``read``: digits, MNIST, CIFAR, any
    small dataset a plugin adds) or an image folder decoded batch by batch (``load_folder`` and
    ``folder_checksum``: ImageNet); exactly one of the two ways is given.

    Attributes:
        name: The name a protocol's ``dataset.name`` uses (lower-case letters, digits, '-').
        channels: Image channels (1 grayscale, 3 RGB); a protocol's ``input_shape[0]`` must match.
        has_official_test: The data comes with its own test split; otherwise a protocol sets
            ``dataset.test_size`` and the test examples are held out of the training data.
        read: ``read(data_dir) -> RawData`` for array datasets, else None.
        load_folder: The image-folder loader, else None.
        folder_checksum: The image-folder checksum (given exactly with ``load_folder``).
        class_lists: The dataset takes a ``dataset.class_list`` (ImageNet-100).
        description: One line for listings.

    Raises:
        ValueError: Not exactly one way of reading, a folder source without its checksum, or
            ``channels`` not positive.
    """

    name: str
    channels: int
    has_official_test: bool
    read: ReadArrays | None = None
    load_folder: LoadFolder | None = None
    folder_checksum: FolderChecksum | None = None
    class_lists: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.read is None) == (self.load_folder is None):
            raise ValueError(f"dataset source {self.name!r} needs exactly one of read, load_folder")
        if (self.load_folder is None) != (self.folder_checksum is None):
            raise ValueError(f"dataset source {self.name!r}: give folder_checksum with load_folder")
        if self.channels < 1:
            raise ValueError(f"dataset source {self.name!r} needs channels >= 1")

    @property
    def is_folder(self) -> bool:
        """Read from an image folder batch by batch, not held in memory."""
        return self.load_folder is not None


@dataclass(frozen=True, eq=False)
class RawData:
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


def search_roots(name: str) -> list[tuple[Path, str]]:
    """The roots searched when no ``data_dir`` is given: ``$PRUNING_SUITE_DATA``, system folders."""
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append((Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"))
    return roots + list(SYSTEM_DATA_DIRS.get(name, ()))


def find_data_folder(
    name: str,
    data_dir: Path | str | None,
    *,
    look_in: Callable[[Path], T | None],
    folders: Callable[[Path], Sequence[Path]],
    expected: str,
    not_searched: str,
    hint: str,
    given_hint: str,
) -> T:
    """Find a dataset's files: only under ``data_dir`` when given, else under :func:`search_roots`.

    Args:
        name: The dataset's name, for the messages and the roots searched.
        data_dir: The ``--data-dir`` given, or None to search the roots.
        look_in: Root -> what was found under it (the folder, ...), or None.
        folders: Root -> the folders ``look_in`` looks at, in order (for the messages).
        expected: The files looked for, in words.
        not_searched: What is not searched when ``data_dir`` is given (``"$VAR is"``).
        hint: The hint when the roots lack the data.
        given_hint: The hint when ``data_dir`` lacks the data.

    Raises:
        DatasetError: The data is in none of the places looked at.
    """
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        found = look_in(root)
        if found is None:
            raise DatasetError(
                f"{name} not found in --data-dir {root}{not_a_folder(root)}: looked for "
                f"{expected} in {' and '.join(str(f) for f in folders(root))}; "
                f"with --data-dir given, {not_searched} not searched",
                given_hint,
            )
        return found
    searched = []
    for root, origin in search_roots(name):
        found = look_in(root)
        if found is not None:
            return found
        searched += [f"{folder} ({origin}{not_a_folder(folder)})" for folder in folders(root)]
    places = "; ".join(searched) or "nowhere: no data_dir given and $" + DATA_ENV + " is not set"
    raise DatasetError(f"{name} not found; searched: {places}; expected files: {expected}", hint)


def not_a_folder(path: Path) -> str:
    """``""`` for a folder, else why it is not one (as a note to append to the path)."""
    if os.path.isdir(path):
        return ""
    return ", is not a folder" if os.path.lexists(path) else ", does not exist"


def verify_checksum(spec: DatasetSpec, checksum: str, source: str, verify: bool) -> None:
    """Refuse data whose checksum is not the pinned one (``verify`` and a pinned protocol)."""
    if verify and spec.sha256 != UNPINNED and checksum != spec.sha256:
        raise DatasetError(
            f"{spec.name} data from {source} has sha256 {checksum}, but the protocol expects "
            f"{spec.sha256}: it is different data (another release, a modified copy) or a "
            "corrupted file",
            "get the original files (for Fashion-MNIST: 'apt-get install --reinstall "
            "dataset-fashion-mnist'); only to pin a new protocol load it with verify=False",
        )


def limited(indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """``indices``, or a seeded random ``limit`` of them, kept in stored order (smoke subsets)."""
    if limit is None or len(indices) <= limit:
        return indices
    keep = np.random.RandomState(seed).permutation(len(indices))[:limit]
    return indices[np.sort(keep)]


def _hash_array(digest: hashlib._Hash, array: np.ndarray, kind: str) -> None:
    dtype = "uint8" if kind == "uint8" else "<i8"
    data = whole_numbers(array, dtype, "array")
    digest.update(f"{kind} {','.join(str(d) for d in data.shape)}\n".encode("ascii"))
    digest.update(np.ascontiguousarray(data).data)


def whole_numbers(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """``array`` as ``dtype``, refusing values that would change in the conversion."""
    array = np.asarray(array)
    if array.dtype == np.dtype(dtype):
        return array
    converted = array.astype(dtype)
    if not np.array_equal(converted, array):
        raise ValueError(f"{what} holds values that are not whole numbers in range for {dtype}")
    return converted
