"""Structured pruning: the count rule, the tie rule, score checks, and verified physical surgery.

Every reference output here is built by the TEST (zeroing weights by hand), independently of the
masked reference ``apply_structured_pruning`` builds for its own verification.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision
from torch import nn

from pruning_suite.contract.method import PrunableLayer
from pruning_suite.engine.pruning import (
    LayerChange,
    apply_structured_pruning,
    count_params,
    find_prunable_layers,
    output_layer_name,
    select_removals,
    units_to_remove,
)
from pruning_suite.errors import PluginError, PruningError, VerificationError
from tests.helpers import eval_out as _eval_out
from tests.helpers import zero_units as _zero_units


def _conv_bn_net() -> nn.Sequential:
    """Conv(3->16) -> BN(16) -> ReLU -> Conv(16->8), BN with non-trivial running statistics."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 8, 3, bias=False),
    )
    with torch.no_grad():
        bn = net[1]
        bn.running_mean.copy_(torch.randn(16))
        bn.running_var.copy_(torch.rand(16) + 0.5)
        bn.weight.copy_(torch.randn(16))
        bn.bias.copy_(torch.randn(16))
    return net


class ThreeConvNet(nn.Module):
    """Three conv3x3(pad 1)+ReLU+maxpool2 of widths 16/32/64 on 3x32x32, then fc1, fc2."""

    def __init__(self) -> None:
        super().__init__()
        blocks = []
        for c_in, c_out in [(3, 16), (16, 32), (32, 64)]:
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        self.fc1 = nn.Linear(1024, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.features(x).flatten(1))))


def _three_conv() -> ThreeConvNet:
    torch.manual_seed(0)
    return ThreeConvNet()


# ---------------------------------------------------------------------------------------------
# find_prunable_layers


def test_find_prunable_layers_excludes_output_layer_and_keeps_module_order() -> None:
    model = _three_conv()
    layers = find_prunable_layers(model, ["*"])
    assert [(layer.name, layer.num_units) for layer in layers] == [
        ("features.0", 16),
        ("features.3", 32),
        ("features.6", 64),
        ("fc1", 64),
    ]
    assert output_layer_name(model) == "fc2"
    assert layers[0].module is model.features[0]


def test_find_prunable_layers_matches_fnmatch_case_sensitively() -> None:
    model = _three_conv()
    assert [layer.name for layer in find_prunable_layers(model, ["features.[36]"])] == [
        "features.3",
        "features.6",
    ]
    with pytest.raises(PruningError, match=r"FC\*.*'fc2'"):
        find_prunable_layers(model, ["FC*", "fc2"])


# ---------------------------------------------------------------------------------------------
# units_to_remove


@pytest.mark.parametrize(
    ("ratio", "num_units", "expected"),
    [
        (0.3, 10, 3),
        (0.5, 16, 8),
        (0.9, 10, 9),
        (0.99, 10, 9),
        (0.0, 10, 0),
        (0.7, 16, 12),
    ],
)
def test_R_PRUNE_2_units_to_remove_table(ratio: float, num_units: int, expected: int) -> None:
    assert units_to_remove(ratio, num_units, "layer") == expected


@pytest.mark.parametrize("ratio", [1.0, 1.5, -0.1, float("nan")])
def test_units_to_remove_rejects_ratio_outside_unit_interval(ratio: float) -> None:
    with pytest.raises(PruningError, match="'features.3'"):
        units_to_remove(ratio, 32, "features.3")


def test_ratio_one_would_empty_the_layer() -> None:
    with pytest.raises(PruningError, match="would empty layer 'conv1'"):
        units_to_remove(1.0, 8, "conv1")


# ---------------------------------------------------------------------------------------------
# select_removals


def _identical_filters_layer() -> PrunableLayer:
    conv = nn.Conv2d(4, 8, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(0)))
    return PrunableLayer("conv", conv, 8)


