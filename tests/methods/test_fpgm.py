"""Filter pruning via geometric median (He et al., CVPR 2019): the sum of distances from each
filter to the layer's others, the filter at the geometric median lowest, and a run on digits."""

from __future__ import annotations

import math

import pytest
import torch
import torch_pruning as tp
from torch import nn

from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.testing import MethodConformance
from pruning_suite_plugins._layer_group import own_rows_group
from pruning_suite_plugins.fpgm import FPGM, FPGMConfig

from ._stage_kit import run_record, tiny_context

SMOKE = (None, "open", ["smoke run: reduced budget"])
ROOT2 = math.sqrt(2.0)


def _net() -> nn.Sequential:
    """conv with 4 filters of shape 1x1x2, i.e. points of the plane: (1, 0), (0, 0) -- the
    geometric median of the four --, (-1, 0) and (0, 1); then an output Linear."""
    net = nn.Sequential(nn.Conv2d(1, 4, (1, 2)), nn.Flatten(), nn.Linear(4 * 6 * 5, 3))
    points = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        net[0].weight.copy_(points.view(4, 1, 1, 2))
    return net.eval()


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        (2, [1 + 2 + ROOT2, 3.0, 1 + 2 + ROOT2, 1 + 2 * ROOT2]),
        (1, [1 + 2 + 2, 3.0, 1 + 2 + 2, 2 + 1 + 2]),
    ],
)
def test_the_filter_at_the_geometric_median_scores_lowest(norm: int, expected: list) -> None:
    ctx = tiny_context(_net(), ["0"], {"0": 0.25})
    scores = FPGM(FPGMConfig(distance_norm=norm)).score(ctx)["0"]
    assert scores.tolist() == pytest.approx(expected)
    assert int(scores.argmin()) == 1


def test_a_filter_and_its_negation_are_far_apart_unlike_torch_prunings_fpgm() -> None:
    # torch-pruning's FPGMImportance measures distances between |w|^p, which puts (1, 0) and
    # (-1, 0) on the same point; the paper's distance between the filters is 2
    net = _net()
    ours = FPGM().score(tiny_context(net, ["0"], {"0": 0.25}))["0"]
    theirs = tp.importance.FPGMImportance(p=2, normalizer=None)(own_rows_group(net[0], 4))
    assert ours[0] - ours[1] == pytest.approx(ROOT2)  # 3 + sqrt 2 against 3
    assert theirs[0] == pytest.approx(theirs[2]) and theirs[0] < ours[0]


def test_scores_do_not_depend_on_the_bias_and_scoring_reads_only() -> None:
    net = _net()
    first = FPGM().score(tiny_context(net, ["0"], {"0": 0.25}))["0"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net[0].bias.copy_(torch.tensor([5.0, -3.0, 0.0, 1.0]))
    assert torch.equal(FPGM().score(tiny_context(net, ["0"], {"0": 0.25}))["0"], first)
    assert torch.equal(before["0.weight"], net[0].weight) and net[0].weight.grad is None


def test_a_distance_norm_other_than_1_or_2_is_refused() -> None:
    with pytest.raises(PluginError, match="distance_norm"):
        load_registry().method("fpgm", {"distance_norm": 3})


class TestFPGMConforms(MethodConformance):
    method = FPGM
    end_to_end = False  # the run below is the end-to-end check


def test_fpgm_runs_on_digits(tmp_path) -> None:
    record = run_record(tmp_path, "fpgm", "digits-convnet")
    assert record["method"]["config"] == {"distance_norm": 2}
    assert record["pruning_stage"]["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}
    stage = record["pruning_stage"]
    assert (stage["calibration_samples"], stage["method_grad_samples"]) == (0, 0)
    cert = record["certification"]
    assert (cert["setup"], cert["division"], cert["unmet"]) == SMOKE
