"""Graphed training steps (issue 13): where they run, and that the loop is unchanged elsewhere.

The capture itself needs CUDA; the CUDA test is skipped on a machine without it, and
``benchmarks/bench_cuda_graphs.py`` checks it on a GPU (README, "Measured times")."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pruning_suite.data.datasets import DataSplits, Split
from pruning_suite.engine.graphed import CUDA_GRAPHS_ENV, GraphedStep, cuda_graphs_wanted
from pruning_suite.engine.train import train
from pruning_suite.errors import PruningSuiteError
from pruning_suite.protocol.spec import TrainRecipe

CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def _wanted(requested=True, device=CUDA, before_step=None, compiled=False) -> bool:
    return cuda_graphs_wanted(requested, device, before_step, compiled)


def test_graphs_run_only_on_cuda_asked_for_one_process_without_a_mid_step_hook(
    monkeypatch,
) -> None:
    assert _wanted() is True
    assert not _wanted(requested=False)
    assert not _wanted(device=CPU)
    assert not _wanted(before_step=lambda: None)
    assert not _wanted(compiled=True)
    monkeypatch.setattr("pruning_suite.engine.distributed.world_size", lambda: 2)
    assert not _wanted()  # a torchrun world


@pytest.mark.parametrize(
    ("value", "wanted"), [("1", True), (" 1 ", True), ("0", False), ("", False)]
)
def test_the_environment_variable_decides_when_the_caller_does_not(
    monkeypatch, value: str, wanted: bool
) -> None:
    monkeypatch.setenv(CUDA_GRAPHS_ENV, value)
    assert _wanted(requested=None) is wanted
    assert _wanted(requested=True) is True  # the caller's choice wins


def test_a_bad_environment_value_is_a_one_line_error_with_the_fix(monkeypatch) -> None:
    monkeypatch.setenv(CUDA_GRAPHS_ENV, "yes")
    with pytest.raises(PruningSuiteError, match="is neither 0 nor 1") as err:
        _wanted(requested=None)
    assert f"set {CUDA_GRAPHS_ENV}=1" in str(err.value.hint)


def test_a_full_batch_is_replayed_once_momentum_exists_a_partial_one_never() -> None:
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = GraphedStep(model, optimizer, F.cross_entropy)
    inputs, labels = torch.randn(8, 4), torch.randint(0, 3, (8,))
    assert not step.fits(inputs, 8)  # the first step creates the momentum buffers, eagerly
    F.cross_entropy(model(inputs), labels).backward()
    optimizer.step()
    assert step.fits(inputs, 8)
    assert not step.fits(inputs[:5], 8)
    plain = torch.optim.SGD(model.parameters(), lr=0.1)  # no momentum: no state to wait for
    assert GraphedStep(model, plain, F.cross_entropy).fits(inputs, 8)


def _tiny(device: torch.device) -> tuple[nn.Module, DataSplits, TrainRecipe]:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 1, 8, 8), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 3, (300,), generator=gen)

    def split(part: slice) -> Split:
        return Split(images[part].to(device), labels[part].to(device), 255, (0.5,), (0.25,))

    data = DataSplits(split(slice(0, 200)), split(slice(200, 250)), split(slice(250, 300)), "0" * 64, "")  # fmt: skip
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3)
    ).to(device)
    recipe = TrainRecipe(
        epochs=3, batch_size=32, lr_schedule="0:0.1,2:0.01", momentum=0.9, weight_decay=5e-4
    )
    return model, data, recipe


def test_asking_for_graphs_on_the_cpu_trains_the_same_bits() -> None:
    model, data, recipe = _tiny(CPU)
    other = copy.deepcopy(model)
    log = train(model, data, recipe, seed=3, cuda_graphs=False)
    again = train(other, data, recipe, seed=3, cuda_graphs=True)
    assert log == again
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, other.state_dict()[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graphed_steps_train_what_eager_steps_train_on_cuda() -> None:  # pragma: no cover
    model, data, recipe = _tiny(CUDA)
    other = copy.deepcopy(model)
    log = train(model, data, recipe, seed=3, cuda_graphs=False)
    again = train(other, data, recipe, seed=3, cuda_graphs=True)
    assert [row.val_top1 for row in log] == [row.val_top1 for row in again]
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, other.state_dict()[name], rtol=0, atol=1e-6)
