"""ImageNet / ImageNet-100 from torchvision's ImageFolder layout: search, class lists, checksum,
transforms, batches.

Every test writes tiny JPEG and PNG files with PIL into ``train/<wnid>/`` and ``val/<wnid>/`` and
loads them through the real code path (``load_dataset``), so nothing depends on ImageNet being
on the machine.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pruning_suite.data import datasets as data
from pruning_suite.data import imagefolder
from pruning_suite.data.datasets import UNPINNED, compute_checksum, load_dataset, split_indices
from pruning_suite.data.imagefolder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FolderSplit,
    random_resized_crop_params,
    read_class_list,
)
from pruning_suite.errors import DatasetError, ProtocolError
from pruning_suite.protocol.spec import DatasetSpec

CLASSES = ("n01440764", "n01443537", "n01484850")
SIZE, RESIZE = 16, 20


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test writes is found; images are decoded in the test's process."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv(imagefolder.WORKERS_ENV, "0")


def _spec(name: str = "imagenet", **update: object) -> DatasetSpec:
    fields: dict[str, object] = {
        "name": name,
        "sha256": UNPINNED,
        "num_classes": len(CLASSES),
        "input_shape": (3, SIZE, SIZE),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "val_size": 2,
        "eval_resize": RESIZE,
    }
    fields.update(update)
    return DatasetSpec.model_validate(fields)


def _image(path: Path, seed: int, size: tuple[int, int] = (24, 18)) -> None:
    """A random RGB image of ``size`` (width, height); JPEG or PNG by the suffix."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _write(root: Path, classes=CLASSES, train: int = 3, val: int = 1) -> None:
    """``root/train/<class>/`` with ``train`` images (JPEG and PNG), ``root/val/<class>/``."""
    for c, cls in enumerate(classes):
        for i in range(train):
            suffix = ".JPEG" if i % 2 == 0 else ".png"
            _image(root / "train" / cls / f"{cls}_{i}{suffix}", 100 * c + i, (20 + i, 18))
        for i in range(val):
            _image(root / "val" / cls / f"ILSVRC2012_val_{c}{i}.JPEG", 10_000 + 100 * c + i)


