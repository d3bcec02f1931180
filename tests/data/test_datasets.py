"""Datasets: checksums, IDX decoding and search, seeded splits, normalization, augmentation."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pruning_suite.data import datasets as data
from pruning_suite.data import idx
from pruning_suite.data.datasets import (
    IDX_FILES,
    Split,
    augment,
    compute_checksum,
    dataset_checksum,
    load_dataset,
    read_idx,
    split_indices,
)
from pruning_suite.data.idx import TORCHVISION_FOLDERS
from pruning_suite.errors import DatasetError, ProtocolError
from pruning_suite.protocol.spec import Augmentation, DatasetSpec

# Regression pins: a change here means every protocol on this data changes.
DIGITS_SHA256 = "0b495c25c7db751f9f2d67d02ed8a720325fa0c78f8a7a1daa0aa8f5b9e3cd3a"
FASHION_MNIST_SHA256 = "028c7a574bf9c7f86776f147157a9889d4db6d8b20ecdd074f497c8156f73515"
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
NO_CHECK = "0" * 64


def _spec(name: str = "fashion-mnist", **update: object) -> DatasetSpec:
    fields: dict[str, object] = {
        "name": name,
        "sha256": DIGITS_SHA256 if name == "digits" else NO_CHECK,
        "num_classes": 10,
        "input_shape": (1, 8, 8) if name == "digits" else (1, 28, 28),
        "mean": (0.5,),
        "std": (0.25,),
        "val_size": 144 if name == "digits" else 5,
        "test_size": 360 if name == "digits" else None,
        "split_seed": 0,
    }
    fields.update(update)
    return DatasetSpec.model_validate(fields)


@pytest.fixture
def no_system_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide $PRUNING_SUITE_DATA and the Debian folder, so only what a test writes is found."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setitem(data.SYSTEM_DATA_DIRS, "fashion-mnist", ())


# ------------------------------------------------------------------------------------------
# digits


def test_digits_split_sizes_and_pinned_checksum() -> None:
    splits = load_dataset(_spec("digits", sha256=DIGITS_SHA256))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1293, 144, 360)
    assert splits.train.inputs.shape == (1293, 1, 8, 8)
    assert splits.train.inputs.dtype == torch.float32 and splits.train.labels.dtype == torch.int64
    assert splits.sha256 == DIGITS_SHA256 == compute_checksum("digits")
    assert "load_digits" in splits.source


def test_digits_loads_are_deterministic() -> None:
    first, second = load_dataset(_spec("digits")), load_dataset(_spec("digits"))
    for name in ("train", "val", "test"):
        a, b = getattr(first, name), getattr(second, name)
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    other = load_dataset(_spec("digits", split_seed=1))
    assert not torch.equal(other.test.labels, first.test.labels)


def test_digits_splits_are_disjoint_and_match_their_indices() -> None:
    from sklearn.datasets import load_digits

    train, val, test = split_indices(1797, 144, 360, seed=0)
    assert test is not None
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1797))
    # Pinned: numpy's RandomState stream is frozen (NEP 19), so the split never moves.
    assert test[:6].tolist() == [4, 5, 6, 9, 14, 17]
    assert val[:6].tolist() == [1, 2, 22, 27, 45, 48]
    raw = load_digits()
    splits = load_dataset(_spec("digits", mean=(0.0,), std=(1.0,)))
    for split, kept in ((splits.train, train), (splits.val, val), (splits.test, test)):
        expected = torch.from_numpy(raw.images[kept] / 16.0).float().unsqueeze(1)
        assert torch.allclose(split.inputs, expected)
        assert torch.equal(split.labels, torch.from_numpy(raw.target[kept]).long())


def test_digits_normalization_centers_the_training_data() -> None:
    plain = load_dataset(_spec("digits", mean=(0.0,), std=(1.0,))).train.inputs
    mean, std = plain.mean().item(), plain.std().item()
    normalized = load_dataset(_spec("digits", mean=(mean,), std=(std,))).train.inputs
    assert abs(normalized.mean().item()) < 1e-5
    assert normalized.std().item() == pytest.approx(1.0, abs=1e-5)


def test_R_DATA_1_digits_checksum_mismatch_is_refused() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec("digits", sha256="1" * 64))
    assert "1" * 64 in str(info.value) and DIGITS_SHA256 in str(info.value)
    assert "corrupted" in str(info.value)


@pytest.mark.parametrize(
    ("update", "words"),
    [
        ({"test_size": None}, "no official test set"),
        ({"val_size": 1500}, "leaving none for training"),
        ({"input_shape": (3, 8, 8), "mean": (0.5,) * 3, "std": (0.25,) * 3}, "grayscale"),
    ],
)
def test_inconsistent_digits_spec_is_a_protocol_error(update: dict, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        load_dataset(_spec("digits", **update))


def test_mean_std_per_channel_is_checked_even_for_an_unvalidated_spec() -> None:
    fields = _spec("digits").model_dump() | {"mean": (0.5, 0.5)}
    with pytest.raises(ValueError, match="one value per input channel"):
        DatasetSpec.model_validate(fields)
    with pytest.raises(ProtocolError, match="one value per channel"):
        load_dataset(DatasetSpec.model_construct(**fields))


# ------------------------------------------------------------------------------------------
# IDX files


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + ".gz") if gz else path
    target.write_bytes(gzip.compress(payload) if gz else payload)
    return target


def _tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        IDX_FILES[0]: rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        IDX_FILES[1]: (np.arange(20) % 10).astype(np.uint8),
        IDX_FILES[2]: rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        IDX_FILES[3]: (np.arange(10) % 10).astype(np.uint8),
    }


def _write_dataset(folder: Path, arrays: dict[str, np.ndarray], gz: bool) -> None:
    for stem, array in arrays.items():
        _write_idx(folder / stem, array, gz)


def _checksum_of(arrays: dict[str, np.ndarray]) -> str:
    return dataset_checksum(*(arrays[stem] for stem in IDX_FILES))


def test_checksum_follows_the_documented_byte_recipe() -> None:
    arrays = _tiny_arrays()
    digest = hashlib.sha256()
    for array in arrays.values():
        if array.ndim == 3:
            digest.update(f"uint8 {','.join(map(str, array.shape))}\n".encode() + array.tobytes())
        else:
            digest.update(f"int64le {len(array)}\n".encode() + array.astype("<i8").tobytes())
    assert _checksum_of(arrays) == digest.hexdigest()
    labels_as_int64 = {k: v.astype(np.int64) if v.ndim == 1 else v for k, v in arrays.items()}
    assert _checksum_of(labels_as_int64) == digest.hexdigest()
    with pytest.raises(ValueError):
        dataset_checksum(arrays[IDX_FILES[0]], arrays[IDX_FILES[1]], arrays[IDX_FILES[2]])


def test_gz_and_plain_in_torchvision_layout_give_the_same_data(
    tmp_path: Path, no_system_data: None
) -> None:
    arrays = _tiny_arrays()
    _write_dataset(tmp_path / "FashionMNIST" / "raw", arrays, gz=True)
    _write_dataset(tmp_path / "MNIST" / "raw", arrays, gz=False)
    checksum = _checksum_of(arrays)
    assert compute_checksum("fashion-mnist", tmp_path) == checksum
    assert compute_checksum("mnist", tmp_path) == checksum

    for name in ("fashion-mnist", "mnist"):
        for spec in (_spec(name), _spec(name, sha256=checksum)):
            splits = load_dataset(spec, tmp_path, verify=spec.sha256 != NO_CHECK)
            assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 10)
            assert splits.source == str(tmp_path / TORCHVISION_FOLDERS[name] / "raw")
            expected = (torch.from_numpy(arrays[IDX_FILES[2]]).float() / 255 - 0.5) / 0.25
            assert torch.allclose(splits.test.inputs[:, 0], expected)
            assert splits.test.labels.tolist() == arrays[IDX_FILES[3]].tolist()
            train, val, _ = split_indices(20, 5, None, 0)
            assert splits.val.labels.tolist() == arrays[IDX_FILES[1]][val].tolist()
            assert splits.train.labels.tolist() == arrays[IDX_FILES[1]][train].tolist()


def test_files_directly_in_root_and_search_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_data: None
) -> None:
    first, second = _tiny_arrays(1), _tiny_arrays(2)
    _write_dataset(tmp_path / "given", first, gz=False)
    _write_dataset(tmp_path / "env", second, gz=True)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert compute_checksum("mnist", tmp_path / "given") == _checksum_of(first)
    assert compute_checksum("mnist") == _checksum_of(second)
    splits = load_dataset(_spec("mnist"), verify=False)
    assert splits.source == str(tmp_path / "env")


def test_resize_to_input_shape_is_bilinear_before_normalization(
    tmp_path: Path, no_system_data: None
) -> None:
    arrays = _tiny_arrays()
    _write_dataset(tmp_path, arrays, gz=True)
    splits = load_dataset(_spec(input_shape=(1, 32, 32)), tmp_path, verify=False)
    assert splits.test.inputs.shape == (10, 1, 32, 32)
    raw = torch.from_numpy(arrays[IDX_FILES[2]]).float().unsqueeze(1) / 255
    resized = F.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.allclose(splits.test.inputs, (resized - 0.5) / 0.25, atol=1e-6)


def test_wrong_checksum_is_refused(tmp_path: Path, no_system_data: None) -> None:
    arrays = _tiny_arrays()
    _write_dataset(tmp_path / "FashionMNIST" / "raw", arrays, gz=True)
    corrupted = _checksum_of(arrays)[:-1] + ("0" if _checksum_of(arrays)[-1] != "0" else "1")
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(sha256=corrupted), tmp_path)
    message = str(info.value)
    assert corrupted in message and _checksum_of(arrays) in message
    assert "expects" in message and "different data" in message


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_is_named(tmp_path: Path, gz: bool, no_system_data: None) -> None:
    arrays = _tiny_arrays()
    _write_dataset(tmp_path, arrays, gz=gz)
    victim = next(tmp_path.glob("train-images-idx3-ubyte*"))
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    with pytest.raises(DatasetError, match="truncated") as info:
        load_dataset(_spec(), tmp_path, verify=False)
    assert str(victim) in str(info.value)


def test_not_an_idx_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "labels"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="not an IDX file") as info:
        read_idx(bad)
    assert str(bad) in str(info.value)
    long = _write_idx(tmp_path / "long", np.zeros(3, np.uint8), gz=False)
    long.write_bytes(long.read_bytes() + b"\x00")
    with pytest.raises(DatasetError, match="longer than its header"):
        read_idx(long)


def _header_bytes(dims: tuple[int, ...], code: int = 8) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes()


def _write_header(path: Path, dims: tuple[int, ...], payload: bytes = b"", code: int = 8) -> Path:
    path.write_bytes(_header_bytes(dims, code) + payload)
    return path


@pytest.mark.parametrize(
    "dims",
    [
        (2**31, 2**31, 4),  # 2**64 elements: wraps to 0 in int64
        (2**32 - 1, 2**32 - 1, 2**32 - 1),
        (2**31, 2**31, 2),  # 2**63: wraps negative in int64
        (3, 2**32 - 1),
    ],
)
def test_header_dims_beyond_the_payload_are_named(tmp_path: Path, dims: tuple[int, ...]) -> None:
    bad = _write_header(tmp_path / "huge", dims, payload=bytes(6))
    with pytest.raises(DatasetError, match="truncated or its header is corrupt") as info:
        read_idx(bad)
    assert str(bad) in str(info.value) and str(dims) in str(info.value)
    assert str(math.prod(dims) + 4 + 4 * len(dims)) in str(info.value)


def test_float_labels_are_refused_not_a_value_error(tmp_path: Path, no_system_data: None) -> None:
    arrays = _tiny_arrays()
    _write_dataset(tmp_path, arrays, gz=False)
    labels = np.full(20, np.nan, dtype=">f4").tobytes()
    _write_header(tmp_path / IDX_FILES[1], (20,), labels, code=0x0D)
    with pytest.raises(DatasetError, match=r"labels \[N\] integers, got .* and float32") as info:
        load_dataset(_spec(), tmp_path, verify=False)
    assert str(tmp_path) in str(info.value) and "re-download" in str(info.value)


@pytest.mark.parametrize(
    "error",
    [
        zlib.error("invalid distance too far back"),
        EOFError("Compressed file ended before the end-of-stream marker was reached"),
        OSError("Input/output error"),
        ValueError("cannot reshape array"),
    ],
)
def test_any_decoding_failure_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_data: None, error: Exception
) -> None:
    _write_dataset(tmp_path, _tiny_arrays(), gz=True)

    def broken(raw: bytes, path: Path, hint: str) -> np.ndarray:
        raise error

    monkeypatch.setattr(idx, "_parse_idx", broken)
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(), tmp_path, verify=False)
    message = str(info.value)
    assert str(tmp_path / f"{IDX_FILES[0]}.gz") in message and type(error).__name__ in message
    assert "reinstall or re-download" in message
    assert info.value.__cause__ is error


@pytest.mark.parametrize(
    "damage",
    [
        lambda gz: gz[:10] + bytes(b ^ 0x5A for b in gz[10:]),  # corrupt deflate stream
        lambda gz: gz[: len(gz) // 3],  # cut off mid-stream
        lambda gz: gz[:-4],  # cut off in the trailer
        lambda gz: gz + b"\x1f\x8bgarbage",  # a second, broken member
        lambda gz: gz[:-8] + bytes(8),  # wrong CRC and size
    ],
)
def test_damaged_gzip_is_a_dataset_error(tmp_path: Path, damage: Callable[[bytes], bytes]) -> None:
    victim = _write_idx(tmp_path / "images", np.arange(600, dtype=np.uint8), gz=True)
    victim.write_bytes(damage(victim.read_bytes()))
    with pytest.raises(DatasetError) as info:
        read_idx(victim)
    assert str(victim) in str(info.value) and "reinstall or re-download" in str(info.value)


def test_incomplete_folder_names_the_missing_file(tmp_path: Path, no_system_data: None) -> None:
    _write_dataset(tmp_path, _tiny_arrays(), gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="incomplete: it lacks t10k-labels-idx1-ubyte"):
        load_dataset(_spec(), tmp_path, verify=False)


def test_labels_outside_num_classes_are_refused(tmp_path: Path, no_system_data: None) -> None:
    _write_dataset(tmp_path, _tiny_arrays(), gz=False)
    with pytest.raises(DatasetError, match=r"outside \[0, 5\)"):
        load_dataset(_spec(num_classes=5), tmp_path, verify=False)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path, no_system_data: None) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(), tmp_path / "nowhere", verify=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message
    assert all(stem in message for stem in IDX_FILES)
    assert str(tmp_path / "nowhere" / "FashionMNIST" / "raw") in message
    assert f"--data-dir {tmp_path / 'nowhere'}, does not exist" in message


def test_missing_mnist_names_every_searched_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_system_data: None
) -> None:
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    with pytest.raises(DatasetError) as info:
        compute_checksum("mnist")
    message = str(info.value)
    folder = tmp_path / "env"
    assert str(folder / "MNIST" / "raw") in message and f"{folder} ($" in message
    assert all(stem in message for stem in IDX_FILES)
    assert "DIR/MNIST/raw/" in message and "nothing is downloaded" in message


@pytest.mark.parametrize("problem", ["missing", "file", "empty", "wrong-dataset"])
def test_explicit_data_dir_is_authoritative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    fallback = tmp_path / "env"
    _write_dataset(fallback / "FashionMNIST" / "raw", _tiny_arrays(), gz=True)
    _write_dataset(fallback / "MNIST" / "raw", _tiny_arrays(), gz=True)
    monkeypatch.setenv(data.DATA_ENV, str(fallback))
    monkeypatch.setitem(data.SYSTEM_DATA_DIRS, "fashion-mnist", ((fallback, "system folder"),))
    given = tmp_path / "given"
    if problem == "file":
        given.write_bytes(b"not a folder")
    elif problem == "empty":
        (given / "FashionMNIST" / "raw").mkdir(parents=True)
    elif problem == "wrong-dataset":  # MNIST files where Fashion-MNIST is asked for
        _write_dataset(given / "MNIST" / "raw", _tiny_arrays(), gz=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(), given, verify=False)
    message = str(info.value)
    assert f"--data-dir {given}" in message and str(fallback) not in message.split("hint:")[0]
    assert str(given / "FashionMNIST" / "raw") in message
    assert all(stem in message for stem in IDX_FILES)
    assert {"missing": "does not exist", "file": "is not a folder"}.get(problem, "") in message
    assert "leave --data-dir out" in message
    # Without data_dir the fallback still serves, in the documented order.
    assert load_dataset(_spec(), verify=False).source == str(fallback / "FashionMNIST" / "raw")


def test_data_dir_is_ignored_for_the_embedded_digits(tmp_path: Path) -> None:
    splits = load_dataset(_spec("digits"), tmp_path / "nowhere")
    assert splits.sha256 == DIGITS_SHA256 == compute_checksum("digits", tmp_path / "nowhere")


def test_official_test_set_refuses_test_size() -> None:
    with pytest.raises(ProtocolError, match="official test set"):
        load_dataset(_spec(test_size=100), verify=False)


def test_split_and_datasplits_move_between_devices() -> None:
    split = Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))
    assert len(split.to("cpu")) == 2
    with pytest.raises(ValueError):
        Split(torch.zeros(2, 4, 4), torch.zeros(2, dtype=torch.int64))


# ------------------------------------------------------------------------------------------
# The real Fashion-MNIST (Debian package dataset-fashion-mnist)


def test_debian_fashion_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    if not DEBIAN_FMNIST.is_dir():
        if os.environ.get("PRUNING_SUITE_REQUIRE_FMNIST") == "1":
            pytest.fail(f"{DEBIAN_FMNIST} is missing and PRUNING_SUITE_REQUIRE_FMNIST=1")
        pytest.skip(f"{DEBIAN_FMNIST} absent: 'apt-get install dataset-fashion-mnist' to run this")
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    spec = _spec(sha256=FASHION_MNIST_SHA256, val_size=5000, mean=(0.2860,), std=(0.3530,))
    splits = load_dataset(spec)
    print(f"\nDebian Fashion-MNIST sha256: {splits.sha256}")
    assert splits.source == str(DEBIAN_FMNIST)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55000, 5000, 10000)
    labels = torch.cat([splits.train.labels, splits.val.labels])
    assert torch.bincount(labels).tolist() == [6000] * 10
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10
    assert abs(splits.train.inputs.mean().item()) < 0.01


# ------------------------------------------------------------------------------------------
# Augmentation

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.1)


def _normalize(raw: torch.Tensor) -> torch.Tensor:
    return (raw - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _position_image(h: int = 32, w: int = 32) -> torch.Tensor:
    """[1, 3, H, W] raw image in (0, 1] whose value encodes its pixel position."""
    codes = (torch.arange(h * w, dtype=torch.float32) + 1) / (h * w)
    return codes.view(1, 1, h, w).expand(1, 3, h, w)


def test_augmentation_off_returns_the_inputs() -> None:
    x = torch.randn(4, 3, 32, 32)
    assert augment(x, Augmentation(), torch.Generator().manual_seed(0)) is x


def test_crop_offsets_are_uniform_and_border_is_normalized_black() -> None:
    n, pad = 18000, 4
    x = _normalize(_position_image()).expand(n, 3, 32, 32)
    out = augment(
        x,
        Augmentation(random_crop_padding=pad),
        torch.Generator().manual_seed(0),
        mean=MEAN,
        std=STD,
    )
    assert out.shape == x.shape
    # Output pixel (pad, pad) shows raw pixel (oy, ox), always inside the image.
    table = x[0, 0].flatten()
    position = (out[:, 0, pad, pad, None] - table).abs().argmin(dim=1)
    oy, ox = position // 32, position % 32
    for offsets in (oy, ox):
        counts = torch.bincount(offsets, minlength=2 * pad + 1)
        assert len(counts) == 2 * pad + 1
        assert ((counts - n / 9).abs() < 0.2 * n / 9).all(), counts
    fill = torch.tensor([(0 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    top = out[oy == 0][:, :, :pad, :]
    assert torch.equal(top, fill.view(1, 3, 1, 1).expand_as(top))
    right = out[ox == 2 * pad][:, :, :, -pad:]
    assert torch.equal(right, fill.view(1, 3, 1, 1).expand_as(right))


def test_augment_matches_torchvision_semantics() -> None:
    from torchvision.transforms import functional as TF

    n, pad, seed = 16, 4, 3
    raw = torch.rand(n, 3, 32, 32)
    aug = Augmentation(random_crop_padding=pad, horizontal_flip=True)
    out = augment(_normalize(raw), aug, torch.Generator().manual_seed(seed), mean=MEAN, std=STD)
    # Replay the documented draw order: row offsets, column offsets, flips.
    g = torch.Generator().manual_seed(seed)
    oy, ox = (torch.randint(0, 2 * pad + 1, (n,), generator=g) for _ in range(2))
    flips = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        image = TF.crop(TF.pad(raw[i], [pad], fill=0), int(oy[i]), int(ox[i]), 32, 32)
        image = TF.hflip(image) if flips[i] else image
        assert torch.allclose(out[i], _normalize(image[None])[0], atol=1e-6)


def test_flip_rate_and_flip_of_flip_is_identity() -> None:
    n = 20000
    x = torch.randn(n, 1, 4, 4)
    aug = Augmentation(horizontal_flip=True)
    once = augment(x, aug, torch.Generator().manual_seed(7))
    flipped = (once == x.flip(-1)).flatten(1).all(1)
    kept = (once == x).flatten(1).all(1)
    assert bool((flipped ^ kept).all())
    assert flipped.float().mean().item() == pytest.approx(0.5, abs=0.02)
    twice = augment(once, aug, torch.Generator().manual_seed(7))
    assert torch.equal(twice, x)


def test_padding_without_normalization_is_refused() -> None:
    with pytest.raises(ValueError, match="mean=spec.mean"):
        augment(torch.zeros(2, 3, 8, 8), Augmentation(random_crop_padding=2), torch.Generator())


def test_a_gzip_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    """Issue 14: a 3.1 MB gzip expanding to 3 GiB peaked at 6.97 GB before refusal. A header
    over the size limit is refused before decompression; an honest small header followed by a
    huge payload is read only one byte past what the header declares."""
    declared = tmp_path / "declared.gz"
    declared.write_bytes(gzip.compress(_header_bytes((2**16, 2**15)) + bytes(64)))
    with pytest.raises(DatasetError, match=r"\(2147483660 bytes decoded\), over the 1073741824"):
        read_idx(declared)
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(_header_bytes((10,)) + bytes(64 << 20), compresslevel=1))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DatasetError, match="longer than its header says: 19 bytes"):
        read_idx(bomb)
