"""Budget targets (engine.budget): the smallest uniform ratio / global total reaching a speedup,
known answers on the digits ConvNet (dense: 337,536 MACs per 1x8x8 example)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pruning_suite.contract.method import Allocation, PrunableLayer
from pruning_suite.engine.allocation import allocate
from pruning_suite.engine.budget import budget_ratios, target_ratios
from pruning_suite.engine.masks import WeightMasks, select_weight_masks
from pruning_suite.engine.measure import count_macs, effective_macs
from pruning_suite.engine.models import build_model
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    find_prunable_layers,
    select_removals,
)
from pruning_suite.errors import ProtocolError, PruningError
from pruning_suite.protocol.spec import load_protocol

INPUT = (1, 8, 8)
EXAMPLE = torch.zeros(2, *INPUT)


def _digits() -> tuple[nn.Module, tuple[PrunableLayer, ...]]:
    protocol = load_protocol("digits-convnet-budget")
    torch.manual_seed(0)
    model = build_model(protocol.architecture, INPUT, 10).eval()
    return model, find_prunable_layers(model, protocol.prunable_layers)


def _l1(layers: tuple[PrunableLayer, ...]) -> dict[str, torch.Tensor]:
    return {layer.name: layer.module.weight.detach().abs().flatten(1).sum(1) for layer in layers}


def _speedup(model: nn.Module, scores: dict, ratios: dict[str, float]) -> float:
    pruned = copy.deepcopy(model)
    layers = find_prunable_layers(pruned, list(ratios))
    apply_structured_pruning(pruned, select_removals(scores, ratios, layers), EXAMPLE)
    return count_macs(model, INPUT) / count_macs(pruned, INPUT)


def test_uniform_budget_is_the_first_breakpoint_that_reaches_the_speedup() -> None:
    """At 19/64 conv1/conv2/fc1 keep 11/22/45 units: 162,018 MACs, 2.083x; the breakpoint below,
    18/64, keeps 11/23/46: 169,452 MACs, 1.992x."""
    model, layers = _digits()
    assert count_macs(model, INPUT) == 337_536
    ratios = budget_ratios(model, None, layers, Allocation(), "filter", 2.0, INPUT, EXAMPLE)
    assert ratios == dict.fromkeys(["conv1", "conv2", "fc1"], 19 / 64)
    scores = _l1(layers)
    assert _speedup(model, scores, ratios) == pytest.approx(337_536 / 162_018)
    assert _speedup(model, scores, dict.fromkeys(ratios, 18 / 64)) == pytest.approx(
        337_536 / 169_452
    )


def test_target_ratios_resolves_both_kinds_of_target() -> None:
    model, layers = _digits()
    budget = load_protocol("digits-convnet-budget")
    assert target_ratios(budget.target("macs-3x"), model, layers, "filter", INPUT, EXAMPLE) == (
        dict.fromkeys(["conv1", "conv2", "fc1"], 27 / 64)
    )
    uniform = load_protocol("digits-convnet").target("uniform-50")
    assert target_ratios(uniform, model, layers, "filter", INPUT, EXAMPLE) == (
        dict.fromkeys(["conv1", "conv2", "fc1"], 0.5)
    )


@pytest.mark.parametrize("speedup", [2.0, 3.0])
def test_global_budget_is_the_smallest_total_that_reaches_the_speedup(speedup: float) -> None:
    model, layers = _digits()
    scores, allocation = _l1(layers), Allocation(scope="global", normalizer="mean")
    ratios = budget_ratios(model, scores, layers, allocation, "filter", speedup, INPUT, EXAMPLE)
    removed = sum(len(idxs) for idxs in select_removals(scores, ratios, layers).values())
    assert _speedup(model, scores, ratios) >= speedup
    fewer = allocate(scores, {}, layers, allocation, "filter", removed - 1)
    assert _speedup(model, scores, fewer) < speedup
    assert ratios == allocate(scores, {}, layers, allocation, "filter", removed)


def test_weight_budget_reaches_the_effective_speedup() -> None:
    model, layers = _digits()
    scores = {layer.name: layer.module.weight.detach().abs() for layer in layers}
    ratios = budget_ratios(model, scores, layers, Allocation(), "weight", 2.0, INPUT, EXAMPLE)
    masked = copy.deepcopy(model)
    WeightMasks(
        select_weight_masks(scores, ratios, find_prunable_layers(masked, list(ratios)))
    ).apply(masked)
    assert count_macs(model, INPUT) / effective_macs(masked, INPUT) >= 2.0
    assert len(set(ratios.values())) == 1


def test_partly_pruned_model_is_measured_against_the_dense_macs() -> None:
    """A later prune round: the model is already at 2.08x of the dense MACs given."""
    model, layers = _digits()
    scores = _l1(layers)
    ratios = dict.fromkeys(["conv1", "conv2", "fc1"], 19 / 64)
    apply_structured_pruning(model, select_removals(scores, ratios, layers), EXAMPLE)
    layers = find_prunable_layers(model, ["conv1", "conv2", "fc1"])
    again = budget_ratios(
        model, None, layers, Allocation(), "filter", 2.0, INPUT, EXAMPLE, dense_macs=337_536
    )
    assert again == dict.fromkeys(["conv1", "conv2", "fc1"], 0.0)


def test_unreachable_budget_is_refused() -> None:
    model, layers = _digits()
    with pytest.raises(PruningError, match="cannot reach a 1000x MACs speedup"):
        budget_ratios(model, None, layers, Allocation(), "filter", 1000.0, INPUT, EXAMPLE)
    capped = Allocation(scope="global", max_layer_ratio=0.1)
    with pytest.raises(PruningError, match=r"global allocation \(within its caps\) cannot reach"):
        budget_ratios(model, _l1(layers), layers, capped, "filter", 2.0, INPUT, EXAMPLE)


def test_a_budget_target_has_no_ratios_of_its_own() -> None:
    target = load_protocol("digits-convnet-budget").target("macs-2x")
    assert target.is_budget and target.speedup == 2.0
    with pytest.raises(ProtocolError, match="fixes only a MACs speedup"):
        target.resolve(["conv1"])
