"""Pruned checkpoints: safe round trips, DataParallel prefixes, strict keys, pickle refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pruning_suite.engine.checkpoint import (
    CheckpointError,
    layer_widths,
    load_pruned,
    read_checkpoint,
    save_pruned,
)
from pruning_suite.engine.models import DigitsConvNet
from pruning_suite.engine.pruning import apply_structured_pruning
from pruning_suite.errors import OutputError, PruningSuiteError

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


# ----------------------------------------------------------------------------------------------
# Grouped and depthwise convs: the rebuild removes the last units of each group


def _randomize_bn(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
    return model


class _Grouped(nn.Module):
    """a (plain) -> g (groups=4) -> c (plain): ``a`` must lose units evenly per group of ``g``."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 16, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(16)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.bn_g = nn.BatchNorm2d(16)
        self.c = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_a(self.a(x)))
        x = torch.relu(self.bn_g(self.g(x)))
        return self.fc(torch.relu(self.c(x)).mean((2, 3)))


class _GroupedResidual(nn.Module):
    """stem + bn(g(a(stem))): the plain ``stem`` is coupled with the grouped ``g``'s outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.a = nn.Conv2d(16, 16, 1)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(x + self.bn(self.g(torch.relu(self.a(x)))))
        return self.fc(x.mean((2, 3)))


class _TwoGroupings(nn.Module):
    """``a`` feeds a groups=2 and a groups=4 conv, whose outputs are added: blocks of lcm 4."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 16, 3, padding=1)
        self.g2 = nn.Conv2d(16, 8, 3, padding=1, groups=2)
        self.g4 = nn.Conv2d(16, 8, 3, padding=1, groups=4)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.a(x))
        return self.fc(torch.relu(self.g2(x) + self.g4(x)).mean((2, 3)))


class _Concat(nn.Module):
    """cat(a, b) -> g (groups=4): ``a`` and ``b`` each feed two of ``g``'s input groups."""

    def __init__(self, split: int = 8) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, split, 3, padding=1)
        self.b = nn.Conv2d(1, 16 - split, 3, padding=1)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(torch.cat([self.a(x), self.b(x)], 1))
        return self.fc(torch.relu(self.g(x)).mean((2, 3)))


class _MobileNetBlock(nn.Module):
    """stem -> pw1 -> depthwise dw -> pw2: ``pw1`` and ``dw`` lose the same channels."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(8)
        self.pw1 = nn.Conv2d(8, 16, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pw2 = nn.Conv2d(16, 8, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.stem(x)))
        x = torch.relu(self.bn1(self.pw1(x)))
        x = torch.relu(self.bn2(self.dw(x)))
        return self.fc(self.bn3(self.pw2(x)).mean((2, 3)))


GROUPED_CASES = {
    # one or two units removed from every group of g's inputs and outputs, none of them the last
    "plain_feeds_grouped": (
        _Grouped,
        {"a": [0, 2, 5, 6, 8, 9, 12, 14], "g": [1, 6, 8, 13], "c": [0, 3]},
        {"a": 8, "g": 12, "c": 6, "fc": 3},
    ),
    "residual_couples_plain_and_grouped": (
        _GroupedResidual,
        {"a": [0, 5, 10, 15], "g": [1, 2, 4, 7, 9, 10, 12, 14]},
        {"stem": 8, "a": 12, "g": 8, "fc": 3},
    ),
    "two_groupings_need_lcm_blocks": (
        _TwoGroupings,
        {"a": [0, 6, 9, 12], "g2": [0, 3, 5, 6]},
        {"a": 12, "g2": 4, "g4": 4, "fc": 3},
    ),
    "concat_feeds_grouped": (
        _Concat,
        {"a": [0, 1, 4, 6], "b": [1, 2, 5, 6]},
        {"a": 4, "b": 4, "g": 16, "fc": 3},
    ),
    "depthwise_block": (
        _MobileNetBlock,
        {"stem": [2, 5], "pw1": [1, 4, 7, 10, 13], "pw2": [0]},
        {"stem": 6, "pw1": 11, "dw": 11, "pw2": 7, "fc": 3},
    ),
}


@pytest.mark.parametrize("case", list(GROUPED_CASES))
def test_grouped_and_depthwise_convs_round_trip(case: str, tmp_path: Path) -> None:
    build, removals, widths = GROUPED_CASES[case]
    torch.manual_seed(0)
    model = _randomize_bn(build())
    apply_structured_pruning(model, removals, _inputs())
    assert layer_widths(model) == widths
    path = save_pruned(model, tmp_path / f"{case}.pt", layer_widths(model), ARCH, {})

    loaded = load_pruned(path, build)

    assert loaded.training  # build()'s mode is kept through the tracing
    assert layer_widths(loaded) == widths
    shapes = {k: v.shape for k, v in loaded.state_dict().items()}
    assert shapes == {k: v.shape for k, v in model.state_dict().items()}
    assert [m.groups for m in loaded.modules() if isinstance(m, nn.Conv2d)] == [
        m.groups for m in model.modules() if isinstance(m, nn.Conv2d)
    ]
    assert torch.equal(_outputs(loaded), _outputs(model))


def test_grouped_round_trip_with_explicit_example_input(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Grouped()
    apply_structured_pruning(model, {"a": [3, 7, 8, 12]}, _inputs())
    path = save_pruned(model, tmp_path / "g.pt", layer_widths(model), {"name": "g"}, {})
    loaded = load_pruned(path, _Grouped, example_input=_inputs())
    assert loaded.g.in_channels == 12
    assert torch.equal(_outputs(loaded), _outputs(model))


@pytest.mark.parametrize(
    ("layer", "width", "message"),
    [
        ("a", 13, r"'a' \(dense 16\), but 'a' reaches the grouped convs 'g' \(groups=4\)"),
        ("g", 14, r"the 2 units removed from 'g' must be a multiple of 4"),
    ],
)
def test_widths_uneven_per_group_are_refused(
    layer: str, width: int, message: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = _Grouped()
    path = save_pruned(model, tmp_path / "g.pt", layer_widths(model), ARCH, {})
    _resave(path, lambda content: content["widths"].update({layer: width}))
    with pytest.raises(CheckpointError, match=message) as err:
        load_pruned(path, _Grouped)
    assert "equally many channels in each of their groups" in err.value.message


def test_concat_not_aligned_with_groups_is_refused_with_the_reason(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Concat(split=6)  # a feeds g's inputs 0-5: all of group 0, half of group 1
    apply_structured_pruning(model, {"a": [0, 4], "b": [2, 6]}, _inputs())
    path = save_pruned(model, tmp_path / "c.pt", layer_widths(model), ARCH, {})
    with pytest.raises(CheckpointError, match="without covering whole groups") as err:
        load_pruned(path, lambda: _Concat(split=6))
    assert "'a'" in err.value.message
    assert "'g' (groups=4)" in err.value.message
