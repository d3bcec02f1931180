"""Image-folder datasets on disk (ImageNet, ImageNet-100): class lists, search, scan, checksum.

torchvision's ImageFolder layout, ``ROOT/imagenet/train/<class>/`` and ``val/``, is listed, never
loaded into memory; its checksum covers the files' paths and sizes (:func:`folder_checksum`).
:mod:`pruning_suite.data.imagefolder` decodes the listed images batch by batch. Torch-free.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ProtocolError
from .source import DATA_ENV, not_a_folder, search_roots

__all__ = [
    "CLASS_LISTS",
    "FOLDER_DATASETS",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "FolderLayout",
    "FolderScan",
    "find_image_folder",
    "folder_checksum",
    "image_folder_checksum",
    "read_class_list",
    "scan_image_folder",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""torchvision's ``IMG_EXTENSIONS``: the file suffixes read as images (case-insensitive)."""


CLASS_LISTS = {
    "imagenet100-classes-v1.txt": "a215e2f016446332e8f770cc207a18d0ae2ac0df4d7dcc92ade497d459a03be5",
}
"""Committed class lists -> sha256 of their parsed ids (``"\\n".join(ids) + "\\n"``, UTF-8).

The pin covers the ids only, so comments and line endings may change but the list never does.
"""


_CHECKSUM_HEADER = b"pruning-suite image-folder v1\n"


SPLITS = ("train", "val")


@dataclass(frozen=True)
class FolderLayout:
    """Where one image-folder dataset is looked for, and which classes it uses.

    Attributes:
        folders: Sub-folders of a data root tried in order, before the root itself.
        default_class_list: The class list used when none is named (None: every class folder).
    """

    folders: tuple[str, ...]
    default_class_list: str | None


FOLDER_DATASETS = {
    "imagenet": FolderLayout(("imagenet",), None),
    "imagenet100": FolderLayout(("imagenet100", "imagenet"), "imagenet100-classes-v1.txt"),
}
"""The image-folder datasets a protocol can name."""


@dataclass(frozen=True, eq=False)
class FolderScan:
    """The images of one image-folder dataset, as listed on disk.

    Attributes:
        root: The folder holding ``train/`` and ``val/``.
        classes: Class folder names; label ``i`` is ``classes[i]``.
        files: Per split (``"train"``, ``"val"``): relative paths under ``root/<split>``
            (``/``-separated), sorted by class then path.
        labels: Per split: ``[N]`` int64 labels of ``files``.
        sizes: Per split: ``[N]`` int64 file sizes in bytes.
    """

    root: Path
    classes: tuple[str, ...]
    files: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    sizes: dict[str, np.ndarray]

    def checksum(self) -> str:
        """:func:`folder_checksum` of these files."""
        return folder_checksum({s: zip(self.files[s], self.sizes[s], strict=True) for s in SPLITS})


def read_class_list(name: str) -> tuple[str, ...]:
    """The class ids of a committed class list (``pruning_suite/protocol/files/<name>``).

    Args:
        name: A key of :data:`CLASS_LISTS`, e.g. ``"imagenet100-classes-v1.txt"``.

    Returns:
        The ids in file order (sorted), one per non-comment line; text after ``#`` is ignored.

    Raises:
        ProtocolError: Unknown list, or its ids do not match the pinned sha256 (the file was
            edited; a new list must be a new file).
    """
    if name not in CLASS_LISTS:
        raise ProtocolError(
            f"unknown class list {name!r}",
            f"use one of: {', '.join(sorted(CLASS_LISTS))} (shipped in pruning_suite/protocol/files)",
        )
    text = (
        resources.files("pruning_suite.protocol.files").joinpath(name).read_text(encoding="utf-8")
    )
    ids = tuple(line.split("#", 1)[0].strip() for line in text.splitlines())
    ids = tuple(i for i in ids if i)
    digest = hashlib.sha256(("\n".join(ids) + "\n").encode()).hexdigest()
    if digest != CLASS_LISTS[name]:
        raise ProtocolError(
            f"class list {name} was modified: its ids hash to {digest}, not the pinned "
            f"{CLASS_LISTS[name]}",
            "restore the shipped file; a different class list must be a new file and protocol",
        )
    return ids


def find_image_folder(name: str, data_dir: Path | str | None) -> Path:
    """The folder holding ``train/`` and ``val/`` of dataset ``name`` (see the module docstring).

    Raises:
        DatasetError: No candidate holds them; the message lists where it looked.
    """
    layout = FOLDER_DATASETS[name]
    if data_dir is not None:
        roots = [(Path(data_dir).expanduser(), "--data-dir")]
    else:
        roots = search_roots(name)
    searched = []
    for root, origin in roots:
        for folder in (*(root / sub for sub in layout.folders), root):
            if any(os.path.isdir(folder / split) for split in SPLITS):
                return folder
            searched.append(f"{folder} ({origin}{not_a_folder(folder)})")
    where = "; ".join(searched) or f"nowhere: no --data-dir given and ${DATA_ENV} is not set"
    raise DatasetError(
        f"{name} not found: no folder with train/ and val/ in {where}"
        + ("; with --data-dir given, $" + DATA_ENV + " is not searched" if data_dir else ""),
        _missing_hint(name),
    )


