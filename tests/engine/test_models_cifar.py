"""CIFAR ResNets and VGGs, torchvision models by name, and the ResNet-56 counts of Table 6.

Table 6 of Wang et al. (arXiv 2301.05219) heads its columns with the sparsity and speedup of
ResNet-56 / CIFAR-10 after L1 pruning of ``layer*.conv1`` at ratios 0.3 / 0.5 / 0.7 / 0.9:
31.14% / 1.45x, 49.82% / 1.99x, 70.57% / 3.59x, 90.39% / 11.41x. What reproduces them:

- option A (zero-padding shortcuts, the authors' ``resnet56``) counted as the suite counts
  (:func:`~pruning_suite.engine.measure.measure`: sparsity over ALL parameters, BatchNorm included;
  speedup from the MACs of every Conv/Linear) gives 31.14% / 1.45x, 49.82% / 1.99x,
  70.58% / 3.59x: the 0.3, 0.5 and 0.7 headers to the printed precision (70.58 for 70.57);
- option B's speedups are 1.45x, 1.99x, 3.57x, 11.33x whatever the parameter convention, so it
  misses the 0.7 header (3.59x); its sparsity happens to match at 0.3 / 0.5 when only conv
  weights are counted (31.14 / 49.82 / 70.59 / 90.46%), and at 0.9 with the authors' own
  Conv+Linear convention (``get_n_params_``: 90.39%, but then 31.12 / 49.79 / 70.54%);
- the 0.9 header (90.39% / 11.41x) is reproduced by no combination tried (options A/B; all,
  Conv+Linear or Conv parameters; ceil, round or floor counts): option A gives 90.45% / 11.58x;
- at the tolerance of the brief (1 percentage point, 2% relative speedup) both options pass under
  every convention, so the tests below assert the tight match that singles out option A with the
  suite's whole-model counts, and pin the 0.9 gap.

``benchmarks/bench_table6_counts.py`` prints the full table for both options and conventions.
"""

from __future__ import annotations

import fnmatch
import math

import pytest
import torch
from torch import nn

from pruning_suite.engine.measure import measure
from pruning_suite.engine.models import MODELS, ZeroPadShortcut, build_model
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    count_params,
    find_prunable_layers,
    output_layer_name,
    select_removals,
)
from pruning_suite.errors import ProtocolError, VerificationError
from pruning_suite.protocol.spec import ArchitectureSpec

CIFAR = (3, 32, 32)

# Table 6 column headers: pruning ratio -> (sparsity in percent, speedup).
TABLE6 = {0.3: (31.14, 1.45), 0.5: (49.82, 1.99), 0.7: (70.57, 3.59), 0.9: (90.39, 11.41)}


def _build(name: str, num_classes: int = 10, shape=CIFAR, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ArchitectureSpec(name=name, kwargs=kwargs), shape, num_classes)


def _l1_removals(model: nn.Module, patterns: list[str], ratio: float) -> dict[str, list[int]]:
    """Li et al.'s L1 rule as the authors implement it: mean |w| per filter, lowest removed."""
    layers = find_prunable_layers(model, patterns)
    scores = {layer.name: layer.module.weight.detach().abs().flatten(1).mean(1) for layer in layers}
    return select_removals(scores, {layer.name: ratio for layer in layers}, layers)


# ----------------------------------------------------------------------------------------------
# CIFAR ResNets


@pytest.mark.parametrize(
    ("name", "shortcut", "params"),
    [
        ("resnet20", "A", 269_722),
        ("resnet20", "B", 272_474),
        ("resnet56", "A", 853_018),
        ("resnet56", "B", 855_770),
        ("resnet110", "A", 1_727_962),
        ("resnet110", "B", 1_730_714),
    ],
)
def test_resnet_param_counts(name: str, shortcut: str, params: int) -> None:
    # Option A: the "0.27M / 0.85M / 1.7M" of He et al. and akamaster's implementation (whose
    # exact counts are 269,722 / 853,018 / 1,727,962). Option B adds two 1x1 conv + BN
    # projections: 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters.
    model = _build(name, shortcut=shortcut)
    assert count_params(model) == params
    assert model(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_resnet56_params_by_hand() -> None:
    stem = 3 * 16 * 9 + 2 * 16
    stage1 = 9 * (2 * 16 * 16 * 9 + 2 * 2 * 16)
    stage2 = (16 * 32 * 9 + 32 * 32 * 9 + 4 * 32) + 8 * (2 * 32 * 32 * 9 + 4 * 32)
    stage3 = (32 * 64 * 9 + 64 * 64 * 9 + 4 * 64) + 8 * (2 * 64 * 64 * 9 + 4 * 64)
    fc = 64 * 10 + 10
    assert stem + stage1 + stage2 + stage3 + fc == 853_018
    assert count_params(_build("resnet56")) == 853_018


def test_resnet_module_names_and_paper_pattern() -> None:
    model = _build("resnet56", shortcut="B")
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    blocks = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(9)]
    assert fnmatch.filter(names, "layer*.conv1") == [f"{b}.conv1" for b in blocks]
    assert names[0] == "conv1" and output_layer_name(model) == "fc" == names[-1]
    assert fnmatch.filter(names, "*downsample*") == [
        "layer2.0.downsample.0",
        "layer3.0.downsample.0",
    ]
    assert isinstance(model.get_submodule("layer2.0.downsample.1"), nn.BatchNorm2d)
    assert model.layer2[0].conv1.stride == (2, 2) and model.layer2[1].conv1.stride == (1, 1)


