"""Allocation (engine.allocation): global ranking picks torch-pruning's channels; known answers for
the normalizers, the tie rule, the per-layer cap and a LAMP-like global weight selection."""

from __future__ import annotations

import random

import pytest
import torch
import torch_pruning as tp
from torch import nn

from pruning_suite.contract.method import Allocation, PrunableLayer
from pruning_suite.engine.allocation import allocate, layer_caps, ratio_for_count
from pruning_suite.engine.masks import select_weight_masks
from pruning_suite.engine.pruning import find_prunable_layers, select_removals, units_to_remove
from pruning_suite.errors import PluginError, PruningError


def _global(normalizer: str = "none", max_layer_ratio: float = 0.95) -> Allocation:
    return Allocation(scope="global", normalizer=normalizer, max_layer_ratio=max_layer_ratio)


# ----------------------------------------------------------------------------------------------
# The same channels as torch-pruning's global pruning


class _PlainNet(nn.Module):
    """conv1 -> bn1 -> conv2 -> bn2 -> conv3 -> bn3 -> pool -> fc: each group is one conv + its BN
    (+ the next layer's input channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12)
        self.conv2, self.bn2 = nn.Conv2d(12, 20, 3, padding=1), nn.BatchNorm2d(20)
        self.conv3, self.bn3 = nn.Conv2d(20, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean((2, 3)))


class _FixedImportance(tp.importance.Importance):
    """torch-pruning importance returning given scores for each group's root conv, normalized by
    torch-pruning's own normalizer (``GroupMagnitudeImportance._normalize``)."""

    def __init__(self, scores: dict[nn.Module, torch.Tensor], normalizer: object) -> None:
        self.scores, self.normalizer = scores, normalizer
        self._normalize = tp.importance.GroupMagnitudeImportance()._normalize

    def __call__(self, group: tp.Group) -> torch.Tensor:
        root = group[0].dep.target.module
        return self._normalize(self.scores[root].clone(), self.normalizer)


def _tp_removals(
    model: nn.Module, scores: dict[str, torch.Tensor], normalizer: object, ratio: float
) -> dict[str, list[int]]:
    """Which output channels torch-pruning's one-shot global pruning removes from each conv."""
    names = {module: name for name, module in model.named_modules()}
    pruner = tp.pruner.MetaPruner(
        model, torch.randn(1, 3, 8, 8),
        importance=_FixedImportance({model.get_submodule(n): s for n, s in scores.items()}, normalizer),
        global_pruning=True, pruning_ratio=ratio, ignored_layers=[model.fc],
    )  # fmt: skip
    removed = {}
    for group in pruner.step(interactive=True):
        removed[names[group[0].dep.target.module]] = sorted(group[0].idxs)
        group.prune()
    return removed


_TP_NORMALIZERS = {
    "none": None,
    "mean": "mean",
    "max": "max",
    "sum": "sum",
    "l2": lambda imp: imp / imp.norm(),
}


@pytest.mark.parametrize("normalizer", list(_TP_NORMALIZERS))
@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_global_allocation_picks_torch_pruning_global_channels(
    normalizer: str, ratio: float
) -> None:
    torch.manual_seed(0)
    model = _PlainNet().eval()
    gen = torch.Generator().manual_seed(0)
    # layers on different scales, none emptied (torch-pruning would skip such a layer entirely)
    scales = {"conv1": 1.0, "conv2": 1.3, "conv3": 0.9}
    scores = {
        name: torch.rand(model.get_submodule(name).out_channels, generator=gen, dtype=torch.float64)
        * scale
        for name, scale in scales.items()
    }
    layers = find_prunable_layers(model, ["conv*"])
    total = sum(layer.num_units for layer in layers)
    n = total - int(total * (1 - ratio))  # torch-pruning's count for a global ratio

    ratios = allocate(scores, {}, layers, _global(normalizer, 0.99), "filter", n)
    ours = select_removals(scores, ratios, layers)
    theirs = _tp_removals(model, scores, _TP_NORMALIZERS[normalizer], ratio)

    assert sum(len(idxs) for idxs in ours.values()) == n  # no cap bound: all n chosen go
    assert ours == theirs


