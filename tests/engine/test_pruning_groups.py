"""Depthwise and grouped convs: the per-group count rule, verified surgery, and clear refusals.

As in ``test_pruning.py``, every reference output is built by the TEST (zeroing weights by hand),
independently of the masked reference ``apply_structured_pruning`` verifies against internally.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pruning_suite.contract.method import PrunableLayer
from pruning_suite.engine import verify
from pruning_suite.engine.pruning import (
    LayerChange,
    apply_structured_pruning,
    count_params,
    find_prunable_layers,
    select_removals,
)
from pruning_suite.errors import PruningError, VerificationError
from tests.helpers import eval_out as _eval_out
from tests.helpers import zero_units as _zero_units


def _randomize_batchnorms(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine terms, so a wrongly kept channel shows."""
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.normal_()
                bn.bias.normal_()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    now = model.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], v) for k, v in state.items())


# ---------------------------------------------------------------------------------------------
# Depthwise: an inverted-residual body (MobileNetV2) without the skip


def _inverted_residual_body() -> nn.Sequential:
    """Conv1x1(8->32) BN ReLU6 -> depthwise Conv3x3(32) BN ReLU6 -> Conv1x1(32->8) BN; no biases."""
    torch.manual_seed(0)
    body = nn.Sequential(
        nn.Conv2d(8, 32, 1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU6(),
        nn.Conv2d(32, 8, 1, bias=False),
        nn.BatchNorm2d(8),
    )
    _randomize_batchnorms(body)
    return body


def test_inverted_residual_half_expansion_prunes_the_depthwise_conv_with_it() -> None:
    model = _inverted_residual_body()
    x = torch.randn(2, 8, 6, 6)
    layers = find_prunable_layers(model, ["0"])
    scores = {"0": torch.arange(32.0).flip(0)}  # the highest indices score lowest
    removed = list(range(16, 32))
    assert select_removals(scores, {"0": 0.5}, layers) == {"0": removed}
    reference = copy.deepcopy(model)
    for index in (0, 1, 3, 4):  # expansion conv, its BN, depthwise conv, its BN
        _zero_units(reference[index], removed)
    assert count_params(model) == 8 * 32 + 2 * 32 + 32 * 9 + 2 * 32 + 32 * 8 + 2 * 8 == 944

    changes = apply_structured_pruning(model, {"0": removed}, x)

    assert changes == [LayerChange("0", 32, 16, removed), LayerChange("3", 32, 16, removed)]
    depthwise = model[3]
    assert depthwise.weight.shape == (16, 1, 3, 3)
    assert (depthwise.groups, depthwise.in_channels, depthwise.out_channels) == (16, 16, 16)
    assert model[6].weight.shape == (8, 16, 1, 1)
    assert count_params(model) == 8 * 16 + 2 * 16 + 16 * 9 + 2 * 16 + 16 * 8 + 2 * 8 == 480
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_requesting_the_depthwise_conv_prunes_the_expansion_conv_too() -> None:
    model = _inverted_residual_body()
    removed = list(range(0, 32, 2))

    changes = apply_structured_pruning(model, {"3": removed}, torch.randn(2, 8, 6, 6))

    assert [(c.name, c.after) for c in changes] == [("0", 16), ("3", 16)]
    assert model[3].groups == 16 and count_params(model) == 480


def test_depthwise_conv_uses_the_whole_layer_count_rule() -> None:
    # one filter per group: a per-group rule would never remove anything
    conv = nn.Conv2d(16, 16, 3, groups=16)
    layer = PrunableLayer("dw", conv, 16)
    scores = {"dw": torch.arange(16.0)}
    assert select_removals(scores, {"dw": 0.25}, [layer]) == {"dw": [0, 1, 2, 3]}


def test_depthwise_conv_on_the_model_input_is_refused() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 3, 3, groups=3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    state = _state(model)
    with pytest.raises(PruningError, match=r"'0', a depthwise conv whose input channels come"):
        apply_structured_pruning(model, {"0": [1]}, torch.randn(1, 3, 8, 8))
    assert _unchanged(model, state)


def test_depthwise_style_conv_with_fewer_outputs_than_inputs_is_refused() -> None:
    # groups == out_channels (8) but in_channels 16: torch-pruning 1.6 calls it depthwise and
    # pairs input i with output i, which is wrong (each output reads two inputs)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 1), nn.ReLU(), nn.Conv2d(16, 8, 3, groups=8), nn.ReLU(), nn.Conv2d(8, 2, 1)
    )
    state = _state(model)
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(PruningError, match=r"'2' \(in_channels=16, out_channels=8, groups=8\)"):
        apply_structured_pruning(model, {"2": [1]}, x)
    with pytest.raises(PruningError, match=r"'0': this reaches '2'.*depthwise-style"):
        apply_structured_pruning(model, {"0": [2, 3]}, x)
    assert _unchanged(model, state)


# ---------------------------------------------------------------------------------------------
# Grouped convs: select_removals counts and chooses per group


def _grouped_layer() -> PrunableLayer:
    return PrunableLayer("g", nn.Conv2d(16, 16, 3, groups=4), 16)


