"""The example third-party plugin (plugins/example_taylor): exact scores, no mutation, discovery."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruning_suite import PrunableLayer, PruningContext
from pruning_suite.errors import PluginError

DISTRIBUTION = "pruning-suite-example-taylor"
PACKAGE_INIT = Path(__file__).parents[1] / "plugins/example_taylor/pruning_suite_taylor/__init__.py"


def _taylor_module() -> ModuleType:
    """The installed package, or the source file when the example is not installed."""
    try:
        return importlib.import_module("pruning_suite_taylor")
    except ModuleNotFoundError:
        spec = importlib.util.spec_from_file_location("pruning_suite_taylor", PACKAGE_INIT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["pruning_suite_taylor"] = module
        spec.loader.exec_module(module)
        return module


taylor = _taylor_module()


class _Tiny(nn.Module):
    """4 -> fc1 (3 neurons, the prunable layer) -> ReLU -> fc (2 classes)."""

    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3) if batch_norm else nn.Identity()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.fc1(x))))


def _batches(n: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(5, 4, generator=gen), torch.randint(0, 2, (5,), generator=gen))
        for _ in range(n)
    ]


def _model(batch_norm: bool = False) -> _Tiny:
    torch.manual_seed(0)
    return _Tiny(batch_norm).eval()


def _context(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> PruningContext:
    return PruningContext(
        model=model,
        layers=(PrunableLayer("fc1", model.fc1, 3),),
        ratios={"fc1": 0.5},
        seed=0,
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        calibration_batches=lambda n: iter(batches[:n]),
    )


def _by_hand(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Sum over batches of |sum_j w_ij * dL/dw_ij + b_i * dL/db_i| for fc1, via autograd.grad."""
    clone = copy.deepcopy(model).eval()
    total = torch.zeros(3, dtype=torch.float64)
    for inputs, labels in batches:
        loss = F.cross_entropy(clone(inputs), labels)
        gw, gb = torch.autograd.grad(loss, [clone.fc1.weight, clone.fc1.bias])
        per_unit = (clone.fc1.weight * gw).sum(dim=1) + clone.fc1.bias * gb
        total += per_unit.detach().abs().double()
    return total.float()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_scores_have_one_float32_cpu_value_per_unit() -> None:
    model = _model()
    scores = taylor.Taylor().score(_context(model, _batches()))
    assert set(scores) == {"fc1"}
    assert scores["fc1"].shape == (3,)
    assert scores["fc1"].dtype == torch.float32
    assert scores["fc1"].device.type == "cpu"


@pytest.mark.parametrize("batches", [1, 2, 3])
def test_scores_equal_the_hand_computation(batches: int) -> None:
    model, data = _model(), _batches(3)
    method = taylor.Taylor(taylor.TaylorConfig(batches=batches))
    scores = method.score(_context(model, data))
    torch.testing.assert_close(scores["fc1"], _by_hand(model, data[:batches]), rtol=1e-6, atol=1e-7)


def test_scoring_works_under_no_grad() -> None:
    model, data = _model(), _batches()
    with torch.no_grad():
        scores = taylor.Taylor().score(_context(model, data))
    torch.testing.assert_close(scores["fc1"], _by_hand(model, data), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("train_mode", [False, True])
def test_model_is_not_mutated(train_mode: bool) -> None:
    model = _model(batch_norm=True).train(train_mode)
    before = _state(model)
    taylor.Taylor().score(_context(model, _batches()))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"{key} changed"  # incl. BatchNorm running stats
    assert all(p.grad is None for p in model.parameters())
    assert model.training is train_mode


def test_no_calibration_batch_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match="no calibration batches"):
        taylor.Taylor().score(_context(_model(), []))


@pytest.mark.parametrize("bad", [0, 1001, "four"])
def test_out_of_range_config_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        taylor.TaylorConfig(batches=bad)


def test_discovered_through_the_entry_point(registry) -> None:
    try:
        distribution(DISTRIBUTION)
    except PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed: pip install -e plugins/example_taylor")
    assert "taylor" not in registry.broken
    info = registry.methods["taylor"]
    assert info.distribution == f"{DISTRIBUTION} 0.1.0"
    assert (info.name, info.version, info.granularity) == ("taylor", "1", "filter")
    assert registry.method("taylor", {"batches": 2}).config.batches == 2
    with pytest.raises(PluginError, match="invalid config for plugin 'taylor'"):
        registry.method("taylor", {"batches": 0})
