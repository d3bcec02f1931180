"""Datasets of the comparison protocols: the registry lookup, verifying, splitting, normalizing.

Every protocol pins its data by a sha256 of the *decoded* arrays (:func:`dataset_checksum`), so
the same data gives the same checksum whether it is stored gzipped or plain, and a different release
or a corrupted file is refused before any training starts (Wang et al., arXiv 2301.05219, Sec. 3:
compared runs must share everything but the pruning stage, the data included).

Every dataset is a :class:`~pruning_suite.data.source.DatasetSource` registered through the hook
``register_datasets``; :func:`load_dataset` looks the protocol's ``dataset.name`` up in
``load_registry().datasets``. The suite's own sources (:mod:`pruning_suite.data.builtin`), and where
their data comes from (no download on these machines):

- ``digits``: scikit-learn's embedded ``load_digits()`` (1797 8x8 images, values 0..16).
- ``fashion-mnist``, ``mnist``: IDX files, gzipped or not (:mod:`pruning_suite.data.idx`). A ``data_dir`` argument (the CLI's
  ``--data-dir``) is authoritative: the files must be there, or loading fails naming it; nothing
  else is searched. Without it they are looked for in (1) the environment variable
  ``PRUNING_SUITE_DATA``, (2) for Fashion-MNIST the folder of the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``). Within each of those roots
  the files may sit in torchvision's layout ``ROOT/FashionMNIST/raw/`` (``ROOT/MNIST/raw/``) or
  directly in ``ROOT``.
- ``cifar10``, ``cifar100`` (:mod:`pruning_suite.data.cifar`): torchvision's pickled batches, ``ROOT/cifar-10-batches-py/``
  (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) and ``ROOT/cifar-100-python/``
  (``train``, ``test``), or the same files directly in ``ROOT``. ``ROOT`` is the ``data_dir``
  when given (the only place searched), else ``PRUNING_SUITE_DATA``; there is no system folder.
  The pickles are read by a restricted unpickler (:func:`read_cifar_batch`) that refuses every
  global except NumPy's array reconstruction, so a tampered file cannot run code.
- ``imagenet``, ``imagenet100``: torchvision's ImageFolder layout (``ROOT/imagenet/train/<class>/``
  and ``val/``), never loaded into memory: :mod:`pruning_suite.data.folderscan` lists the files,
  checksums their paths and sizes, and decodes batches through a DataLoader.

Splits (:mod:`pruning_suite.data.splits`) are drawn with a seeded permutation (:func:`split_indices`). A :class:`Split` keeps the raw
pixels on its device (uint8 where they are whole numbers: 4x less memory than float) and
``Split.batch(index)`` returns them scaled to [0, 1] and normalized with the protocol's mean and
std, in batches, on the device; :func:`augment` (:mod:`pruning_suite.data.augment`) crops and
flips such batches there. Resized data
(e.g. 28 -> 32 pixels) is kept as float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..contract.plugins import load_registry
from ..contract.registry import Registry
from ..errors import DatasetError, PluginError, ProtocolError
from .augment import augment
from .cifar import CIFAR_LAYOUTS, CifarLayout, read_cifar_batch
from .idx import IDX_FILES, read_idx
from .source import (
    DATA_ENV,
    SMOKE_EVAL_EXAMPLES,
    SYSTEM_DATA_DIRS,
    UNPINNED,
    DatasetSource,
    RawData,
    dataset_checksum,
    limited,
    verify_checksum,
)
from .splits import DataSplits, Split, split_indices, to_split

if TYPE_CHECKING:
    from ..protocol.spec import DatasetSpec

__all__ = [
    "CIFAR_LAYOUTS",
    "DATA_ENV",
    "IDX_FILES",
    "SMOKE_EVAL_EXAMPLES",
    "SYSTEM_DATA_DIRS",
    "UNPINNED",
    "CifarLayout",
    "DataSplits",
    "DatasetSource",
    "Split",
    "augment",
    "check_labels",
    "check_spec",
    "compute_checksum",
    "dataset_checksum",
    "dataset_source",
    "load_dataset",
    "read_cifar_batch",
    "read_idx",
    "split_indices",
]


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

    Image-folder sources (``imagenet``, ``imagenet100``) are not decoded here: their
    ``load_folder`` returns :class:`~pruning_suite.data.imagefolder.FolderSplit` objects that
    decode batches through a DataLoader (:func:`pruning_suite.data.imagefolder.load_image_folder`).

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
        ProtocolError: Unknown dataset (no plugin registers it), or the spec is inconsistent (channels vs mean/std, a ``test_size`` for data
            with an official test set or none for data without, more held-out than available).
        DatasetError: The data is missing (from ``data_dir`` when given), incomplete, corrupt, has
            labels outside ``[0, num_classes)``, or (``verify``) does not match ``spec.sha256``.
    """
    source = dataset_source(spec.name)
    check_spec(spec, source)
    if source.load_folder is not None:
        return source.load_folder(spec, data_dir, device, verify, eval_limit)
    assert source.read is not None
    raw = source.read(data_dir)
    checksum = raw.checksum()
    verify_checksum(spec, checksum, raw.source, verify)
    check_labels(raw, spec)
    return _split_arrays(raw, spec, checksum, torch.device(device), eval_limit)