# ----------------------------------------------------------------------------------------------
# Known answers


def _two_linear_layers() -> list[PrunableLayer]:
    """Layers 'a' (4 neurons) and 'b' (2 neurons)."""
    return [
        PrunableLayer("a", nn.Linear(2, 4), 4),
        PrunableLayer("b", nn.Linear(4, 2), 2),
    ]


_A = torch.tensor([1.0, 2.0, 3.0, 4.0])  # mean 2.5, max 4, sum 10, l2 sqrt(30)
_B = torch.tensor([10.0, 20.0])  # mean 15, max 20, sum 30, l2 sqrt(500)


@pytest.mark.parametrize(
    ("normalizer", "n", "expected"),
    [
        # a: 1 2 3 4 | b: 10 20 -> the three lowest are all a's
        ("none", 3, {"a": 0.75, "b": 0.0}),
        # a: .4 .8 1.2 1.6 | b: .667 1.333 -> .4 (a), .667 (b), .8 (a)
        ("mean", 3, {"a": 0.5, "b": 0.5}),
        # a: .25 .5 .75 1 | b: .5 1 -> .25 (a), then the tie at .5 goes to the earlier layer a
        ("max", 2, {"a": 0.5, "b": 0.0}),
        ("max", 3, {"a": 0.5, "b": 0.5}),
        # a: .1 .2 .3 .4 | b: .333 .667 -> .1 .2 .3 (a)
        ("sum", 3, {"a": 0.75, "b": 0.0}),
        # a: .183 .365 .548 .730 | b: .447 .894 -> .183 .365 (a), .447 (b)
        ("l2", 3, {"a": 0.5, "b": 0.5}),
    ],
)
def test_normalizers_known_answers(normalizer: str, n: int, expected: dict[str, float]) -> None:
    scores = {"a": _A, "b": _B}
    assert allocate(scores, {}, _two_linear_layers(), _global(normalizer), "filter", n) == expected


def test_tie_within_a_layer_removes_the_lowest_index_first() -> None:
    layers = _two_linear_layers()
    scores = {"a": torch.tensor([5.0, 1.0, 1.0, 9.0]), "b": torch.tensor([1.0, 9.0])}
    # ties at 1.0: a's two first (the earlier layer, lower index first), then b's
    assert allocate(scores, {}, layers, _global(), "filter", 2) == {"a": 0.5, "b": 0.0}
    ratios = allocate(scores, {}, layers, _global(), "filter", 3)
    assert ratios == {"a": 0.5, "b": 0.5}
    assert select_removals(scores, ratios, layers) == {"a": [1, 2], "b": [0]}


def test_default_total_is_what_the_layer_wise_ratios_remove() -> None:
    # ratios 0.5 / 0.4 remove ceil(2) + ceil(0.8) = 3 units, here all three from a (scores 'none')
    ratios = allocate(
        {"a": _A, "b": _B}, {"a": 0.5, "b": 0.4}, _two_linear_layers(), _global(), "filter"
    )
    assert ratios == {"a": 0.75, "b": 0.0}


def test_cap_keeps_protected_units_and_does_not_hand_them_to_other_layers() -> None:
    # the four lowest are a's four; a may lose at most floor(0.5 * 4) = 2: b still loses none
    ratios = allocate(
        {"a": _A, "b": _B}, {}, _two_linear_layers(), _global("none", 0.5), "filter", 4
    )
    assert ratios == {"a": 0.5, "b": 0.0}


def test_cap_keeps_one_unit_and_rounds_like_the_count_rule() -> None:
    assert layer_caps([20, 4, 1, 10], 0.95) == [19, 3, 0, 9]  # 0.95 * 20 = 18.999999999999996
    assert layer_caps([10, 7], 0.3) == [3, 2]


