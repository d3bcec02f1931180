"""Optimal brain damage (LeCun et al., 1990) with the empirical Fisher diagonal, as torch-pruning's
HessianImportance estimates it: a known Fisher on a linear model, exact per-example gradients,
the data counted, and a run on digits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.testing import MethodConformance
from pruning_suite_plugins.hessian import Hessian, HessianConfig, fisher_diagonal

from ._stage_kit import run_record, tiny_context

SMOKE = (None, "open", ["smoke run: reduced budget"])


def _linear_net() -> nn.Sequential:
    """A linear model: flatten -> hidden Linear(36, 4) (prunable) -> output Linear(4, 3)."""
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.Linear(4, 3)).eval()


def _known_fisher(net: nn.Sequential, ctx) -> torch.Tensor:
    """Hand-derived: for the linear model, dL_i/dW1 = (W2^T (softmax(z_i) - e_{y_i})) x_i^T, so the
    Fisher diagonal is mean_i (W2^T (p_i - e_i))^2 (x) x_i^2 (outer product of the squares)."""
    w1, b1 = net[1].weight.double(), net[1].bias.double()
    w2, b2 = net[2].weight.double(), net[2].bias.double()
    total, count = torch.zeros_like(w1), 0
    for inputs, labels in ctx.calibration_batches(4):
        x = inputs.flatten(1).double()
        p = torch.softmax((x @ w1.T + b1) @ w2.T + b2, dim=1)
        back = (p - F.one_hot(labels, 3).double()) @ w2  # [B, 4]
        total += (back**2).T @ (x**2)
        count += len(labels)
    return (total / count).detach()


def test_scores_are_half_the_fisher_weighted_squared_weights_on_a_linear_model() -> None:
    net = _linear_net()
    ctx = tiny_context(net, ["1"], {"1": 0.5})
    fisher = _known_fisher(net, ctx)
    expected = 0.5 * (fisher * net[1].weight.detach().double() ** 2).sum(dim=1)
    scores = Hessian(HessianConfig(batches=4)).score(ctx)["1"]
    assert scores.dtype == torch.float32
    assert scores.double().tolist() == pytest.approx(expected.tolist(), rel=1e-5)


def test_per_example_gradients_match_one_backward_pass_per_example() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),  # grouped, strided, zero padding
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, padding="same", padding_mode="reflect"),
        nn.Flatten(),
        nn.Linear(5 * 4 * 4, 3),
    ).eval()
    modules = {name: net.get_submodule(name) for name in ("0", "3", "5")}
    inputs, labels = torch.randn(7, 4, 8, 8), torch.randint(0, 3, (7,))
    fast = fisher_diagonal(net, modules, [(inputs[:4], labels[:4]), (inputs[4:], labels[4:])])
    weights = [m.weight for m in modules.values()]
    slow = [torch.zeros_like(w) for w in weights]
    for i in range(7):
        loss = F.cross_entropy(net(inputs[i : i + 1]), labels[i : i + 1])
        for total, grad in zip(slow, torch.autograd.grad(loss, weights), strict=True):
            total += grad**2 / 7
    for name, expected in zip(modules, slow, strict=True):
        assert torch.allclose(fast[name], expected, rtol=1e-5, atol=1e-10), name
    assert all(p.grad is None for p in net.parameters())


def test_the_model_is_not_touched_and_the_examples_are_counted() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    seen = []
    ctx = tiny_context(net, ["1"], {"1": 0.5})
    counted = ctx.calibration_batches

    def batches(n):
        for inputs, labels in counted(n):
            seen.append(len(labels))
            yield inputs, labels

    ctx = dataclasses.replace(ctx, calibration_batches=batches)
    Hessian(HessianConfig(batches=3)).score(ctx)
    assert seen == [10, 10, 10]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_no_calibration_data_is_a_plugin_error() -> None:
    ctx = tiny_context(_linear_net(), ["1"], {"1": 0.5})
    ctx = dataclasses.replace(ctx, calibration_batches=lambda n: iter(()))
    with pytest.raises(PluginError, match="no calibration examples"):
        Hessian().score(ctx)


def test_batches_outside_1_to_1000_are_refused() -> None:
    with pytest.raises(PluginError, match="batches"):
        load_registry().method("hessian", {"batches": 0})


class TestHessianConforms(MethodConformance):
    method = Hessian
    config = {"batches": 2}
    end_to_end = False  # the run below is the end-to-end check


def test_hessian_runs_on_digits_with_its_data_counted(tmp_path) -> None:
    record = run_record(tmp_path, "hessian", "digits-convnet")
    assert record["method"]["config"] == {"batches": 10}
    assert record["pruning_stage"]["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    stage = record["pruning_stage"]
    # 10 batches of the suite's 100 calibration examples, each passed forward once with gradients
    assert (stage["calibration_samples"], stage["method_grad_samples"]) == (1000, 1000)
    assert stage["method_optimizer_steps"] == 0
    cert = record["certification"]
    assert (cert["setup"], cert["division"], cert["unmet"]) == SMOKE
