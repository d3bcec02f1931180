"""GReg-1 (Wang et al., ICLR 2021): filters chosen by L1 at the stage start get a growing L2
penalty, nothing else does, and exactly they are pruned."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_suite.contract.plugins import load_registry
from pruning_suite.engine.pruning import select_removals
from pruning_suite_plugins.greg import GReg, GRegConfig

from ._stage_kit import run_record, tiny_context, zero_grads


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.fc1, self.fc = nn.Linear(36, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def _net() -> _Net:
    """conv1's filter i has sum |w| = 9 * m_i with m = (3, 1, 4, 2): filters 1 and 3 are smallest."""
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        for i, magnitude in enumerate((3.0, 1.0, 4.0, 2.0)):
            net.conv1.weight[i] = magnitude * torch.tensor([1.0, -1.0, 1.0]).repeat(3).view(1, 3, 3)
    return net


def test_lambda_grows_by_delta_every_interval_on_the_chosen_filters_only() -> None:
    net = _net().train()
    ctx = tiny_context(net, ["conv1", "fc1"], {"conv1": 0.5, "fc1": 0.0})
    method = GReg(GRegConfig(delta_reg=0.1, update_interval=2, reg_cap=0.25))
    weight = net.conv1.weight.detach()
    seen = []
    for _ in range(6):
        zero_grads(net)
        method.regularize(ctx, net)
        seen.append(method.reg)
        lam = method.reg
        expected = torch.zeros_like(weight)
        expected[[1, 3]] = lam * weight[[1, 3]]
        assert torch.equal(net.conv1.weight.grad, expected)
        others = [p.grad for n, p in net.named_parameters() if n != "conv1.weight"]
        assert all(not g.any() for g in others)  # fc1 (ratio 0), biases, BN: nothing
    # updates on steps 1, 3, 5: lambda = k * delta after k updates, capped at 0.25
    assert seen == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.25, 0.25])


def test_the_filters_chosen_at_the_start_are_pruned_even_if_they_grow() -> None:
    net = _net().train()
    ctx = tiny_context(net, ["conv1", "fc1"], {"conv1": 0.5, "fc1": 0.0})
    method = GReg()
    zero_grads(net)
    method.regularize(ctx, net)  # the stage starts: filters 1 and 3 chosen
    with torch.no_grad():
        net.conv1.weight[1].mul_(100.0)  # filter 1 is now the largest
    scores = method.score(ctx)
    assert select_removals(scores, ctx.ratios, ctx.layers) == {"conv1": [1, 3]}
    fresh = GReg()  # no stage yet: chosen by L1 now, filters 3 and 0
    assert select_removals(fresh.score(ctx), ctx.ratios, ctx.layers) == {"conv1": [0, 3]}


def test_a_new_model_starts_a_new_stage() -> None:
    method = GReg(GRegConfig(delta_reg=0.1))
    for _ in range(2):
        net = _net().train()
        zero_grads(net)
        method.regularize(tiny_context(net, ["conv1"], {"conv1": 0.25}), net)
        assert method.reg == pytest.approx(0.1)


def test_config_defaults() -> None:
    config = load_registry().method("greg").config
    assert (config.delta_reg, config.update_interval, config.reg_cap) == (1e-2, 1, 1.0)


def test_greg_runs_in_the_suites_pruning_stage(tmp_path) -> None:
    record = run_record(tmp_path, "greg", "digits-convnet-s4")
    stage = record["pruning_stage"]
    assert (stage["epochs"], stage["lr_schedule"], len(stage["log"])) == (2, "0:0.01", 2)
    assert [(r["round"], r["epoch"]) for r in stage["rounds"]] == [(1, 2)]
    assert stage["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    counts = ("calibration_samples", "method_grad_samples", "method_optimizer_steps")
    assert [stage[c] for c in counts] == [0, 0, 0]


@pytest.mark.slow
def test_greg_is_certified_S4_2_on_digits_convnet_s4(tmp_path) -> None:
    record = run_record(tmp_path, "greg", "digits-convnet-s4", smoke=False)
    stage = record["pruning_stage"]
    assert (stage["epochs"], len(stage["log"]), stage["method_optimizer_steps"]) == (10, 10, 0)
    assert record["certification"]["setup"] == "S4.2"
