"""Layer-adaptive magnitude-based pruning (Lee et al., ICLR 2021): the LAMP score of the paper's
Eq. 2 by hand, its global ranking against global magnitude's, and a run on digits where the
per-layer sparsities come out unequal."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pruning_suite import Allocation
from pruning_suite.engine.allocation import allocate
from pruning_suite.testing import MethodConformance
from pruning_suite_plugins.lamp import LAMP, LAMPConfig, lamp_scores
from pruning_suite_plugins.magnitude import Magnitude, MagnitudeConfig

from ._stage_kit import run_record, tiny_context

SMOKE = (None, "open", ["smoke run: reduced budget"])
PROTOCOL = "digits-convnet-unstructured"
SIZES = {"conv1": 144, "conv2": 4608, "fc1": 32768}
KEPT_LAYERWISE = {"conv1": 14, "conv2": 460, "fc1": 3276}  # n - min(ceil(0.9 n), n - 1)


def test_lamp_scores_of_a_one_dimensional_layer_by_hand() -> None:
    # squares 1, 4, 9: 1 / (1 + 4 + 9), 4 / (4 + 9), 9 / 9
    assert lamp_scores(torch.tensor([1.0, -2.0, 3.0])).tolist() == pytest.approx(
        [1 / 14, 4 / 13, 1.0]
    )


def test_lamp_ties_go_by_position_and_the_shape_is_kept() -> None:
    # squares 4, 1, 0.25, 4 in the order 0.25 (2), 1 (1), 4 (0), 4 (3): tails 9.25, 9, 8, 4
    scores = lamp_scores(torch.tensor([[-2.0, 1.0], [0.5, 2.0]]))
    assert scores.shape == (2, 2) and scores.dtype == torch.float64
    assert scores.flatten().tolist() == pytest.approx([4 / 8, 1 / 9, 0.25 / 9.25, 1.0])


def test_lamp_is_scale_free_and_zero_tails_score_zero() -> None:
    w = torch.tensor([0.3, -0.1, 0.2, 0.05])
    assert torch.allclose(lamp_scores(w), lamp_scores(1000 * w))
    assert lamp_scores(torch.tensor([0.0, 0.0, 2.0])).tolist() == [0.0, 0.0, 1.0]
    assert lamp_scores(torch.zeros(3)).tolist() == [0.0, 0.0, 0.0]


def _two_layers() -> nn.Sequential:
    """Prunable layer 0: weights 0.1, 0.2, 0.3 (small); layer 1: 1, 2, 3, 4 (large); then an
    output layer (never prunable). Scored only, never run."""
    net = nn.Sequential(nn.Linear(1, 3, bias=False), nn.Linear(2, 2, bias=False), nn.Linear(2, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.1], [0.2], [0.3]]))
        net[1].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    return net


@pytest.mark.parametrize(
    ("method", "removed"),
    [
        # LAMP: layer 0 -> 1/14, 4/13, 1; layer 1 -> 1/30, 4/29, 9/25, 1: the lowest two are
        # one weight of each layer
        (LAMP(), {"0": 1, "1": 1}),
        # global magnitude: the two smallest |w| are both in layer 0
        (Magnitude(MagnitudeConfig(allocation="global")), {"0": 2, "1": 0}),
    ],
)
def test_global_ranking_of_lamp_spreads_what_global_magnitude_takes_from_one_layer(
    method, removed
) -> None:
    ctx = tiny_context(_two_layers(), ["0", "1"], {"0": 0.0, "1": 0.0})
    scores = method.score(ctx)
    ratios = allocate(scores, ctx.ratios, ctx.layers, method.allocation(), "weight", 2)
    sizes = {"0": 3, "1": 4}
    assert {name: round(ratio * sizes[name]) for name, ratio in ratios.items()} == removed


def test_lamp_ranks_globally_without_a_normalizer() -> None:
    assert LAMP().allocation() == Allocation(scope="global", normalizer="none")
    assert LAMP(LAMPConfig(max_layer_ratio=0.99)).allocation().max_layer_ratio == 0.99


class TestLAMPConforms(MethodConformance):
    method = LAMP
    end_to_end = False  # the run below is the end-to-end check


def test_lamp_runs_on_digits_and_its_layers_lose_unequal_shares(tmp_path) -> None:
    record = run_record(tmp_path, "lamp", PROTOCOL)
    assert record["method"]["config"] == {"max_layer_ratio": 0.95}
    assert record["pruning_stage"]["allocation"] == "global"
    kept = {layer["name"]: layer["after"] for layer in record["pruning"]["layers"]}
    # as many weights in all as the uniform 90% target removes, shared out unequally: the small
    # conv1 keeps more than 10%, the large fc1 less
    assert sum(kept.values()) == sum(KEPT_LAYERWISE.values())
    assert kept != KEPT_LAYERWISE
    assert kept["conv1"] / SIZES["conv1"] > 0.1 > kept["fc1"] / SIZES["fc1"]
    assert all(kept[name] >= 0.05 * SIZES[name] for name in SIZES)  # the 95% cap
    cert = record["certification"]
    assert (cert["setup"], cert["division"], cert["unmet"]) == SMOKE