def _split_arrays(
    raw: RawData, spec: DatasetSpec, checksum: str, device: torch.device, eval_limit: int | None
) -> DataSplits:
    """``raw`` split by :func:`split_indices`, evaluation splits limited, as device splits."""
    train_idx, val_idx, test_idx = split_indices(
        len(raw.train_labels), spec.val_size, spec.test_size, spec.split_seed
    )
    val_idx = limited(val_idx, eval_limit, spec.split_seed)

    def prepare(images: np.ndarray, labels: np.ndarray) -> Split:
        return to_split(images, labels, raw.max_pixel, spec).to(device)

    if test_idx is None:
        assert raw.test_images is not None and raw.test_labels is not None
        kept = limited(np.arange(len(raw.test_labels)), eval_limit, spec.split_seed)
        test = prepare(raw.test_images[kept], raw.test_labels[kept])
    else:
        test_idx = limited(test_idx, eval_limit, spec.split_seed)
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
        spec_name: A registered dataset: ``"digits"``, ``"fashion-mnist"``, ``"mnist"``,
            ``"cifar10"``, ``"cifar100"``, ``"imagenet"``, ``"imagenet100"`` or a plugin's.
        data_dir: The folder holding the data, as in :func:`load_dataset`.
        class_list: For ``imagenet100``: the class list (``DatasetSpec.class_list``); None uses
            the dataset's default list.

    Returns:
        64 lower-case hex digits, the value for a protocol's ``dataset.sha256``.

    Raises:
        ProtocolError: Unknown dataset name.
        DatasetError: The data is missing, incomplete or corrupt.
    """
    source = dataset_source(spec_name)
    if source.folder_checksum is not None:
        return source.folder_checksum(data_dir, class_list)
    assert source.read is not None
    return source.read(data_dir).checksum()


def dataset_source(name: str, sources: Registry[DatasetSource] | None = None) -> DatasetSource:
    """The registered source of dataset ``name`` (hook ``register_datasets``).

    Args:
        name: A protocol's ``dataset.name``.
        sources: The registry to look in; None takes ``load_registry().datasets``.

    Raises:
        ProtocolError: No plugin registers ``name`` ("did you mean" and the known names), or the
            registered object is not a :class:`DatasetSource`.
    """
    registry = sources if sources is not None else load_registry().datasets
    try:
        source = registry.get(name)
    except PluginError as err:
        raise ProtocolError(err.message, err.hint) from None
    if not isinstance(source, DatasetSource):
        raise ProtocolError(
            f"dataset {name!r} is registered as a {type(source).__name__}, not a DatasetSource",
            "the plugin's register_datasets must return pruning_suite.data.source.DatasetSource "
            "objects",
        )
    return source


def check_spec(spec: DatasetSpec, source: DatasetSource) -> None:
    """Refuse a dataset section that does not fit its source (channels, test split, folder fields).

    Raises:
        ProtocolError: Channels differ from the source's, mean/std not one per channel, a
            ``test_size`` for data with an official test set or none for data without, or image
            folder fields (``eval_resize``, ``class_list``) where they do not apply.
    """
    channels, expected = spec.input_shape[0], source.channels
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
    official = source.has_official_test
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
    _check_folder_fields(spec, source)


def _check_folder_fields(spec: DatasetSpec, source: DatasetSource) -> None:
    """``eval_resize`` and ``class_list`` belong to image folders; ``eval_resize`` is required there."""
    folder = source.is_folder
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
            "remove them (only image-folder datasets such as imagenet use them)",
        )
    if spec.class_list is not None and not source.class_lists:
        raise ProtocolError(
            f"dataset {spec.name!r} uses every class folder, but dataset.class_list is set",
            "remove dataset.class_list (only imagenet100 restricts ImageNet to a class list)",
        )


def check_labels(raw: RawData, spec: DatasetSpec) -> None:
    """Refuse labels outside ``[0, spec.num_classes)``.

    Raises:
        DatasetError: A label is out of range.
    """
    for labels in (raw.train_labels, raw.test_labels):
        if labels is None or not len(labels):
            continue
        if not 0 <= labels.min() <= labels.max() < spec.num_classes:
            raise DatasetError(
                f"{spec.name} data from {raw.source} has labels {labels.min()}..{labels.max()}, "
                f"outside [0, {spec.num_classes}) (dataset.num_classes)",
                "check dataset.num_classes in the protocol, or the data files",
            )