def _expected_checksum(root: Path) -> str:
    """The documented recipe, rebuilt independently: sorted 'split/path<TAB>size' lines."""
    lines = []
    for split in ("train", "val"):
        for path in (root / split).rglob("*"):
            if path.is_file():
                lines.append(
                    f"{split}/{path.relative_to(root / split).as_posix()}\t{path.stat().st_size}\n"
                )
    digest = hashlib.sha256(b"pruning-suite image-folder v1\n")
    for line in sorted(lines):
        digest.update(line.encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------
# Layout, labels, splits, checksum


def test_loads_the_torchvision_layout_with_sorted_class_labels(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet")
    splits = load_dataset(_spec(), tmp_path)
    assert splits.source == str(tmp_path / "imagenet")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 2, 3)
    # val/ is the test split, one image per class, labels = positions in the sorted class list
    assert splits.test.labels.tolist() == [0, 1, 2]
    assert [p.decode() for p in splits.test.paths] == [
        f"{cls}/ILSVRC2012_val_{c}0.JPEG" for c, cls in enumerate(CLASSES)
    ]
    # the validation split is carved from train/ with the protocol's seed
    train_idx, val_idx, _ = split_indices(9, 2, None, 0)
    everything = [
        f"{cls}/{cls}_{i}{'.JPEG' if i % 2 == 0 else '.png'}" for cls in CLASSES for i in range(3)
    ]
    assert [p.decode() for p in splits.val.paths] == [everything[i] for i in val_idx]
    assert [p.decode() for p in splits.train.paths] == [everything[i] for i in train_idx]
    assert splits.train.labels.tolist() == [int(i) // 3 for i in train_idx]


def test_checksum_is_the_documented_recipe_over_paths_and_sizes(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet")
    expected = _expected_checksum(tmp_path / "imagenet")
    assert load_dataset(_spec(), tmp_path).sha256 == expected
    assert compute_checksum("imagenet", tmp_path) == expected
    assert load_dataset(_spec(sha256=expected), tmp_path).sha256 == expected  # verifies


def test_checksum_tracks_names_and_sizes_but_not_same_size_contents(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    _write(root)
    first = compute_checksum("imagenet", tmp_path)
    image = root / "train" / CLASSES[0] / f"{CLASSES[0]}_1.png"
    flipped = bytearray(image.read_bytes())
    flipped[-20] ^= 0xFF  # same size, other bytes: contents are not hashed (documented)
    image.write_bytes(bytes(flipped))
    assert compute_checksum("imagenet", tmp_path) == first
    image.write_bytes(bytes(flipped) + b"\0")  # one byte longer
    second = compute_checksum("imagenet", tmp_path)
    assert second != first
    image.rename(image.with_name("renamed.png"))
    assert compute_checksum("imagenet", tmp_path) not in (first, second)


def test_a_pinned_checksum_refuses_other_data(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet")
    with pytest.raises(DatasetError, match="has sha256"):
        load_dataset(_spec(sha256="1" * 64), tmp_path)


def test_data_dir_itself_may_hold_train_and_val(tmp_path: Path) -> None:
    _write(tmp_path)
    assert load_dataset(_spec(), tmp_path).source == str(tmp_path)


def test_env_is_searched_without_data_dir_but_not_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "env" / "imagenet")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert load_dataset(_spec()).source == str(tmp_path / "env" / "imagenet")
    (tmp_path / "given").mkdir()
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec(), tmp_path / "given")
    assert "$PRUNING_SUITE_DATA is not searched" in info.value.message
    assert (
        "train/ and val/" in info.value.hint and "torchvision.datasets.ImageNet" in info.value.hint
    )


def test_nothing_found_names_the_places_searched(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec())
    assert "no --data-dir given and $PRUNING_SUITE_DATA is not set" in info.value.message
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(_spec(), tmp_path / "absent")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda root: _image(root / "train" / "n09999999" / "x.JPEG", 1),
            "different class folders",
        ),
        (
            lambda root: (root / "val" / CLASSES[1] / "ILSVRC2012_val_10.JPEG").unlink(),
            "without images",
        ),
    ],
)
def test_inconsistent_folders_are_refused(tmp_path: Path, damage, message: str) -> None:
    _write(tmp_path / "imagenet")
    damage(tmp_path / "imagenet")
    with pytest.raises(DatasetError, match=message):
        load_dataset(_spec(), tmp_path)


def test_class_count_must_be_num_classes(tmp_path: Path) -> None:
    """Full ImageNet's labels are its sorted class folders: a missing class would shift them."""
    _write(tmp_path / "imagenet")
    with pytest.raises(DatasetError, match="has 3 classes, but the protocol's num_classes is 4"):
        load_dataset(_spec(num_classes=4), tmp_path)


def test_hidden_folders_and_other_files_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "imagenet"
    _write(root)
    _image(root / "train" / ".ipynb_checkpoints" / "x.png", 3)
    (root / "train" / CLASSES[0] / "notes.txt").write_text("not an image")
    assert len(load_dataset(_spec(), tmp_path).train) == 7


def test_symlinked_class_folders_are_followed(tmp_path: Path) -> None:
    """ImageNet subsets are often folders of links into full ImageNet."""
    _write(tmp_path / "full")
    for split in ("train", "val"):
        (tmp_path / "imagenet" / split).mkdir(parents=True)
        for cls in CLASSES:
            os.symlink(tmp_path / "full" / split / cls, tmp_path / "imagenet" / split / cls)
    assert compute_checksum("imagenet", tmp_path) == _expected_checksum(tmp_path / "full")


# ----------------------------------------------------------------------------------------------
# ImageNet-100: the committed class list


