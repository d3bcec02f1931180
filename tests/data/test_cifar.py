"""CIFAR-10 / CIFAR-100 from torchvision's on-disk layout: search, safe unpickling, checksum, splits.

Every test writes tiny batch files (20 training images per CIFAR-10 batch, 10 test images) in the
real layout, with the real dict structure, so nothing depends on the data being on the machine.
"""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from pruning_suite.data import datasets as data
from pruning_suite.data.datasets import (
    CIFAR_LAYOUTS,
    UNPINNED,
    compute_checksum,
    dataset_checksum,
    load_dataset,
    read_cifar_batch,
    split_indices,
)
from pruning_suite.errors import DatasetError, ProtocolError
from pruning_suite.protocol.spec import DatasetSpec, load_protocol

PER_BATCH, N_TEST, VAL = 20, 10, 10
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _spec(name: str = "cifar10", **update: object) -> DatasetSpec:
    fields: dict[str, object] = {
        "name": name,
        "sha256": UNPINNED,
        "num_classes": 10 if name == "cifar10" else 100,
        "input_shape": (3, 32, 32),
        "mean": MEAN,
        "std": STD,
        "val_size": VAL,
        "split_seed": 0,
    }
    fields.update(update)
    return DatasetSpec.model_validate(fields)


def _batch(rng: np.random.Generator, n: int, classes: int) -> tuple[np.ndarray, list[int]]:
    images = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return images, [int(v) for v in rng.integers(0, classes, size=n)]


def _dump(path: Path, entries: dict, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entries, protocol=protocol))


def _write_cifar10(
    root: Path, seed: int = 0, str_keys: bool = False
) -> dict[str, tuple[np.ndarray, list[int]]]:
    """``root/cifar-10-batches-py/{data_batch_1..5, test_batch}``; returns the written batches.

    Keys are bytes, as ``pickle.load(encoding="bytes")`` returns those of the published Python 2
    files; ``str_keys`` writes str keys, as ``encoding="latin1"`` (torchvision's) returns them.
    """
    rng = np.random.default_rng(seed)
    layout = CIFAR_LAYOUTS["cifar10"]
    written = {}
    for file in (*layout.train_files, *layout.test_files):
        images, labels = _batch(rng, N_TEST if file == "test_batch" else PER_BATCH, 10)
        names = [f"img_{i}.png".encode() for i in range(len(labels))]
        entry = {b"batch_label": file.encode(), b"labels": labels, b"data": images}
        entry |= {b"filenames": names}
        if str_keys:
            entry = {key.decode(): value for key, value in entry.items()}
        _dump(root / layout.folder / file, entry)
        written[file] = (images, labels)
    return written


