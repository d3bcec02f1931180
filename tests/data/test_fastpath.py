"""The fast path: uint8 storage with on-the-fly normalization, the CPU loop unchanged, loaders.

The CUDA branches (bf16 autocast, channels_last, non-blocking copies) cannot run here; what can
be checked without a GPU is: the CPU path is exactly the fp32 computation it always was, and
each CUDA branch is built as intended.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from pruning_suite.data import fastpath
from pruning_suite.data.datasets import DataSplits, Split, augment, load_dataset
from pruning_suite.engine.train import evaluate, train, training_step
from pruning_suite.errors import TrainingError
from pruning_suite.protocol.spec import Augmentation, TrainRecipe, load_protocol

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CASES = [  # (scale, mean, std) of the protocols: CIFAR-10, Fashion-MNIST, digits (values 0..16)
    (255.0, CIFAR_MEAN, CIFAR_STD),
    (255.0, (0.2860,), (0.3530,)),
    (16.0, (0.3053,), (0.376,)),
]


def _precomputed(pixels: torch.Tensor, scale: float, mean, std) -> torch.Tensor:
    """How the suite normalized a whole split up front before the fast path (float32, in place)."""
    x = torch.from_numpy(np.ascontiguousarray(pixels.numpy(), dtype=np.float32)).div_(scale)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return x.sub_(mean_t).div_(std_t)


# ------------------------------------------------------------------------------------------
# Storage: uint8 on the device, normalized batch by batch, bit-identical


@pytest.mark.parametrize(("scale", "mean", "std"), CASES)
def test_every_pixel_value_normalizes_bit_identically(scale, mean, std) -> None:
    """All stored values 0..scale in every channel: batch() == the old up-front normalization."""
    values = torch.arange(int(scale) + 1, dtype=torch.uint8)
    pixels = values.view(1, 1, -1, 1).expand(1, len(mean), len(values), 3).contiguous()
    split = Split(pixels, torch.zeros(1).long(), scale, mean, std)
    assert torch.equal(split.batch(torch.tensor([0])), _precomputed(pixels, scale, mean, std))


def test_loaded_splits_store_uint8_pixels() -> None:
    data = load_dataset(load_protocol("digits-convnet").dataset)
    for split in (data.train, data.val, data.test):
        assert split.images.dtype == torch.uint8 and split.scale == 16.0
        assert split.images.element_size() * 4 == split.inputs.element_size()
    assert int(data.train.images.max()) == 16
    idx = torch.randperm(len(data.train))[:50]
    assert torch.equal(data.train.batch(idx), data.train.inputs[idx])


def test_ready_float_inputs_are_passed_through_untouched() -> None:
    x = torch.randn(6, 1, 4, 4)
    split = Split(x, torch.zeros(6).long())
    assert split.inputs is x
    scaled = Split(x.clone(), torch.zeros(6).long(), 1.0, (0.5,), (0.25,))
    window = scaled.batch(slice(0, 3))
    assert torch.equal(window, (x[:3] - 0.5) / 0.25)
    assert torch.equal(scaled.images, x), "normalizing a slice must not write into the images"


def test_split_moves_with_its_normalization() -> None:
    split = Split(
        torch.full((2, 3, 2, 2), 255, dtype=torch.uint8),
        torch.zeros(2).long(),
        255,
        CIFAR_MEAN,
        CIFAR_STD,
    )
    moved = split.to("cpu")
    assert (moved.scale, moved.mean, moved.std, moved.device.type) == (
        255.0,
        CIFAR_MEAN,
        CIFAR_STD,
        "cpu",
    )
    assert torch.equal(moved.inputs, split.inputs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mean": (0.5,), "std": (0.5,)},  # one value for three channels
        {"mean": (0.5, 0.5, 0.5), "std": ()},
        {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.0, 0.5)},
        {"scale": 0.0},
    ],
)
def test_split_refuses_inconsistent_normalization(kwargs) -> None:
    with pytest.raises(ValueError, match="one mean and std per channel"):
        Split(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2).long(), **kwargs)


# ------------------------------------------------------------------------------------------
# The training loop on the CPU: fp32, same numbers as the plain loop it replaced


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 5),
    )


def _data(n: int = 96) -> DataSplits:
    gen = torch.Generator().manual_seed(4)
    pixels = torch.randint(0, 256, (n, 3, 8, 8), generator=gen).to(torch.uint8)
    split = Split(pixels, torch.randint(0, 5, (n,), generator=gen), 255, CIFAR_MEAN, CIFAR_STD)
    return DataSplits(split, split, split, "0" * 64, "test")


RECIPE = TrainRecipe(
    epochs=2,
    batch_size=20,
    lr_schedule="0:0.05,1:0.01",
    momentum=0.9,
    weight_decay=5e-4,
    augmentation=Augmentation(random_crop_padding=2, horizontal_flip=True),
)


def _reference_train(model: nn.Module, data: DataSplits, seed: int) -> list[float]:
    """The plain loop: precomputed float inputs, augment, SGD, losses summed as Python floats."""
    inputs, labels = data.train.inputs, data.train.labels
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    losses = []
    for epoch in range(RECIPE.epochs):
        for group in optimizer.param_groups:
            group["lr"] = RECIPE.lr_at(epoch)
        order, total = torch.randperm(len(labels), generator=generator), 0.0
        for start in range(0, len(labels), RECIPE.batch_size):
            idx = order[start : start + RECIPE.batch_size]
            x = augment(inputs[idx], RECIPE.augmentation, generator, mean=CIFAR_MEAN, std=CIFAR_STD)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(labels))
    return losses


def test_cpu_loop_is_bit_identical_to_the_plain_fp32_loop() -> None:
    data, model = _data(), _tiny_net()
    reference = copy.deepcopy(model)
    log = train(model, data, RECIPE, seed=11)
    assert [row.train_loss for row in log] == _reference_train(reference, data, seed=11)
    for ours, theirs in zip(
        model.state_dict().values(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs)


def test_after_step_hook_sees_the_optimizer_after_every_step() -> None:
    seen = []
    train(
        _tiny_net(),
        _data(),
        RECIPE,
        seed=0,
        after_step=lambda opt: seen.append(opt.param_groups[0]["lr"]),
    )
    assert seen == [0.05] * 5 + [0.01] * 5  # 96 examples in batches of 20, two epochs


def test_evaluate_counts_top1_over_uneven_batches() -> None:
    data, model = _data(), _tiny_net().eval()
    with torch.no_grad():
        expected = (model(data.test.inputs).argmax(1) == data.test.labels).double().mean().item()
    assert evaluate(model, data.test, batch_size=7) == pytest.approx(100 * expected, abs=1e-12)
    assert not model.training


def test_a_diverged_step_raises_before_updating_the_weights() -> None:
    model = _tiny_net()
    before = [param.detach().clone() for param in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    inputs = torch.full((4, 3, 8, 8), float("nan"))
    with pytest.raises(TrainingError, match="training diverged"):
        training_step(model.train(), optimizer, inputs, torch.zeros(4).long())
    assert all(param.grad is None for param in model.parameters())
    assert all(map(torch.equal, before, model.parameters()))


def test_compile_option_trains_through_torch_compile(monkeypatch) -> None:
    """compile_model=True routes both passes through torch.compile (eager backend: same numbers)."""
    calls = []
    real_compile = torch.compile

    def eager_compile(model, **kwargs):
        calls.append(model)
        return real_compile(model, backend="eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    recipe = RECIPE.model_copy(update={"epochs": 1})
    compiled_model, plain = _tiny_net(), _tiny_net()
    log = train(compiled_model, _data(), recipe, seed=3, compile_model=True)
    assert calls == [compiled_model]
    assert log == train(plain, _data(), recipe, seed=3)
    for ours, theirs in zip(
        compiled_model.state_dict().values(), plain.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs)


class _FolderLike:
    """The iterator interface of an image-folder split (pruning_suite.data.imagefolder.FolderSplit)."""

    def __init__(self, split: Split) -> None:
        self.split, self.device, self.labels, self.calls = split, split.device, split.labels, []

    def __len__(self) -> int:
        return len(self.split)

    def train_batches(self, batch_size, generator, horizontal_flip=False, max_batches=None):
        self.calls.append(("train", batch_size, horizontal_flip, max_batches))
        order = torch.randperm(len(self), generator=generator)[: (max_batches or 99) * batch_size]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield self.split.batch(idx), self.labels[idx]

    def eval_batches(self, batch_size=1000):
        self.calls.append(("eval", batch_size))
        for start in range(0, len(self), batch_size):
            yield (
                self.split.batch(slice(start, start + batch_size)),
                self.labels[start : start + batch_size],
            )


def test_folder_splits_train_and_evaluate_through_their_own_batches() -> None:
    data = _data()
    folder = _FolderLike(data.train)
    folders = DataSplits(folder, folder, folder, "0" * 64, "folder")  # type: ignore[arg-type]
    seen = []
    log = train(_tiny_net(), folders, RECIPE, seed=2, max_batches=3, after_step=seen.append)
    assert folder.calls == [("train", 20, True, 3), ("eval", 1000), ("eval", 1000)] * 2
    assert len(seen) == 6 and all(row.train_loss > 0 for row in log)
    model = _tiny_net()
    assert evaluate(model, folder, batch_size=7) == evaluate(model, data.train, batch_size=7)


# ------------------------------------------------------------------------------------------
# Device-specific pieces: no-ops on the CPU, the intended objects for CUDA


def test_cpu_gets_fp32_and_the_default_layout() -> None:
    cpu = torch.device("cpu")
    x = torch.randn(2, 3, 4, 4)
    assert fastpath.with_device_layout(x) is x
    assert isinstance(fastpath.autocast(cpu), contextlib.nullcontext)
    with fastpath.autocast(cpu):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    model = _tiny_net()
    weight = model[0].weight
    with fastpath.device_layout(model, cpu):
        assert weight.is_contiguous()
    assert fastpath.compiled(model, enabled=False) is model
    assert fastpath.to_device(x, cpu) is x


def test_cuda_branches_build_bf16_autocast_and_channels_last() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on machines without a GPU
        ctx = fastpath.autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast)
    assert (ctx.device, ctx.fast_dtype) == ("cuda", torch.bfloat16)
    model = _tiny_net()
    weight = model[0].weight
    cuda = torch.device("cuda")
    with fastpath.device_layout(model, cuda):  # converts wherever the model is
        assert model[0].weight is weight
        assert weight.is_contiguous(memory_format=torch.channels_last)
        assert not weight.is_contiguous()
        with fastpath.device_layout(model, cuda):  # evaluate() inside train()
            pass
        assert not weight.is_contiguous(), "an inner block must not undo the outer one"
    assert weight.is_contiguous()


# ------------------------------------------------------------------------------------------
# folder_loader: worker loading for image-folder data


class _Noisy(Dataset):
    """Tiny in-memory dataset with a random transform (torch RNG), as folder datasets have."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((1, 2, 2), float(index)) + torch.rand(1, 2, 2) * 0.1, index


