"""One contract, every installed method (timm-style): parametrized over the live registry.

Each method runs on a tiny seeded model on the CPU: scores have the right shapes and are finite,
scoring does not mutate the model, the target is hit, and the same seed gives the same removals.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_suite import PruningContext
from pruning_suite.contract.plugins import load_registry
from pruning_suite.engine.masks import select_weight_masks
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    find_prunable_layers,
    select_removals,
)

METHODS = sorted(load_registry().methods)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 4 * 4, 12)
        self.fc = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def _context(model: nn.Module, seed: int) -> PruningContext:
    gen = torch.Generator().manual_seed(123)
    inputs, labels = (
        torch.randn(40, 1, 8, 8, generator=gen),
        torch.randint(0, 3, (40,), generator=gen),
    )
    layers = find_prunable_layers(model, ["conv1", "fc1"])

    def batches(n: int):
        for i in range(min(n, 4)):
            yield inputs[i * 10 : (i + 1) * 10], labels[i * 10 : (i + 1) * 10]

    return PruningContext(
        model=model,
        layers=layers,
        ratios={"conv1": 0.5, "fc1": 0.25},
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        device=torch.device("cpu"),
        calibration_batches=batches,
    )


def _model() -> nn.Module:
    torch.manual_seed(0)
    return _Tiny().eval()


@pytest.mark.parametrize("name", METHODS)
def test_scores_have_one_finite_value_per_unit(name: str) -> None:
    model = _model()
    ctx = _context(model, seed=0)
    method = load_registry().method(name)
    scores = method.score(ctx)
    assert set(scores) == {"conv1", "fc1"}
    if method.granularity == "weight":  # one score per weight
        assert scores["conv1"].shape == model.conv1.weight.shape
        assert scores["fc1"].shape == model.fc1.weight.shape
    else:  # one score per filter / neuron
        assert scores["conv1"].shape == (8,) and scores["fc1"].shape == (12,)
    assert all(torch.isfinite(s).all() for s in scores.values())


@pytest.mark.parametrize("name", METHODS)
def test_scoring_does_not_mutate_the_model(name: str) -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_registry().method(name).score(_context(model, seed=0))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", METHODS)
def test_target_is_hit_and_same_seed_same_removals(name: str) -> None:
    runs = []
    for _ in range(2):
        model = _model()
        ctx = _context(model, seed=7)
        method = load_registry().method(name)
        if method.granularity == "weight":
            masks = select_weight_masks(method.score(ctx), method.layer_ratios(ctx), ctx.layers)
            kept = {layer: int(mask.sum()) for layer, mask in masks.items()}
            # conv1: 8x1x3x3 = 72 weights, ceil(.5*72) = 36 removed; fc1: 12x128, ceil(.25*1536) = 384
            assert kept == {"conv1": 36, "fc1": 1152}
            runs.append({layer: mask.tolist() for layer, mask in masks.items()})
            continue
        removals = select_removals(method.score(ctx), method.layer_ratios(ctx), ctx.layers)
        changes = apply_structured_pruning(model, removals, torch.randn(2, 1, 8, 8))
        runs.append(removals)
        assert {c.name: c.after for c in changes} == {
            "conv1": 4,
            "fc1": 9,
        }  # ceil(.5*8), ceil(.25*12)
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert runs[0] == runs[1]


def test_l1norm_removes_the_lowest_mean_abs_filters() -> None:
    model = _model()
    with torch.no_grad():
        for i in range(8):
            model.conv1.weight[i].fill_(float(i + 1) * (-1) ** i)  # |w| = 1..8, signs alternate
    ctx = _context(model, seed=0)
    method = load_registry().method("l1norm")
    scores = method.score(ctx)
    assert scores["conv1"].tolist() == [float(i + 1) for i in range(8)]
    assert select_removals(scores, method.layer_ratios(ctx), ctx.layers)["conv1"] == [0, 1, 2, 3]


def test_random_removals_depend_on_the_seed() -> None:
    picks = set()
    for seed in range(6):
        ctx = _context(_model(), seed=seed)
        method = load_registry().method("random")
        picks.add(
            tuple(select_removals(method.score(ctx), method.layer_ratios(ctx), ctx.layers)["fc1"])
        )
    assert len(picks) > 1
