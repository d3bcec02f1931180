"""MNIST-style IDX files (MNIST, Fashion-MNIST): finding the four files, decoding them.

Files are gzipped or not. A ``data_dir`` (the CLI's ``--data-dir``) is authoritative: the files
must be there, or loading fails naming it; nothing else is searched. Without it they are looked
for in (1) ``$PRUNING_SUITE_DATA``, (2) the system folders of
:data:`~pruning_suite.data.source.SYSTEM_DATA_DIRS` (for Fashion-MNIST the Debian package
``dataset-fashion-mnist``). Within each root the files may sit in torchvision's layout
``ROOT/FashionMNIST/raw/`` (``ROOT/MNIST/raw/``) or directly in ``ROOT``. Torch-free.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .source import DATA_ENV, SYSTEM_DATA_DIRS, RawData, find_data_folder

__all__ = [
    "IDX_FILES",
    "TORCHVISION_FOLDERS",
    "read_idx",
    "read_idx_dataset",
]

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of MNIST and Fashion-MNIST, each optionally with a ``.gz`` suffix."""


TORCHVISION_FOLDERS = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
"""IDX datasets -> the folder torchvision keeps them in (``ROOT/<folder>/raw/``)."""


# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); all big-endian.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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


def read_idx_dataset(name: str, data_dir: Path | str | None) -> RawData:
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
    return RawData(train_images, train_labels, test_images, test_labels, 255.0, str(folder))


def _find_idx_folder(name: str, data_dir: Path | str | None) -> tuple[Path, dict[str, Path]]:
    """The folder holding all four IDX files: only in ``data_dir`` when given, else searched."""
    return find_data_folder(
        name,
        data_dir,
        look_in=lambda root: _idx_folder_in(name, root),
        folders=lambda root: _folders(name, root),
        expected=_expected_files(),
        not_searched=f"${DATA_ENV} and the system folders are",
        hint=_missing_hint(name),
        given_hint=_missing_hint(name, given=True),
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
    return root / TORCHVISION_FOLDERS[name] / "raw", root


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
        f"the four IDX files in DIR/{TORCHVISION_FOLDERS[name]}/raw/ (torchvision's layout) or "
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


MAX_IDX_BYTES = 1 << 30
"""The largest decoded IDX file read (1 GiB; Fashion-MNIST's training images are 47 MB): the
header's size is checked before anything is decompressed, so a small gzip that expands to
gigabytes is refused at once."""


def _read_idx_bytes(path: Path, hint: str) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic number; never more than
    the header declares plus one byte (so an over-long file is still told apart)."""
    try:
        with path.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
            handle.seek(0)
            if not gzipped:
                return _bounded(handle, path, hint)
            with gzip.GzipFile(fileobj=handle) as stream:
                return _bounded(stream, path, hint)
    except (OSError, EOFError, zlib.error) as err:
        if isinstance(err, OSError) and not isinstance(err, gzip.BadGzipFile) and err.errno:
            raise DatasetError(
                f"cannot read dataset file {path}: {err.strerror or err}", hint
            ) from err
        message = f"dataset file {path} is a truncated or corrupt gzip file: {err}"
        raise DatasetError(message, hint) from err


def _bounded(stream: Any, path: Path, hint: str) -> bytes:
    """Read the IDX header from ``stream``, refuse a declared size over :data:`MAX_IDX_BYTES`,
    then read at most the declared payload and one byte more."""
    head = stream.read(4)
    if len(head) < 4 or head[2] not in _IDX_DTYPES:
        return head  # not IDX: _parse_idx says so
    dims_raw = stream.read(4 * head[3])
    if len(dims_raw) < 4 * head[3]:
        return head + dims_raw  # truncated header: _parse_idx says so
    dims = [int.from_bytes(dims_raw[i : i + 4], "big") for i in range(0, len(dims_raw), 4)]
    payload = math.prod(dims) * _IDX_DTYPES[head[2]].itemsize
    if 4 + len(dims_raw) + payload > MAX_IDX_BYTES:
        raise DatasetError(
            f"dataset file {path} declares an IDX array of shape {tuple(dims)} "
            f"({4 + len(dims_raw) + payload} bytes decoded), over the {MAX_IDX_BYTES} byte "
            "limit: the file is truncated or its header is corrupt",
            hint,
        )
    return head + dims_raw + stream.read(payload + 1)


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