def _write_cifar100(root: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    """``root/cifar-100-python/{train, test}`` with fine and coarse labels."""
    rng = np.random.default_rng(1)
    written = {}
    for file, n in (("train", 5 * PER_BATCH), ("test", N_TEST)):
        images, fine = _batch(rng, n, 100)
        entry = {
            b"filenames": [b"x.png"] * n,
            b"batch_label": file.encode(),
            b"fine_labels": fine,
            b"coarse_labels": [v // 5 for v in fine],
            b"data": images,
        }
        _dump(root / "cifar-100-python" / file, entry)
        written[file] = (images, fine)
    return written


def _hwc(images: np.ndarray) -> np.ndarray:
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _expected_checksum(written: dict, train: tuple[str, ...], test: tuple[str, ...]) -> str:
    def stack(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        images = np.concatenate([_hwc(written[f][0]) for f in files])
        return images, np.concatenate([np.asarray(written[f][1], dtype=np.int64) for f in files])

    return dataset_checksum(*stack(train), *stack(test))


@pytest.fixture(autouse=True)
def no_env_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test writes is found."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)


# --------------------------------------------------------------------------------------------
# Loading


def test_cifar10_loads_splits_and_normalizes(tmp_path: Path) -> None:
    written = _write_cifar10(tmp_path)
    splits = load_dataset(_spec(), tmp_path)

    n_train = 5 * PER_BATCH
    assert (len(splits.train), len(splits.val), len(splits.test)) == (n_train - VAL, VAL, N_TEST)
    assert splits.train.inputs.shape[1:] == (3, 32, 32)
    assert splits.source == str(tmp_path / "cifar-10-batches-py")
    train_files = CIFAR_LAYOUTS["cifar10"].train_files
    assert splits.sha256 == _expected_checksum(written, train_files, ("test_batch",))

    # The validation split is carved from the concatenated training batches with split_seed.
    raw = np.concatenate([written[f][0] for f in train_files])
    labels = np.concatenate([written[f][1] for f in train_files])
    train_idx, val_idx, _ = split_indices(n_train, VAL, None, 0)
    assert splits.val.labels.tolist() == labels[val_idx].tolist()
    assert splits.train.labels.tolist() == labels[train_idx].tolist()

    # Pixel (c, h, w) of an image is byte c*1024 + h*32 + w of its row, scaled and normalized.
    mean, std = np.array(MEAN).reshape(3, 1, 1), np.array(STD).reshape(3, 1, 1)
    pixels = splits.val.inputs[3].double().numpy() * std + mean
    np.testing.assert_allclose(pixels * 255, raw[val_idx[3]].reshape(3, 32, 32), atol=1e-3)
    test_pixels = splits.test.inputs[-1].double().numpy() * std + mean
    expected = written["test_batch"][0][-1].reshape(3, 32, 32)
    np.testing.assert_allclose(test_pixels * 255, expected, atol=1e-3)
    assert splits.test.labels.tolist() == written["test_batch"][1]


def test_cifar100_uses_the_fine_labels(tmp_path: Path) -> None:
    written = _write_cifar100(tmp_path)
    splits = load_dataset(_spec("cifar100"), tmp_path)
    assert splits.test.labels.tolist() == written["test"][1]
    assert max(splits.train.labels.max(), splits.val.labels.max()) > 20  # fine, not coarse
    assert splits.sha256 == _expected_checksum(written, ("train",), ("test",))
    assert splits.source == str(tmp_path / "cifar-100-python")


def test_checksum_equals_torchvisions_arrays(tmp_path: Path, monkeypatch) -> None:
    """The documented layout: torchvision's ``CIFAR10(root).data`` / ``.targets`` hash the same."""
    torchvision = pytest.importorskip("torchvision")
    _write_cifar10(tmp_path, str_keys=True)
    cifar10 = torchvision.datasets.CIFAR10
    # Our files are not CIFAR's (md5) and there is no batches.meta: skip those two checks.
    monkeypatch.setattr(cifar10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar10, "_load_meta", lambda self: None)
    train, test = (cifar10(str(tmp_path), train=flag) for flag in (True, False))
    expected = dataset_checksum(
        train.data, np.array(train.targets), test.data, np.array(test.targets)
    )
    assert compute_checksum("cifar10", tmp_path) == expected


def test_pinned_checksum_is_verified_and_unpinned_is_only_computed(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    actual = compute_checksum("cifar10", tmp_path)
    assert load_dataset(_spec(sha256=actual), tmp_path).sha256 == actual
    assert load_dataset(_spec(sha256=UNPINNED), tmp_path, verify=True).sha256 == actual
    with pytest.raises(DatasetError, match=actual):
        load_dataset(_spec(sha256="1" * 64), tmp_path)


@pytest.mark.parametrize("bad", ["UNPINNED", "pinned", "abc", "0" * 63])
def test_only_hex_digests_or_unpinned_are_valid_checksums(bad: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        _spec(sha256=bad)


def test_shipped_protocol_spec_loads_tiny_data(tmp_path: Path) -> None:
    """cifar10-resnet56's dataset section works as is, but for the validation size."""
    _write_cifar10(tmp_path)
    spec = load_protocol("cifar10-resnet56").dataset.model_copy(update={"val_size": VAL})
    splits = load_dataset(spec, tmp_path)
    assert splits.sha256 == compute_checksum("cifar10", tmp_path)


def test_files_directly_in_the_data_dir_and_env_root(tmp_path: Path, monkeypatch) -> None:
    _write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    assert load_dataset(_spec(), folder).source == str(folder)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert load_dataset(_spec()).source == str(folder)


# --------------------------------------------------------------------------------------------
# Missing and incomplete data


def test_missing_data_dir_names_the_layout_and_torchvision(tmp_path: Path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    _write_cifar10(elsewhere)
    monkeypatch.setenv(data.DATA_ENV, str(elsewhere))  # not searched: data_dir is authoritative
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(), tmp_path / "empty")
    text = str(info.value)
    assert str(tmp_path / "empty" / "cifar-10-batches-py") in text and "does not exist" in text
    assert "data_batch_1" in text and "data_batch_5" in text and "test_batch" in text
    assert "torchvision.datasets.CIFAR10(DIR, download=True)" in info.value.hint


def test_missing_everywhere_says_nothing_was_searched() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec("cifar100"))
    assert "nowhere" in info.value.message and data.DATA_ENV in info.value.message
    assert (
        "cifar-100-python/" in info.value.hint and "CIFAR100(DIR, download=True)" in info.value.hint
    )


def test_incomplete_folder_names_the_missing_files(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="incomplete: it lacks data_batch_3"):
        load_dataset(_spec(), tmp_path)


# --------------------------------------------------------------------------------------------
# Safe unpickling


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["data", "labels", "top"])
def test_pickle_with_a_forbidden_global_is_refused_unrun(tmp_path: Path, where: str) -> None:
    written = _write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    images, labels = written["data_batch_2"]
    entry: object = {b"data": images, b"labels": labels}
    if where == "top":
        entry = _Exploit(marker)
    else:
        entry[b"data" if where == "data" else b"labels"] = _Exploit(marker)  # type: ignore[index]
    _dump(tmp_path / "cifar-10-batches-py" / "data_batch_2", entry)
    with pytest.raises(DatasetError, match=r"refers to (posix|os|nt)\.system") as info:
        load_dataset(_spec(), tmp_path)
    assert "data_batch_2" in info.value.message and "could run code" in info.value.message
    assert not marker.exists()


def test_builtins_are_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "batch"
    _dump(path, {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": complex(1, 2)})
    with pytest.raises(DatasetError, match=r"builtins\.complex"):
        read_cifar_batch(path)


def _py2_cifar_pickle(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the published files (protocol 2, str = bytes,
    ``numpy.core.multiarray._reconstruct``), assembled opcode by opcode."""

    def text(value: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        if len(value) < 256:
            return b"U" + bytes([len(value)]) + value
        return b"T" + struct.pack("<i", len(value)) + value

    def integer(value: int) -> bytes:  # BININT1 / BININT
        return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)

    dtype = (
        b"cnumpy\ndtype\n" + text(b"u1") + integer(0) + integer(1) + b"\x87R"
        b"(" + integer(3) + text(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb"
    )
    shape = integer(len(images)) + integer(images.shape[1]) + b"\x86"
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + integer(0)
        + b"\x85"
        + text(b"b")
        + b"\x87R("
        + integer(1)
        + shape
        + dtype
        + b"\x89"
        + text(images.tobytes())
        + b"tb"
    )
    label_list = b"](" + b"".join(integer(v) for v in labels) + b"e"
    return b"\x80\x02}(" + text(b"data") + array + text(b"labels") + label_list + b"u."


def test_python2_pickles_of_the_published_files_load(tmp_path: Path) -> None:
    images, labels = _batch(np.random.default_rng(2), 4, 10)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_py2_cifar_pickle(images, labels))
    got_images, got_labels = read_cifar_batch(path)
    assert got_images.shape == (4, 32, 32, 3) and got_images.dtype == np.uint8
    np.testing.assert_array_equal(got_images, _hwc(images))
    assert got_labels.dtype == np.int64 and got_labels.tolist() == labels


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_python3_numpy_pickles_load(tmp_path: Path, protocol: int) -> None:
    """Re-pickled batches (str keys, label arrays); protocol 5 reconstructs with _frombuffer."""
    images, labels = _batch(np.random.default_rng(3), 3, 100)
    path = tmp_path / "train"
    entries = {"data": images, "fine_labels": np.asarray(labels)}
    _dump(path, entries, protocol=protocol)
    got_images, got_labels = read_cifar_batch(path, "fine_labels")
    np.testing.assert_array_equal(got_images, _hwc(images))
    assert got_labels.tolist() == labels


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "no uint8"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "no uint8"),
        ({b"labels": [0, 1]}, "no uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "needs 2 integer 'labels'"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [[0], [1, 2]]}, "integer 'labels'"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "integer 'labels'"),
        ([1, 2, 3], "holds a list, not a dict"),
    ],
)
def test_malformed_batches_are_refused(tmp_path: Path, entries: object, words: str) -> None:
    path = tmp_path / "data_batch_1"
    _dump(path, entries)
    with pytest.raises(DatasetError, match=words) as info:
        read_cifar_batch(path)
    assert str(path) in info.value.message


def test_truncated_batch_names_the_file(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="cannot be unpickled") as info:
        load_dataset(_spec(), tmp_path)
    assert str(path) in info.value.message and "replace" in info.value.hint


def test_labels_beyond_num_classes_are_refused(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    with pytest.raises(DatasetError, match="outside"):
        load_dataset(_spec("cifar100", num_classes=10), tmp_path)


def test_cifar_spec_must_be_rgb() -> None:
    spec = _spec(input_shape=(1, 32, 32), mean=(0.5,), std=(0.25,))
    with pytest.raises(ProtocolError, match="RGB"):
        load_dataset(spec)
