"""Network slimming (Liu et al., ICCV 2017): the L1 subgradient on BatchNorm scales, |gamma|
scores, and runs in the suite's pruning stage."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from pruning_suite import Allocation
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite_plugins.slimming import Slimming, SlimmingConfig

from ._stage_kit import run_record, tiny_context, zero_grads


class _Net(nn.Module):
    """conv1-bn1 (prunable), conv2-bn2 (not prunable), fc1 (prunable, no BN), fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.fc1, self.fc = nn.Linear(27, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(torch.relu(self.fc1(x.flatten(1))))


def _net() -> _Net:
    torch.manual_seed(0)
    net = _Net()
    with torch.no_grad():
        net.bn1.weight.copy_(torch.tensor([0.5, -0.2, 0.0, 2.0]))
        net.bn2.weight.copy_(torch.tensor([0.3, -0.4, 0.7]))
    return net


def test_regularize_adds_exactly_reg_sign_gamma_to_the_scales_after_prunable_convs() -> None:
    net = _net().train()
    ctx = tiny_context(net, ["conv1", "fc1"], {"conv1": 0.5, "fc1": 0.4})
    zero_grads(net)
    running = net.bn1.running_mean.clone()
    Slimming(SlimmingConfig(reg=1e-3)).regularize(ctx, net)
    assert torch.equal(net.bn1.weight.grad, torch.tensor([1e-3, -1e-3, 0.0, 1e-3]))
    untouched = {n: p.grad for n, p in net.named_parameters() if n != "bn1.weight"}
    assert all(not g.any() for g in untouched.values())  # bn2 follows a conv that is not prunable
    assert net.training and torch.equal(net.bn1.running_mean, running)  # traced on a copy


def test_scores_are_abs_gamma_and_l1_where_no_batchnorm_follows() -> None:
    net = _net().eval()
    ctx = tiny_context(net, ["conv1", "fc1"], {"conv1": 0.5, "fc1": 0.4})
    scores = Slimming().score(ctx)
    assert scores["conv1"].tolist() == pytest.approx([0.5, 0.2, 0.0, 2.0])
    assert torch.allclose(scores["fc1"], net.fc1.weight.detach().abs().sum(1).double())
    graph = tp.DependencyGraph().build_dependency(net, example_inputs=torch.randn(1, 1, 6, 6))
    group = graph.get_pruning_group(net.conv1, tp.prune_conv_out_channels, list(range(4)))
    reference = tp.importance.BNScaleImportance(normalizer=None)(group)  # torch-pruning's rule
    assert torch.allclose(scores["conv1"].float(), reference)


def test_config_defaults_come_from_the_paper_and_bad_values_are_refused() -> None:
    method = load_registry().method("slimming")
    assert method.config.reg == 1e-4  # VGGNet on CIFAR (Liu et al. 2017, Sec. 5)
    assert method.allocation() == Allocation()
    glob = load_registry().method("slimming", {"scope": "global", "max_layer_ratio": 0.8})
    assert glob.allocation() == Allocation(scope="global", max_layer_ratio=0.8)
    with pytest.raises(PluginError, match="invalid config for plugin 'slimming'"):
        load_registry().method("slimming", {"reg": -1.0})


def test_slimming_runs_in_the_suites_pruning_stage(tmp_path) -> None:
    record = run_record(tmp_path, "slimming", "digits-convnet-s4")
    stage = record["pruning_stage"]
    assert (stage["epochs"], stage["lr_schedule"], len(stage["log"])) == (2, "0:0.01", 2)
    assert [(r["round"], r["epoch"]) for r in stage["rounds"]] == [(1, 2)]
    assert stage["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    assert stage["method_optimizer_steps"] == 0
    assert stage["calibration_samples"] == 100  # one batch, to trace the dependency graph
    assert stage["method_grad_samples"] <= 4


@pytest.mark.slow
def test_slimming_is_certified_S4_2_on_digits_convnet_s4(tmp_path) -> None:
    record = run_record(tmp_path, "slimming", "digits-convnet-s4", smoke=False)
    stage = record["pruning_stage"]
    assert (stage["epochs"], len(stage["log"]), stage["method_optimizer_steps"]) == (10, 10, 0)
    assert record["certification"]["setup"] == "S4.2"