@pytest.mark.parametrize("threads", [None, 1, 2])
def test_ties_remove_lowest_indices_first_with_any_thread_count(threads: int | None) -> None:
    layer = _identical_filters_layer()
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        scores = {"conv": layer.module.weight.detach().abs().flatten(1).sum(1)}
        assert torch.unique(scores["conv"]).numel() == 1
        assert select_removals(scores, {"conv": 0.5}, [layer]) == {"conv": [0, 1, 2, 3]}
    finally:
        torch.set_num_threads(before)


def test_select_removals_takes_lowest_scores_and_sorts_indices() -> None:
    layer = PrunableLayer("fc", nn.Linear(2, 5), 5)
    scores = {"fc": torch.tensor([0.5, -1.0, 3.0, 0.1, 0.1])}
    assert select_removals(scores, {"fc": 0.5}, [layer]) == {"fc": [1, 3, 4]}
    assert select_removals(scores, {}, [layer]) == {}  # missing ratio means 0


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (torch.zeros(7), r"'conv'.*shape \[7\].*shape \[8\]"),
        (torch.zeros(8, 1), r"'conv'.*shape \[8, 1\].*shape \[8\]"),
        (torch.tensor([0.0] * 7 + [float("nan")]), r"'conv' contain NaN.*shape \[8\]"),
        (torch.tensor([0.0] * 7 + [float("inf")]), r"'conv' contain NaN or inf"),
        ([0.0] * 8, r"'conv' are a list"),
    ],
)
def test_select_removals_rejects_bad_scores(bad: object, pattern: str) -> None:
    layer = _identical_filters_layer()
    with pytest.raises(PluginError, match=pattern):
        select_removals({"conv": bad}, {"conv": 0.5}, [layer])


def test_select_removals_rejects_missing_and_unknown_layers() -> None:
    layer = _identical_filters_layer()
    with pytest.raises(PluginError, match="lack layer 'conv'.*shape \\[8\\]"):
        select_removals({}, {"conv": 0.5}, [layer])
    with pytest.raises(PluginError, match="'fc'.*not a prunable layer"):
        select_removals({"conv": torch.zeros(8), "fc": torch.zeros(8)}, {}, [layer])
    with pytest.raises(PruningError, match="'fc'.*not a prunable layer"):
        select_removals({"conv": torch.zeros(8)}, {"fc": 0.5}, [layer])
    with pytest.raises(PruningError, match="would empty layer 'conv'"):
        select_removals({"conv": torch.zeros(8)}, {"conv": 1.0}, [layer])


# ---------------------------------------------------------------------------------------------
# apply_structured_pruning: the three models


def test_resnet18_conv1_group_prunes_coupled_residual_layers() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    x = torch.randn(1, 3, 224, 224)
    reference = copy.deepcopy(model)
    coupled = ["conv1", "bn1", "layer1.0.conv2", "layer1.0.bn2", "layer1.1.conv2", "layer1.1.bn2"]
    for name in coupled:
        _zero_units(reference.get_submodule(name), [2, 6, 9])
    assert count_params(model) == 11_689_512

    changes = apply_structured_pruning(model, {"conv1": [2, 6, 9]}, x)

    assert count_params(model) == 11_678_301
    assert changes == [
        LayerChange(name, 64, 61, [2, 6, 9])
        for name in ["conv1", "layer1.0.conv2", "layer1.1.conv2"]
    ]
    out = _eval_out(model, x)
    assert out.shape == (1, 1000)
    torch.testing.assert_close(out, _eval_out(reference, x), rtol=0, atol=1e-5)


