"""CIFAR-10 and CIFAR-100: torchvision's pickled batches, read without running code.

``ROOT/cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) and
``ROOT/cifar-100-python/`` (``train``, ``test``), or the same files directly in ``ROOT``. ``ROOT``
is the ``data_dir`` when given (the only place searched), else ``PRUNING_SUITE_DATA``; there is no
system folder. The pickles are read by a restricted unpickler (:func:`read_cifar_batch`) that
refuses every global except NumPy's array reconstruction, so a tampered file cannot run code.
Torch-free.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .source import DATA_ENV, RawData, find_data_folder

__all__ = [
    "CIFAR_LAYOUTS",
    "CifarLayout",
    "read_cifar_batch",
    "read_cifar_dataset",
]


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


def read_cifar_dataset(name: str, data_dir: Path | str | None) -> RawData:
    layout = CIFAR_LAYOUTS[name]
    folder = _find_cifar_folder(name, data_dir)

    def read(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        batches = [read_cifar_batch(folder / file, layout.label_key) for file in files]
        return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])

    train_images, train_labels = read(layout.train_files)
    test_images, test_labels = read(layout.test_files)
    return RawData(train_images, train_labels, test_images, test_labels, 255.0, str(folder))


def _find_cifar_folder(name: str, data_dir: Path | str | None) -> Path:
    """The folder holding every batch file: only under ``data_dir`` when given, else the env."""
    return find_data_folder(
        name,
        data_dir,
        look_in=lambda root: _cifar_folder_in(name, root),
        folders=lambda root: (root / CIFAR_LAYOUTS[name].folder, root),
        expected=_cifar_files(name),
        not_searched=f"${DATA_ENV} is",
        hint=_cifar_missing_hint(name),
        given_hint=_cifar_missing_hint(name),
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
