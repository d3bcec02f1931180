"""L2-norm filter pruning (the L2 variant of Li et al., ICLR 2017): torch-pruning's
MagnitudeImportance(p=2) on each layer's own rows, square-rooted, and a run on digits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_suite.testing import MethodConformance
from pruning_suite_plugins.l2norm import L2Norm

from ._stage_kit import run_record, tiny_context

SMOKE = (None, "open", ["smoke run: reduced budget"])
"""(setup, division, unmet) of every smoke run: never certified, never ranked."""


def _net() -> nn.Sequential:
    """conv (3 filters of 1x2x2) -> flatten -> hidden Linear (2 neurons) -> output Linear."""
    net = nn.Sequential(nn.Conv2d(1, 3, 2), nn.Flatten(), nn.Linear(75, 2), nn.Linear(2, 3))
    with torch.no_grad():
        net[0].weight.copy_(
            torch.tensor([[3.0, 4.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, -0.5]]).view(
                3, 1, 2, 2
            )
        )
        net[2].weight.zero_()
        net[2].weight[0, :3] = torch.tensor([1.0, -2.0, 2.0])  # norm 3
        net[2].weight[1, 70] = -7.0  # norm 7
    return net.eval()


def test_scores_are_the_hand_computed_l2_norms_of_each_filter_and_neuron() -> None:
    net = _net()
    scores = L2Norm().score(tiny_context(net, ["0", "2"], {"0": 0.5, "2": 0.5}))
    assert scores["0"].tolist() == pytest.approx([5.0, 2.0, 0.5])
    assert scores["2"].tolist() == pytest.approx([3.0, 7.0])
    assert scores["0"].dtype == torch.float32


def test_l2_and_l1_rank_differently_where_the_norms_disagree() -> None:
    net = _net()
    # filters (3, 4, 0, 0), (1, 1, 1, 1), (6, 0, 0, 0): L1 norms 7, 4, 6; L2 norms 5, 2, 6
    with torch.no_grad():
        net[0].weight[2] = torch.tensor([6.0, 0.0, 0.0, 0.0]).view(1, 2, 2)
    scores = L2Norm().score(tiny_context(net, ["0"], {"0": 0.5}))["0"]
    l1 = net[0].weight.detach().abs().flatten(1).sum(1)
    assert scores.tolist() == pytest.approx([5.0, 2.0, 6.0])
    assert l1.argsort().tolist() == [1, 2, 0] and scores.argsort().tolist() == [1, 0, 2]


def test_scoring_reads_the_model_only() -> None:
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    L2Norm().score(tiny_context(net, ["0", "2"], {"0": 0.5, "2": 0.5}))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert not any(m._forward_hooks for m in net.modules())


class TestL2NormConforms(MethodConformance):
    method = L2Norm
    end_to_end = False  # the run below is the end-to-end check


def test_l2norm_runs_on_digits(tmp_path) -> None:
    record = run_record(tmp_path, "l2norm", "digits-convnet")
    assert record["method"]["config"] == {}
    assert record["pruning_stage"]["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    stage = record["pruning_stage"]
    assert (stage["calibration_samples"], stage["method_grad_samples"]) == (0, 0)
    cert = record["certification"]
    assert (cert["setup"], cert["division"], cert["unmet"]) == SMOKE