def test_class_list_v1_is_100_sorted_unique_wordnet_ids() -> None:
    ids = read_class_list("imagenet100-classes-v1.txt")
    assert len(ids) == len(set(ids)) == 100
    assert list(ids) == sorted(ids)
    assert all(len(i) == 9 and i[0] == "n" and i[1:].isdigit() for i in ids)


def test_an_edited_class_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(imagefolder.CLASS_LISTS, "imagenet100-classes-v1.txt", "0" * 64)
    with pytest.raises(ProtocolError, match="was modified"):
        read_class_list("imagenet100-classes-v1.txt")
    with pytest.raises(ProtocolError, match="unknown class list"):
        read_class_list("imagenet100-classes-v9.txt")


def test_imagenet100_reads_a_subset_folder_or_full_imagenet_alike(tmp_path: Path) -> None:
    ids = read_class_list("imagenet100-classes-v1.txt")
    spec = _spec("imagenet100", num_classes=100, val_size=10)
    _write(tmp_path / "subset" / "imagenet100", ids, train=1)
    extra = ("n00000001", "n99999999")  # classes outside the list, before and after it
    _write(tmp_path / "full" / "imagenet", (*ids, *extra), train=1)
    subset = load_dataset(spec, tmp_path / "subset")
    full = load_dataset(spec, tmp_path / "full")
    assert subset.sha256 == full.sha256
    assert full.test.labels.tolist() == list(range(100))
    assert [p.decode().split("/")[0] for p in full.test.paths] == list(ids)


def test_imagenet100_names_missing_classes(tmp_path: Path) -> None:
    ids = read_class_list("imagenet100-classes-v1.txt")
    _write(tmp_path / "imagenet100", ids[:-2], train=1)
    with pytest.raises(DatasetError) as info:
        load_dataset(_spec("imagenet100", num_classes=100), tmp_path)
    assert f"lacks class folders {ids[-2]}, {ids[-1]}" in info.value.message


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"eval_resize": None}, "eval_resize is not set"),
        ({"eval_resize": 8}, "smaller than the input size"),
        ({"class_list": "imagenet100-classes-v1.txt"}, "uses every class folder"),
        ({"name": "cifar10", "eval_resize": 36}, "is not an image folder"),
    ],
)
def test_spec_fields_of_image_folders_are_checked(update: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        load_dataset(_spec(**update))


# ----------------------------------------------------------------------------------------------
# Transforms: torchvision's ImageNet reference, exactly


@pytest.mark.parametrize(("width", "height"), [(40, 30), (30, 40), (200, 20), (7, 60)])
def test_random_crop_parameters_equal_torchvisions(width: int, height: int) -> None:
    """Same draws from a seeded generator as RandomResizedCrop.get_params after manual_seed."""
    from torchvision.transforms import RandomResizedCrop

    image = Image.new("RGB", (width, height))
    for seed in range(20):
        torch.manual_seed(seed)
        theirs = RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])
        ours = random_resized_crop_params(
            width, height, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(seed)
        )
        assert ours == tuple(theirs)