def test_R_PRUNE_3_conv_bn_net_output_equals_masked_reference() -> None:
    model = _conv_bn_net()
    removed = [0, 1, 3, 4, 7, 8, 10, 13, 15]
    kept = [i for i in range(16) if i not in removed]
    old_mean, old_var = model[1].running_mean.clone(), model[1].running_var.clone()
    x = torch.randn(2, 3, 10, 10)
    reference = copy.deepcopy(model)
    _zero_units(reference[0], removed)
    _zero_units(reference[1], removed)
    assert count_params(model) == 1_616
    model.train()

    changes = apply_structured_pruning(model, {"0": removed}, x)

    assert changes == [LayerChange("0", 16, 7, removed)]
    assert count_params(model) == 707
    bn = model[1]
    assert bn.num_features == 7 and bn.running_mean.shape == (7,)
    # tracing must not update BatchNorm statistics, and the train mode comes back
    assert torch.equal(bn.running_mean, old_mean[kept])
    assert torch.equal(bn.running_var, old_var[kept])
    assert model.training and bn.training
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_three_conv_net_flatten_linear_columns_follow() -> None:
    model = _three_conv()
    x = torch.randn(2, 3, 32, 32)
    reference = copy.deepcopy(model)
    _zero_units(reference.features[6], [0, 5])
    assert count_params(model) == 89_834

    changes = apply_structured_pruning(model, {"features.6": [5, 0]}, x)

    assert changes == [LayerChange("features.6", 64, 62, [0, 5])]
    assert model.fc1.in_features == 992
    assert count_params(model) == 87_208
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# apply_structured_pruning: refusals (nothing is modified)


@pytest.mark.parametrize(
    ("removals", "pattern"),
    [
        ({"fc2": [0]}, "'fc2': it is the output layer"),
        ({"fc1": list(range(64))}, "would empty layer 'fc1'"),
        ({"fc1": [64]}, r"'fc1': indices \[64\] are outside \[0, 64\)"),
        ({"fc1": [1, 1]}, "'fc1': repeated indices"),
        ({"features.1": [0]}, "'features.1': it is a ReLU"),
        ({"nope": [0]}, "'nope': it is no module"),
    ],
)
def test_apply_refuses_bad_requests_without_modifying(removals: dict, pattern: str) -> None:
    model = _three_conv()
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(PruningError, match=pattern):
        apply_structured_pruning(model, removals, torch.randn(1, 3, 32, 32))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_coupled_layers_must_agree() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(PruningError, match="'conv1' is coupled with 'layer1.0.conv2'"):
        apply_structured_pruning(model, {"conv1": [2, 6, 9], "layer1.0.conv2": [1, 2, 3]}, x)
    assert model.conv1.out_channels == 64
    changes = apply_structured_pruning(model, {"conv1": [2, 6], "layer1.1.conv2": [2, 6]}, x)
    assert [(c.name, c.after) for c in changes] == [
        ("conv1", 62),
        ("layer1.0.conv2", 62),
        ("layer1.1.conv2", 62),
    ]


def test_empty_request_is_a_no_op() -> None:
    model = _three_conv()
    assert apply_structured_pruning(model, {"fc1": []}, torch.randn(1, 3, 32, 32)) == []
    assert count_params(model) == 89_834


# ---------------------------------------------------------------------------------------------
# apply_structured_pruning: merged groups and the verification itself


class TwoBranchNet(nn.Module):
    """Two conv branches concatenated into one conv: its input channels come from two groups."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 6, 3, padding=1)
        self.merge = nn.Conv2d(10, 5, 1)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1)
        return self.head(self.merge(y).mean((2, 3)))


def test_groups_meeting_at_a_concat_are_pruned_in_original_numbering() -> None:
    torch.manual_seed(0)
    model = TwoBranchNet()
    x = torch.randn(2, 3, 8, 8)
    reference = copy.deepcopy(model)
    _zero_units(reference.a, [1])
    _zero_units(reference.b, [0, 5])

    apply_structured_pruning(model, {"a": [1], "b": [0, 5]}, x)

    assert model.merge.in_channels == 7
    torch.testing.assert_close(_eval_out(model, x), _eval_out(reference, x), rtol=0, atol=1e-5)


def test_verification_catches_pruning_that_is_not_masking() -> None:
    # sigmoid(0) = 0.5: removing a channel is NOT the same as zeroing it, and the check must say so
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 2, 3))
    with pytest.raises(VerificationError, match="differs from the masked reference by"):
        apply_structured_pruning(model, {"0": [1]}, torch.randn(1, 3, 8, 8))


def test_unverifiable_layer_types_are_refused_before_pruning() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    with pytest.raises(PruningError, match=r"reaches '1' \(LayerNorm\)"):
        apply_structured_pruning(model, {"0": [3]}, torch.randn(2, 4))
    assert model[0].out_features == 8