def scan_image_folder(
    root: Path, classes: Sequence[str] | None, num_classes: int, name: str = "image folder"
) -> FolderScan:
    """List every image of ``root/train`` and ``root/val`` with its label and size.

    Args:
        root: The folder holding ``train/`` and ``val/``.
        classes: The class folders to use, labelled by position; None uses every class folder
            of ``train/`` in sorted order (then ``val/`` must hold the same ones).
        num_classes: The protocol's number of classes; must equal the number of classes used.
        name: The dataset's name, for messages.

    Returns:
        The scan; files are sorted by class, then by path within the class.

    Raises:
        DatasetError: A split folder is missing, the class folders of train/ and val/ differ,
            a needed class folder is missing or holds no image, or the class count is not
            ``num_classes``.
    """
    for split in SPLITS:
        if not os.path.isdir(root / split):
            raise DatasetError(
                f"{name} folder {root} has no {split}/ folder{not_a_folder(root / split)}",
                _missing_hint(name),
            )
    used = tuple(classes) if classes is not None else _discover_classes(root, name)
    if len(used) != num_classes:
        raise DatasetError(
            f"{name} folder {root} has {len(used)} classes, but the protocol's num_classes is "
            f"{num_classes}",
            _missing_hint(name),
        )
    files, labels, sizes = {}, {}, {}
    for split in SPLITS:
        files[split], labels[split], sizes[split] = _scan_split(root / split, used, name)
    return FolderScan(root, used, files, labels, sizes)


def folder_checksum(entries: dict[str, object]) -> str:
    """sha256 of an image folder's file list: relative paths and sizes, not contents.

    The byte recipe: ``b"pruning-suite image-folder v1\\n"``, then the lines
    ``f"{split}/{path}\\t{size}\\n"`` (UTF-8) of every image, for the splits ``train`` and
    ``val``, sorted by their text; ``path`` is ``/``-separated, relative to ``ROOT/<split>``
    (``n01440764/n01440764_10026.JPEG``); ``size`` the file's size in bytes, in decimal.
    Labels follow from the paths' class folder and the class list, so they are covered too.

    Args:
        entries: ``{"train": [(path, size), ...], "val": [...]}``.

    Returns:
        64 lower-case hex digits.
    """
    lines = sorted(
        f"{split}/{path}\t{int(size)}\n" for split in SPLITS for path, size in entries[split]
    )
    digest = hashlib.sha256(_CHECKSUM_HEADER)
    for line in lines:
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def image_folder_checksum(
    name: str, data_dir: Path | str | None = None, class_list: str | None = None
) -> str:
    """:func:`folder_checksum` of dataset ``name`` as found (for ``compute_checksum``)."""
    layout = FOLDER_DATASETS[name]
    chosen = class_list or layout.default_class_list
    classes = read_class_list(chosen) if chosen else None
    root = find_image_folder(name, data_dir)
    num_classes = len(classes) if classes is not None else len(_discover_classes(root, name))
    return scan_image_folder(root, classes, num_classes, name).checksum()


def _discover_classes(root: Path, name: str) -> tuple[str, ...]:
    found = {split: _class_folders(root / split) for split in SPLITS}
    if found["train"] != found["val"]:
        only_train = sorted(set(found["train"]) - set(found["val"]))
        only_val = sorted(set(found["val"]) - set(found["train"]))
        raise DatasetError(
            f"{name} folder {root}: train/ and val/ hold different class folders (only in "
            f"train/: {_few(only_train)}; only in val/: {_few(only_val)})",
            "both splits need one folder per class, the same names in each (torchvision's layout)",
        )
    return found["train"]


def _class_folders(folder: Path) -> tuple[str, ...]:
    with os.scandir(folder) as entries:
        return tuple(sorted(e.name for e in entries if e.is_dir() and not e.name.startswith(".")))


def _scan_split(
    folder: Path, classes: Sequence[str], name: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    files: list[str] = []
    labels: list[int] = []
    sizes: list[int] = []
    missing, empty = [], []
    for label, cls in enumerate(classes):
        if not os.path.isdir(folder / cls):
            missing.append(cls)
            continue
        found = _images_under(folder, cls)
        if not found:
            empty.append(cls)
        for path, size in found:
            files.append(path)
            sizes.append(size)
            labels.append(label)
    if missing or empty:
        parts = [f"lacks class folders {_few(missing)}" if missing else ""]
        parts.append(f"has class folders without images {_few(empty)}" if empty else "")
        raise DatasetError(
            f"{name} folder {folder} {' and '.join(p for p in parts if p)}",
            f"every class needs a folder with images ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"train/ and val/; {_missing_hint(name)}",
        )
    return files, np.asarray(labels, dtype=np.int64), np.asarray(sizes, dtype=np.int64)


def _images_under(folder: Path, cls: str) -> list[tuple[str, int]]:
    """``(relative path, size)`` of every image under ``folder/cls``, sorted, links followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder / cls, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        relative = Path(dirpath).relative_to(folder).as_posix()
        for file in filenames:
            if file.lower().endswith(IMAGE_EXTENSIONS) and not file.startswith("."):
                path = os.path.join(dirpath, file)
                try:
                    size = os.stat(path).st_size
                except OSError as err:
                    raise DatasetError(
                        f"cannot read image {path}: {err.strerror or err}",
                        "fix the file's permissions or remove the broken link",
                    ) from err
                found.append((f"{relative}/{file}", size))
    return sorted(found)


def _few(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown or "none"


def _missing_hint(name: str) -> str:
    layout = FOLDER_DATASETS.get(name)
    sub = layout.folders[0] if layout else name
    classes = (
        f"the 100 class folders of {layout.default_class_list} (a folder of symbolic links into "
        "full ImageNet works; DIR/imagenet/ with all 1000 classes works too)"
        if layout and layout.default_class_list
        else "one folder per class (the 1000 WordNet ids)"
    )
    return (
        f"put torchvision's ImageFolder layout in DIR/{sub}/: train/ and val/, each with "
        f"{classes}, and pass --data-dir DIR or set {DATA_ENV}=DIR. For ImageNet, "
        "'torchvision.datasets.ImageNet(DIR)' arranges the official archives this way (val/ "
        "sorted into class folders); nothing is downloaded on these machines"
    )