def test_quarter_of_a_grouped_conv_removes_one_filter_per_group() -> None:
    # the four globally lowest scores all lie in group 0; per group, each group's lowest goes
    scores = torch.tensor([0.0, 0.1, 0.2, 0.3, 5, 4, 6, 7, 9, 8, 9, 9, 7, 7, 6, 7])
    assert select_removals({"g": scores}, {"g": 0.25}, [_grouped_layer()]) == {"g": [0, 5, 9, 14]}


def test_grouped_conv_ties_remove_the_lowest_index_of_each_group() -> None:
    removals = select_removals({"g": torch.zeros(16)}, {"g": 0.25}, [_grouped_layer()])
    assert removals == {"g": [0, 4, 8, 12]}


@pytest.mark.parametrize(
    ("ratio", "per_group"),
    [(0.1, 1), (0.25, 1), (0.5, 2), (0.6, 3), (0.9, 3), (0.0, 0)],
)
def test_grouped_count_rule_applies_per_group(ratio: float, per_group: int) -> None:
    # min(ceil(ratio * 4), 3) per group of 4: never under-delivered, one filter per group kept
    removals = select_removals({"g": torch.arange(16.0)}, {"g": ratio}, [_grouped_layer()])
    expected = [g * 4 + j for g in range(4) for j in range(per_group)]
    assert removals.get("g", []) == expected


def test_ratio_errors_still_name_the_grouped_layer() -> None:
    with pytest.raises(PruningError, match="would empty layer 'g'"):
        select_removals({"g": torch.zeros(16)}, {"g": 1.0}, [_grouped_layer()])


# ---------------------------------------------------------------------------------------------
# Grouped convs: surgery


