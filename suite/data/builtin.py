"""The suite's own datasets, registered as a core plugin (see ``CORE_PLUGINS``).

Each is a :class:`~pruning_suite.data.source.DatasetSource`, registered through the same hook
``register_datasets`` a third-party plugin implements. The readers are torch-free; the image-folder
loader imports torch only when a protocol on ImageNet is loaded.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..contract.hookspecs import hookimpl
from .source import DatasetSource, RawData, whole_numbers

if TYPE_CHECKING:
    from ..protocol.spec import DatasetSpec

__all__ = ["read_digits", "register_datasets"]


def read_digits(data_dir: Path | str | None = None) -> RawData:
    """scikit-learn's embedded ``load_digits()``: 1797 8x8 grayscale images, values 0..16.

    Args:
        data_dir: Ignored (the data is embedded in scikit-learn).
    """
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return RawData(
        train_images=whole_numbers(bunch.images, "uint8", "sklearn digits images"),
        train_labels=np.asarray(bunch.target, dtype=np.int64),
        test_images=None,
        test_labels=None,
        max_pixel=16.0,
        source=f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
    )


def load_folder(
    spec: DatasetSpec,
    data_dir: Path | str | None,
    device: Any,
    verify: bool,
    eval_limit: int | None,
) -> Any:
    """:func:`pruning_suite.data.imagefolder.load_image_folder`, importing torch when called."""
    from .imagefolder import load_image_folder

    return load_image_folder(spec, data_dir, device, verify, eval_limit)


@hookimpl
def register_datasets() -> dict[str, DatasetSource]:
    """digits, MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100, ImageNet and ImageNet-100."""
    from .cifar import read_cifar_dataset
    from .folderscan import image_folder_checksum
    from .idx import read_idx_dataset

    def arrays(name: str, channels: int, official: bool, read: Any, about: str) -> DatasetSource:
        return DatasetSource(name, channels, official, read=read, description=about)

    def folder(name: str, class_lists: bool, about: str) -> DatasetSource:
        checksum = partial(image_folder_checksum, name)
        return DatasetSource(
            name, 3, True, load_folder=load_folder, folder_checksum=checksum,
            class_lists=class_lists, description=about,
        )  # fmt: skip

    sources = [
        arrays("digits", 1, False, read_digits, "scikit-learn's embedded 8x8 digits"),
        arrays("mnist", 1, True, partial(read_idx_dataset, "mnist"), "MNIST, IDX files"),
        arrays(
            "fashion-mnist",
            1,
            True,
            partial(read_idx_dataset, "fashion-mnist"),
            "Fashion-MNIST, IDX files",
        ),  # fmt: skip
        arrays("cifar10", 3, True, partial(read_cifar_dataset, "cifar10"), "CIFAR-10, batches"),
        arrays("cifar100", 3, True, partial(read_cifar_dataset, "cifar100"), "CIFAR-100, batches"),
        folder("imagenet", False, "ImageNet-1k, torchvision's ImageFolder layout"),
        folder("imagenet100", True, "ImageNet-100 (a committed class list), ImageFolder layout"),
    ]
    return {source.name: source for source in sources}