def test_option_a_shortcut_is_parameter_free_zero_padding() -> None:
    model = _build("resnet20", shortcut="A")
    shortcut = model.layer2[0].downsample
    assert isinstance(shortcut, ZeroPadShortcut) and not list(shortcut.parameters())
    assert model.layer1[0].downsample is None and model.layer2[1].downsample is None
    x = torch.randn(2, 16, 32, 32)
    y = shortcut(x)
    assert y.shape == (2, 32, 16, 16)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()


def test_bad_shortcut_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="shortcut 'C'"):
        _build("resnet56", shortcut="C")


def test_option_a_refuses_residual_pruning_and_option_b_allows_it() -> None:
    x = torch.randn(2, *CIFAR)
    with pytest.raises(VerificationError, match="option-A"):
        apply_structured_pruning(_build("resnet20", shortcut="A"), {"layer1.0.conv2": [0, 3]}, x)
    changes = apply_structured_pruning(
        _build("resnet20", shortcut="B"), {"layer1.0.conv2": [0, 3]}, x
    )
    pruned = {change.name for change in changes}
    assert pruned == {"conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"}


# ----------------------------------------------------------------------------------------------
# CIFAR VGGs


@pytest.mark.parametrize(
    ("name", "num_classes", "convs", "params"),
    [("vgg16_bn", 10, 13, 14_724_042), ("vgg19_bn", 100, 16, 20_081_188)],
)
def test_vgg(name: str, num_classes: int, convs: int, params: int) -> None:
    model = _build(name, num_classes=num_classes)
    conv_names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(conv_names) == convs and conv_names[:2] == ["features.0", "features.3"]
    assert output_layer_name(model) == "classifier"
    assert model.classifier.in_features == 512
    assert all(model.get_submodule(n).bias is None for n in conv_names)
    assert count_params(model) == params
    assert model(torch.randn(2, *CIFAR)).shape == (2, num_classes)


def test_vgg_needs_16x16() -> None:
    with pytest.raises(ProtocolError, match="at least 16x16"):
        _build("vgg16_bn", shape=(3, 8, 8))


def test_new_models_are_registered() -> None:
    assert {"resnet20", "resnet56", "resnet110", "vgg16_bn", "vgg19_bn"} <= set(MODELS)


# ----------------------------------------------------------------------------------------------
# torchvision models by name


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("resnet18", ["layer1.0.conv1", "layer3.1.conv1"]),
        ("resnet50", ["layer1.0.conv2", "layer3.2.conv1"]),
        ("mobilenet_v2", ["features.2.conv.0.0", "features.5.conv.0.0"]),
    ],
)
def test_torchvision_model_builds_and_prunes(name: str, layers: list[str]) -> None:
    model = _build(f"torchvision:{name}", num_classes=7)
    dense = count_params(model)
    x = torch.randn(2, *CIFAR)
    removals = _l1_removals(model, layers, 0.25)
    changes = apply_structured_pruning(model, removals, x)  # verifies against the masked copy
    for change in changes:
        if change.name in layers:
            assert change.after == change.before - math.ceil(0.25 * change.before)
    assert {c.name for c in changes} >= set(layers)
    assert model(x).shape == (2, 7)
    assert count_params(model) < dense


def test_torchvision_unknown_name_says_did_you_mean() -> None:
    with pytest.raises(ProtocolError) as info:
        _build("torchvision:resnet19")
    assert "did you mean 'torchvision:resnet18'" in info.value.hint
    with pytest.raises(ProtocolError) as info:
        _build("resnet18")
    assert "did you mean 'torchvision:resnet18'" in info.value.hint


