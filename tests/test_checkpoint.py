"""Pruned checkpoints: safe round trips, DataParallel prefixes, strict keys, pickle refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pruning_suite.checkpoint import (
    CheckpointError,
    layer_widths,
    load_pruned,
    read_checkpoint,
    save_pruned,
)
from pruning_suite.errors import OutputError, PruningSuiteError
from pruning_suite.models import DigitsConvNet
from pruning_suite.pruning import apply_structured_pruning

SHAPE = (1, 8, 8)
ARCH = {"name": "digits_convnet", "kwargs": {}, "input_shape": list(SHAPE), "num_classes": 10}


def _dense() -> nn.Module:
    return DigitsConvNet(SHAPE, 10)


def _inputs() -> torch.Tensor:
    return torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1))


def _outputs(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(_inputs())


@pytest.fixture
def pruned() -> nn.Module:
    """A DigitsConvNet with non-trailing units removed and non-default BatchNorm statistics."""
    torch.manual_seed(0)
    model = _dense()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
    removals = {"conv1": [0, 3, 5], "conv2": [1, 2, 30], "fc1": list(range(10, 30))}
    apply_structured_pruning(model, removals, _inputs())
    return model


def _save(model: nn.Module, path: Path) -> Path:
    return save_pruned(model, path, layer_widths(model), ARCH, {"seed": 0, "top1": 91.5})


def _resave(path: Path, edit) -> None:
    content = torch.load(path, weights_only=True)
    edit(content)
    torch.save(content, path)


def test_round_trip_gives_identical_outputs(pruned: nn.Module, tmp_path: Path) -> None:
    path = _save(pruned, tmp_path / "sub" / "pruned.pt")
    assert layer_widths(pruned) == {"conv1": 13, "conv2": 29, "fc1": 44, "fc": 10}
    assert layer_widths(pruned) != layer_widths(_dense())

    loaded = load_pruned(path, _dense)

    assert layer_widths(loaded) == layer_widths(pruned)
    assert torch.equal(_outputs(loaded), _outputs(pruned))
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["pruned.pt"]  # no temp left


def test_file_loads_with_weights_only_and_keeps_plain_data(
    pruned: nn.Module, tmp_path: Path
) -> None:
    path = _save(pruned, tmp_path / "pruned.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "widths", "architecture", "meta"}
    checkpoint = read_checkpoint(path)
    assert checkpoint.meta == {"seed": 0, "top1": 91.5}
    assert checkpoint.architecture["input_shape"] == [1, 8, 8]


def test_explicit_example_input_replaces_input_shape(pruned: nn.Module, tmp_path: Path) -> None:
    path = save_pruned(pruned, tmp_path / "p.pt", layer_widths(pruned), {"name": "x"}, {})
    with pytest.raises(CheckpointError, match="no usable 'input_shape'"):
        load_pruned(path, _dense)
    loaded = load_pruned(path, _dense, example_input=_inputs())
    assert torch.equal(_outputs(loaded), _outputs(pruned))


def test_dataparallel_prefix_is_stripped(pruned: nn.Module, tmp_path: Path) -> None:
    path = _save(pruned, tmp_path / "dp.pt")

    def prefix_all(content: dict) -> None:
        content["state_dict"] = {f"module.{k}": v for k, v in content["state_dict"].items()}
        content["widths"] = {f"module.{k}": v for k, v in content["widths"].items()}

    _resave(path, prefix_all)
    loaded = load_pruned(path, _dense)
    assert torch.equal(_outputs(loaded), _outputs(pruned))


def test_partial_prefix_is_not_stripped_and_fails_strictly(
    pruned: nn.Module, tmp_path: Path
) -> None:
    path = _save(pruned, tmp_path / "partial.pt")

    def prefix_some(content: dict) -> None:
        state = content["state_dict"]
        state["module.conv1.weight"] = state.pop("conv1.weight")

    _resave(path, prefix_some)
    with pytest.raises(CheckpointError) as err:
        load_pruned(path, _dense)
    message = err.value.message
    assert "missing keys: ['conv1.weight']" in message
    assert "unexpected keys: ['module.conv1.weight']" in message
    assert "stripped only when every key has it" in err.value.hint


def test_missing_key_fails_strictly(pruned: nn.Module, tmp_path: Path) -> None:
    path = _save(pruned, tmp_path / "missing.pt")
    _resave(path, lambda content: content["state_dict"].pop("bn2.running_var"))
    with pytest.raises(CheckpointError, match=r"missing keys: \['bn2.running_var'\]"):
        load_pruned(path, _dense)


def test_shape_mismatch_is_listed(pruned: nn.Module, tmp_path: Path) -> None:
    path = _save(pruned, tmp_path / "shape.pt")
    _resave(path, lambda content: content["widths"].pop("fc1"))  # fc1 stays dense (64)
    with pytest.raises(
        CheckpointError,
        match=r"shape mismatches: \[fc1.weight \[44, 464\] saved vs \[64, 464\] built",
    ):
        load_pruned(path, _dense)


def test_pickled_module_is_refused(pruned: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save(pruned, path)
    with pytest.raises(CheckpointError) as err:
        load_pruned(path, _dense)
    assert isinstance(err.value, PruningSuiteError)
    assert "refuses pickled modules" in err.value.message
    assert "DigitsConvNet" in err.value.message
    assert "save_pruned(model, path, widths=layer_widths(model)" in err.value.hint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"conv1.weight": torch.zeros(2)}, "holds a bare state_dict"),
        ([1, 2], "holds a list"),
        (
            {"state_dict": {}, "widths": {"conv1": 0}, "architecture": {}, "meta": {}},
            "'widths' is not a module name -> positive int",
        ),
    ],
)
def test_foreign_files_are_refused(content: object, message: str, tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_checkpoint(garbage)


def test_save_refuses_wrong_widths_and_unsafe_meta(pruned: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    with pytest.raises(CheckpointError, match="'conv1': 16 given, 13 in the model"):
        save_pruned(pruned, path, layer_widths(_dense()), ARCH, {})
    with pytest.raises(CheckpointError, match=r"meta\['out'\] is a PosixPath"):
        save_pruned(pruned, path, layer_widths(pruned), ARCH, {"out": tmp_path})
    assert not path.exists()


def test_save_reports_unwritable_destination(pruned: nn.Module, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write checkpoint"):
        _save(pruned, blocker / "pruned.pt")


def test_widths_for_unknown_layers_are_refused(pruned: nn.Module, tmp_path: Path) -> None:
    path = _save(pruned, tmp_path / "p.pt")
    _resave(path, lambda content: content["widths"].update({"conv9": 3}))
    with pytest.raises(CheckpointError, match=r"records widths for \['conv9'\]"):
        load_pruned(path, _dense)


class _Residual(nn.Module):
    """stem -> block (a, b) -> add: ``stem`` and ``b`` are coupled through the residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.b(torch.relu(self.a(x))))
        return self.fc(self.pool(x).flatten(1))


def test_coupled_residual_layers_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Residual()
    apply_structured_pruning(model, {"stem": [1, 4], "a": [0, 2, 3]}, _inputs())
    assert layer_widths(model) == {"stem": 6, "a": 3, "b": 6, "fc": 3}
    path = save_pruned(model, tmp_path / "res.pt", layer_widths(model), ARCH, {})
    loaded = load_pruned(path, _Residual)
    assert torch.equal(_outputs(loaded), _outputs(model))