def _epoch(loader) -> tuple[list[int], torch.Tensor]:
    batches = list(loader)
    return [int(i) for _, labels in batches for i in labels], torch.cat([x for x, _ in batches])


def _seeded_epoch(seed: int, workers: int):
    torch.manual_seed(seed)  # without workers the transforms draw from the global generator
    generator = torch.Generator().manual_seed(seed)
    loader = fastpath.folder_loader(_Noisy(), 4, True, generator, workers, "cpu")
    return (loader, *_epoch(loader))


@pytest.mark.parametrize("workers", [0, 1])
def test_folder_loader_is_seeded_and_covers_every_example(workers: int) -> None:
    loader, order, images = _seeded_epoch(5, workers)
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert [len(labels) for _, labels in loader] == [4, 4, 2]
    _, again_order, again_images = _seeded_epoch(5, workers)
    assert order == again_order and torch.equal(images, again_images)
    _, other_order, other_images = _seeded_epoch(6, workers)
    assert other_order != order and not torch.equal(
        other_images.sort(0).values, images.sort(0).values
    )
    expected = (workers, workers > 0, False)
    assert (loader.num_workers, loader.persistent_workers, loader.pin_memory) == expected


def test_folder_loader_pins_memory_for_cuda_only() -> None:
    dataset = _Noisy()
    assert fastpath.folder_loader(dataset, 2, False, None, 0, torch.device("cuda")).pin_memory
    evaluation = fastpath.folder_loader(dataset, 3, False, None, 0, "cpu")
    assert not evaluation.pin_memory and _epoch(evaluation)[0] == list(range(10))