def test_torchvision_bad_input_or_kwargs_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="3-channel"):
        _build("torchvision:resnet18", shape=(1, 32, 32))
    with pytest.raises(ProtocolError, match="cannot be built with kwargs"):
        _build("torchvision:resnet18", widht=2)
    for reserved in ({"weights": "DEFAULT"}, {"num_classes": 3}):
        arch = ArchitectureSpec(name="torchvision:resnet18", kwargs=reserved)
        with pytest.raises(ProtocolError, match="cannot take kwargs"):
            build_model(arch, CIFAR, 10)


def test_torchvision_kwargs_reach_the_builder() -> None:
    slim = _build("torchvision:mobilenet_v2", width_mult=0.5)
    assert count_params(slim) < count_params(_build("torchvision:mobilenet_v2"))


# ----------------------------------------------------------------------------------------------
# Table 6: ResNet-56 / CIFAR-10, L1 pruning of layer*.conv1


def _table6_row(shortcut: str, ratios: tuple[float, ...]) -> dict[float, tuple[int, int]]:
    """Ratio -> (params, MACs) of the pruned ResNet-56, and ratio 0 -> the dense model's."""
    rows = {}
    for ratio in (0.0, *ratios):
        model = _build("resnet56", shortcut=shortcut)
        if ratio:
            removals = _l1_removals(model, ["layer*.conv1"], ratio)
            apply_structured_pruning(model, removals, torch.randn(1, *CIFAR))
        counts = measure(model, CIFAR)
        rows[ratio] = (counts.params, counts.macs)
    return rows


@pytest.fixture(scope="module")
def option_a() -> dict[float, tuple[int, int]]:
    return _table6_row("A", tuple(TABLE6))


def _sparsity_speedup(rows: dict, ratio: float) -> tuple[float, float]:
    """Sparsity in percent (1 - params / dense params) and speedup (dense MACs / MACs)."""
    (dense_params, dense_macs), (params, macs) = rows[0.0], rows[ratio]
    return 100 * (1 - params / dense_params), dense_macs / macs


def test_table6_counts_are_pinned(option_a: dict) -> None:
    # Whole model: every parameter (BatchNorm included), MACs of every Conv/Linear per example.
    assert option_a == {
        0.0: (853_018, 125_485_696),
        0.3: (587_428, 86_409_856),
        0.5: (428_074, 62_964_352),
        0.7: (250_954, 34_929_280),
        0.9: (81_502, 10_838_656),
    }


@pytest.mark.parametrize("ratio", sorted(TABLE6))
def test_table6_option_a_within_tolerance(option_a: dict, ratio: float) -> None:
    sparsity, speedup = _sparsity_speedup(option_a, ratio)
    paper_sparsity, paper_speedup = TABLE6[ratio]
    assert abs(sparsity - paper_sparsity) <= 1.0
    assert abs(speedup / paper_speedup - 1) <= 0.02


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.7])
def test_table6_option_a_reproduces_the_printed_headers(option_a: dict, ratio: float) -> None:
    # To the printed precision (70.58 for the printed 70.57: 0.011 off).
    sparsity, speedup = _sparsity_speedup(option_a, ratio)
    assert abs(sparsity - TABLE6[ratio][0]) < 0.015
    assert round(speedup, 2) == TABLE6[ratio][1]


def test_table6_ratio_09_is_not_reproduced_exactly(option_a: dict) -> None:
    # No network/convention reproduces 90.39% / 11.41x; option A gives 90.45% / 11.58x.
    sparsity, speedup = _sparsity_speedup(option_a, 0.9)
    assert round(sparsity, 2) == 90.45 and round(speedup, 2) == 11.58


def test_table6_option_b_misses_the_07_speedup() -> None:
    rows = _table6_row("B", (0.7,))
    sparsity, speedup = _sparsity_speedup(rows, 0.7)
    assert rows[0.0] == (855_770, 125_747_840)
    assert round(sparsity, 2) == 70.35 and round(speedup, 2) == 3.57  # paper: 70.57% / 3.59x


def test_option_a_residual_coupling_out_of_range_is_a_pruning_error() -> None:
    """torch-pruning cannot follow option A's zero padding: refused with a named error, model intact."""
    from pruning_suite.engine.pruning import apply_structured_pruning
    from pruning_suite.errors import PruningError
    from pruning_suite.protocol.spec import ArchitectureSpec

    torch.manual_seed(0)
    model = build_model(
        ArchitectureSpec(name="resnet56", kwargs={"shortcut": "A"}), (3, 32, 32), 10
    )
    before = sum(p.numel() for p in model.parameters())
    with pytest.raises(PruningError, match="only 16"):
        apply_structured_pruning(model, {"layer3.1.conv2": [20, 30]}, torch.randn(2, 3, 32, 32))
    assert sum(p.numel() for p in model.parameters()) == before