class GroupedNet(nn.Module):
    """stem Conv3x3(3->16) BN ReLU -> grouped Conv3x3(16->16, groups 4) BN ReLU -> head Conv1x1."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.bn2 = nn.BatchNorm2d(16)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.stem(x)))
        return self.head(torch.relu(self.bn2(self.grouped(y))))


def _grouped_net() -> GroupedNet:
    torch.manual_seed(0)
    model = GroupedNet()
    _randomize_batchnorms(model)
    return model


def test_grouped_conv_quarter_pruned_keeps_groups_and_equals_masked_reference() -> None:
    model = _grouped_net()
    x = torch.randn(2, 3, 8, 8)
    layers = find_prunable_layers(model, ["grouped"])
    scores = {"grouped": torch.tensor([3.0, 1, 2, 4, 0, 5, 6, 7, 8, 9, 7, 8, 6, 7, 8, 5])}
    removals = select_removals(scores, {"grouped": 0.25}, layers)
    assert removals == {"grouped": [1, 4, 10, 15]}  # one per group, at different positions
    reference = copy.deepcopy(model)
    _zero_units(reference.grouped, removals["grouped"])
    _zero_units(reference.bn2, removals["grouped"])
    before = count_params(model)

    changes = apply_structured_pruning(model, removals, x)

    assert changes == [LayerChange("grouped", 16, 12, [1, 4, 10, 15])]
    grouped = model.grouped
    assert (grouped.out_channels, grouped.in_channels, grouped.groups) == (12, 16, 4)
    assert grouped.weight.shape == (12, 4, 3, 3)
    assert model.head.in_channels == 12
    assert before - count_params(model) == 4 * (4 * 9 + 1) + 4 * 2 + 4 * 4
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_conv_feeding_a_grouped_conv_loses_inputs_per_group_at_different_positions() -> None:
    # one input per group of 'grouped', at positions 1, 0, 2, 3 within the groups: torch-pruning
    # 1.6 alone keeps group 0's positions for every group, so this is pruned by the suite itself
    model = _grouped_net()
    dense_weight = model.grouped.weight.detach().clone()
    x = torch.randn(2, 3, 8, 8)
    removed = [1, 4, 10, 15]
    reference = copy.deepcopy(model)
    _zero_units(reference.stem, removed)
    _zero_units(reference.bn1, removed)

    changes = apply_structured_pruning(model, {"stem": removed}, x)

    assert changes == [LayerChange("stem", 16, 12, removed)]
    grouped = model.grouped
    assert (grouped.out_channels, grouped.in_channels, grouped.groups) == (16, 12, 4)
    kept_per_group = [[0, 2, 3], [1, 2, 3], [0, 1, 3], [0, 1, 2]]
    for g, kept in enumerate(kept_per_group):
        rows = slice(4 * g, 4 * g + 4)
        assert torch.equal(grouped.weight[rows], dense_weight[rows][:, kept])
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_grouped_conv_with_one_input_per_group_loses_outputs_per_group() -> None:
    # Conv2d(8, 16, groups=8): two filters per input channel (a channel multiplier)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, groups=8), nn.ReLU(), nn.Conv2d(16, 2, 1)
    )
    x = torch.randn(2, 3, 8, 8)
    layers = find_prunable_layers(model, ["2"])
    removals = select_removals({"2": torch.zeros(16)}, {"2": 0.5}, layers)
    assert removals == {"2": [0, 2, 4, 6, 8, 10, 12, 14]}
    reference = copy.deepcopy(model)
    _zero_units(reference[2], removals["2"])

    apply_structured_pruning(model, removals, x)

    assert (model[2].in_channels, model[2].out_channels, model[2].groups) == (8, 8, 8)
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Grouped convs: refusals (nothing is modified)


@pytest.mark.parametrize(
    ("removals", "pattern"),
    [
        (
            {"grouped": [0, 1, 2, 3]},
            r"'grouped' \(in_channels=16, out_channels=16, groups=4\): the removals take "
            r"\[4, 0, 0, 0\] output channels from its 4 groups of 4",
        ),
        (
            {"stem": [0, 1, 2, 3]},
            r"'stem': this reaches 'grouped' .*\[4, 0, 0, 0\] input channels",
        ),
        ({"stem": [0, 4, 8]}, r"'stem': this reaches 'grouped' .*\[1, 1, 1, 0\] input channels"),
    ],
)
def test_unequal_losses_per_group_are_refused(removals: dict, pattern: str) -> None:
    model = _grouped_net()
    state = _state(model)
    with pytest.raises(PruningError, match=pattern):
        apply_structured_pruning(model, removals, torch.randn(1, 3, 8, 8))
    assert _unchanged(model, state)


def test_losing_whole_input_groups_is_refused() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, groups=8), nn.ReLU(), nn.Conv2d(16, 2, 1)
    )
    state = _state(model)
    with pytest.raises(PruningError, match=r"'0': this reaches '2'.*8 groups of 1"):
        apply_structured_pruning(model, {"0": [1]}, torch.randn(1, 3, 8, 8))
    assert _unchanged(model, state)


def test_grouped_conv_feeding_a_finer_grouped_conv_must_suit_both() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, groups=4),
        nn.ReLU(),
        nn.Conv2d(16, 16, 1, groups=8),
        nn.ReLU(),
        nn.Conv2d(16, 2, 1),
    )
    x = torch.randn(2, 3, 8, 8)
    state = _state(model)
    # one per group of 4 for '2', but groups 0, 2, 4, 6 of '4' (pairs of inputs) lose one each
    with pytest.raises(PruningError, match=r"reaches '4'.*\[1, 0, 1, 0, 1, 0, 1, 0\] input"):
        apply_structured_pruning(model, {"2": [0, 4, 8, 12]}, x)
    assert _unchanged(model, state)
    removed = [0, 3, 4, 7, 8, 11, 12, 15]  # two per group of '2', one per pair of '4'
    reference = copy.deepcopy(model)
    _zero_units(reference[2], removed)

    apply_structured_pruning(model, {"2": removed}, x)

    assert (model[4].in_channels, model[4].groups) == (8, 8)
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# A failed verification puts the model back


def test_failed_verification_restores_the_model() -> None:
    # sigmoid(0) = 0.5: removing a channel is NOT zeroing it, so verification fails
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sigmoid(), nn.Conv2d(4, 2, 3))
    x = torch.randn(1, 3, 8, 8)
    state, dense_out = _state(model), _eval_out(model, x)
    with pytest.raises(VerificationError, match="differs from the masked reference"):
        apply_structured_pruning(model, {"0": [1]}, x)
    assert _unchanged(model, state)
    assert (model[0].out_channels, model[1].num_features, model[3].in_channels) == (4, 4, 4)
    torch.testing.assert_close(_eval_out(model, x), dense_out, rtol=0, atol=0)


def test_producer_and_grouped_conv_pruned_together() -> None:
    model = _grouped_net()
    x = torch.randn(2, 3, 8, 8)
    stem_removed, grouped_removed = [1, 4, 10, 15], [3, 6, 8, 13]
    reference = copy.deepcopy(model)
    for module, removed in [
        (reference.stem, stem_removed),
        (reference.bn1, stem_removed),
        (reference.grouped, grouped_removed),
        (reference.bn2, grouped_removed),
    ]:
        _zero_units(module, removed)

    apply_structured_pruning(model, {"stem": stem_removed, "grouped": grouped_removed}, x)

    grouped = model.grouped
    assert (grouped.in_channels, grouped.out_channels, grouped.groups) == (12, 12, 4)
    assert grouped.weight.shape == (12, 3, 3, 3)
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_failed_surgery_restores_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # the stem and its BN are pruned before the grouped conv's inputs, whose surgery fails here
    def fail(conv: nn.Module, idxs: list[int]) -> None:
        raise RuntimeError("surgery failed")

    monkeypatch.setattr(verify, "prune_grouped_in_channels", fail)
    model = _grouped_net()
    x = torch.randn(1, 3, 8, 8)
    state, dense_out = _state(model), _eval_out(model, x)
    with pytest.raises(VerificationError, match="failed while pruning.*restored.*surgery failed"):
        apply_structured_pruning(model, {"stem": [1, 4, 10, 15]}, x)
    assert _unchanged(model, state)
    assert (model.stem.out_channels, model.bn1.num_features, model.grouped.in_channels) == (16,) * 3
    torch.testing.assert_close(_eval_out(model, x), dense_out, rtol=0, atol=0)