def _normalized(pixels: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (pixels.float() / 255 - mean) / std


def test_evaluation_batches_equal_torchvisions_resize_and_center_crop(tmp_path: Path) -> None:
    from torchvision import transforms

    _write(tmp_path / "imagenet")
    test = load_dataset(_spec(), tmp_path).test
    reference = transforms.Compose(
        [transforms.Resize(RESIZE), transforms.CenterCrop(SIZE), transforms.PILToTensor()]
    )
    expected = torch.stack(
        [reference(Image.open(test.folder / p.decode()).convert("RGB")) for p in test.paths]
    )
    (inputs, labels), *rest = list(test.eval_batches(10))
    assert not rest and inputs.shape == (3, 3, SIZE, SIZE) and inputs.dtype == torch.float32
    torch.testing.assert_close(inputs, _normalized(expected), rtol=0, atol=1e-6)
    assert labels.tolist() == [0, 1, 2]
    torch.testing.assert_close(test.batch(torch.tensor([2, 0])), inputs[[2, 0]])
    torch.testing.assert_close(test.batch(slice(1, 3)), inputs[1:])


def test_training_batches_are_torchvisions_crops_and_flips(tmp_path: Path) -> None:
    """Each image: RandomResizedCrop from its own seeded generator, then a flip draw from it."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    _write(tmp_path / "imagenet")
    train = load_dataset(_spec(), tmp_path).train
    generator = torch.Generator().manual_seed(7)
    batches = list(train.train_batches(4, generator, horizontal_flip=True))
    assert [len(labels) for _, labels in batches] == [4, 3]

    replay = torch.Generator().manual_seed(7)
    order = torch.randperm(len(train), generator=replay).tolist()
    seed = int(torch.randint(0, 2**62, (1,), generator=replay))
    flips = 0
    for position, index in enumerate(order):
        image = Image.open(train.folder / train.paths[index].decode()).convert("RGB")
        own = torch.Generator().manual_seed((seed + index * 0x9E3779B1) % 2**63)
        top, left, h, w = random_resized_crop_params(*image.size, (0.08, 1.0), (3 / 4, 4 / 3), own)
        image = TF.resized_crop(image, top, left, h, w, [SIZE, SIZE], InterpolationMode.BILINEAR)
        if torch.randint(0, 2, (1,), generator=own).item():
            image, flips = TF.hflip(image), flips + 1
        inputs, labels = batches[position // 4]
        expected = _normalized(TF.pil_to_tensor(image)[None])[0]
        torch.testing.assert_close(inputs[position % 4], expected, rtol=0, atol=1e-6)
        assert labels[position % 4] == train.labels[index]
    assert 0 < flips < len(order)


def test_training_batches_depend_on_the_seed_only(tmp_path: Path) -> None:
    """Same seed, same batches, whatever the number of DataLoader workers."""
    _write(tmp_path / "imagenet")
    train = load_dataset(_spec(), tmp_path).train

    def epoch(split: FolderSplit, seed: int) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return [x for x, _ in split.train_batches(4, generator, True)]

    first = epoch(train, 0)
    with_worker = epoch(FolderSplit(**{**vars(train), "workers": 1}), 0)
    for a, b in zip(first, with_worker, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], epoch(train, 1)[0])
    limited = list(train.train_batches(2, torch.Generator().manual_seed(0), max_batches=2))
    assert [len(labels) for _, labels in limited] == [2, 2]


def test_eval_limit_keeps_a_seeded_subset_of_val_and_test(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet", train=5, val=2)
    full = load_dataset(_spec(val_size=6), tmp_path)
    small = load_dataset(_spec(val_size=6), tmp_path, eval_limit=4)
    assert (len(small.train), len(small.val), len(small.test)) == (9, 4, 4)
    assert small.sha256 == full.sha256 and small.train.paths.tolist() == full.train.paths.tolist()
    kept = np.sort(np.random.RandomState(0).permutation(6)[:4])
    assert small.val.paths.tolist() == full.val.paths[kept].tolist()
    kept = np.sort(np.random.RandomState(0).permutation(len(full.test))[:4])
    assert small.test.paths.tolist() == full.test.paths[kept].tolist()


def test_a_corrupt_image_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet")
    broken = tmp_path / "imagenet" / "val" / CLASSES[2] / "ILSVRC2012_val_20.JPEG"
    broken.write_bytes(b"not a jpeg at all")
    test = load_dataset(_spec(), tmp_path).test
    with pytest.raises(DatasetError, match="cannot decode image .*ILSVRC2012_val_20.JPEG"):
        list(test.eval_batches())


def test_to_moves_labels_and_delivers_batches_there(tmp_path: Path) -> None:
    _write(tmp_path / "imagenet")
    splits = load_dataset(_spec(), tmp_path, device="meta")
    assert splits.test.device == torch.device("meta") == splits.test.labels.device
