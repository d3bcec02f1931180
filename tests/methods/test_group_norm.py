"""DepGraph group sparsity (Fang et al., CVPR 2023): the regularizer's gradient is the analytic
gradient of the group penalty, scores are group norms, and it runs in the suite's pruning stage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_suite import Allocation
from pruning_suite.contract.plugins import load_registry
from pruning_suite_plugins._unit_groups import UnitGroups
from pruning_suite_plugins.group_norm import GroupNorm, GroupNormConfig, group_gamma

from ._stage_kit import run_record, tiny_context, zero_grads


class _TwoFilters(nn.Module):
    """conv1 (2 filters) - bn1 - pool - flatten - fc1 (9 input columns per filter) - fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.fc1, self.fc = nn.Linear(18, 4), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def _net() -> _TwoFilters:
    """Filter 0's group (its weights, its BN scale, its fc1 columns) is the smaller one."""
    torch.manual_seed(0)
    net = _TwoFilters()
    with torch.no_grad():
        net.conv1.weight[0].mul_(0.1)
        net.fc1.weight[:, :9].mul_(0.1)
        net.bn1.weight.copy_(torch.tensor([0.1, 1.0]))
    return net


def _group_sq_norms(net: _TwoFilters) -> list[torch.Tensor]:
    """Per filter: ||conv1.w[k]||^2 + bn1.gamma[k]^2 + ||fc1.w[:, 9k:9k+9]||^2 (autograd-ready)."""
    return [
        net.conv1.weight[k].pow(2).sum()
        + net.bn1.weight[k].pow(2)
        + net.fc1.weight[:, 9 * k : 9 * k + 9].pow(2).sum()
        for k in range(2)
    ]


def test_gradient_added_is_the_analytic_gradient_of_the_group_penalty() -> None:
    net = _net().train()
    ctx = tiny_context(net, ["conv1"], {"conv1": 0.5})
    reg, alpha = 1e-2, 4.0
    # two groups: min-max normalization gives 1 and 0, so gamma = (2**alpha, 1)
    gamma = (2.0**alpha, 1.0)
    penalty = sum(reg / 2 * g * sq for g, sq in zip(gamma, _group_sq_norms(net), strict=True))
    expected = dict(
        zip(
            ["conv1.weight", "bn1.weight", "fc1.weight"],
            torch.autograd.grad(penalty, [net.conv1.weight, net.bn1.weight, net.fc1.weight]),
            strict=True,
        )
    )
    zero_grads(net)
    GroupNorm(GroupNormConfig(reg=reg, alpha=alpha)).regularize(ctx, net)
    for name, param in net.named_parameters():
        if name in expected:
            assert torch.allclose(param.grad, expected[name], rtol=1e-6, atol=1e-12), name
        else:  # biases (conv, BN shift, fc1) and the output layer: nothing
            assert not param.grad.any(), name
    assert torch.allclose(net.bn1.weight.grad, torch.tensor([reg * 16 * 0.1, reg * 1.0]))


def test_equal_groups_get_gamma_one_not_nan() -> None:
    net = _net()
    with torch.no_grad():
        net.conv1.weight[0] = net.conv1.weight[1]
        net.bn1.weight.fill_(1.0)
        net.fc1.weight[:, :9] = net.fc1.weight[:, 9:]
    ctx = tiny_context(net, ["conv1"], {"conv1": 0.5})
    slices = UnitGroups().of(ctx)["conv1"]
    assert group_gamma(net, slices, 2, alpha=4.0).tolist() == [1.0, 1.0]


def test_scores_are_torch_prunings_group_squared_l2_norm() -> None:
    net = _net().eval()
    scores = GroupNorm().score(tiny_context(net, ["conv1"], {"conv1": 0.5}))
    # GroupMagnitudeImportance(p=2, group_reduction="mean"): mean over the 3 members
    expected = torch.stack([sq.detach() for sq in _group_sq_norms(net)]).double() / 3
    assert torch.allclose(scores["conv1"], expected, rtol=1e-6)
    assert float(scores["conv1"][0]) < float(scores["conv1"][1])


def test_config_defaults_and_allocation() -> None:
    method = load_registry().method("group-norm")
    assert (method.config.reg, method.config.alpha) == (5e-4, 4.0)
    assert method.allocation() == Allocation()
    glob = load_registry().method("group-norm", {"scope": "global"})
    assert glob.allocation() == Allocation(scope="global", normalizer="mean")


def test_group_norm_runs_in_the_suites_pruning_stage(tmp_path) -> None:
    record = run_record(tmp_path, "group-norm", "digits-convnet-s4")
    stage = record["pruning_stage"]
    assert (stage["epochs"], stage["lr_schedule"], len(stage["log"])) == (2, "0:0.01", 2)
    assert [(r["round"], r["epoch"]) for r in stage["rounds"]] == [(1, 2)]
    assert stage["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    assert stage["method_optimizer_steps"] == 0
    assert stage["calibration_samples"] == 100  # one batch, to trace the dependency graph
    assert stage["method_grad_samples"] <= 4


@pytest.mark.slow
def test_group_norm_is_certified_S4_2_on_digits_convnet_s4(tmp_path) -> None:
    record = run_record(tmp_path, "group-norm", "digits-convnet-s4", smoke=False)
    stage = record["pruning_stage"]
    assert (stage["epochs"], len(stage["log"]), stage["method_optimizer_steps"]) == (10, 10, 0)
    assert record["certification"]["setup"] == "S4.2"