def test_layer_scope_returns_the_ratios_unchanged() -> None:
    ratios = {"a": 0.3, "b": 0.6}
    assert (
        allocate({"a": _A, "b": _B}, ratios, _two_linear_layers(), Allocation(), "filter") == ratios
    )


def test_ratio_for_count_gives_the_count_back_exactly() -> None:
    rng = random.Random(0)
    sizes = [1, 2, 3, 7, 10, 49, 100, 1000, 2_359_296, 10**7, 10**9]
    for size in sizes:
        for count in {0, size - 1, *(rng.randrange(size) for _ in range(200))}:
            ratio = ratio_for_count(count, size, "x")
            assert 0.0 <= ratio < 1.0
            assert units_to_remove(ratio, size, "x") == count, (count, size, ratio)


def test_lamp_like_global_weight_selection_equals_the_hand_computed_masks() -> None:
    """LAMP (Lee et al., ICLR 2021): score(u) = w_u^2 / sum of w_v^2 over the layer's weights
    with |w_v| >= |w_u|. Layer a: |w| 10 20 30 40 -> 1/30, 4/29, 9/25, 1 (scale-free); layer b:
    |w| 0.5 1.5 6 -> 0.25/38.5, 2.25/38.25, 1. The three lowest: b's 0.5, a's 10, b's 1.5.
    Plain global magnitude would take b's 0.5, 1.5 and 6 instead (6 capped: b keeps one)."""
    a, b = nn.Linear(2, 2, bias=False), nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[30.0, 10.0], [40.0, 20.0]]))
        b.weight.copy_(torch.tensor([[6.0, 0.5, 1.5]]))
    layers = [PrunableLayer("a", a, 2), PrunableLayer("b", b, 1)]
    lamp = {
        "a": torch.tensor([[9 / 25, 1 / 30], [1.0, 4 / 29]]),
        "b": torch.tensor([[1.0, 0.25 / 38.5, 2.25 / 38.25]]),
    }
    ratios = allocate(lamp, {}, layers, _global(), "weight", 3)
    assert ratios == {"a": 0.25, "b": 2 / 3}
    masks = select_weight_masks(lamp, ratios, layers)
    assert masks["a"].tolist() == [[True, False], [True, True]]
    assert masks["b"].tolist() == [[True, False, False]]

    magnitude = {"a": a.weight.detach().abs(), "b": b.weight.detach().abs()}
    assert allocate(magnitude, {}, layers, _global(), "weight", 3) == {"a": 0.0, "b": 2 / 3}


# ----------------------------------------------------------------------------------------------
# Refusals


def test_grouped_conv_is_refused_under_global_filter_allocation() -> None:
    layers = [PrunableLayer("g", nn.Conv2d(4, 8, 3, groups=2), 8)]
    with pytest.raises(PruningError, match="grouped conv 'g'.*groups=2"):
        allocate({"g": torch.rand(8)}, {}, layers, _global(), "filter", 2)
    assert allocate({"g": torch.rand(8)}, {"g": 0.5}, layers, Allocation(), "filter") == {"g": 0.5}


def test_negative_normalizer_statistic_is_refused() -> None:
    scores = {"a": -_A, "b": _B}
    with pytest.raises(PluginError, match="layer 'a' have a negative mean"):
        allocate(scores, {}, _two_linear_layers(), _global("mean"), "filter", 1)


@pytest.mark.parametrize("total", [-1, 7, True])
def test_total_out_of_range_is_refused(total: int) -> None:
    with pytest.raises(PruningError, match="total_units_to_remove"):
        allocate({"a": _A, "b": _B}, {}, _two_linear_layers(), _global(), "filter", total)


def test_scores_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(PluginError, match="scores for layer 'b' have shape"):
        allocate({"a": _A, "b": _A}, {}, _two_linear_layers(), _global(), "filter", 1)
