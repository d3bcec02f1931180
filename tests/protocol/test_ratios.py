"""The ratio language: the three forms, override order, skips, stage maps, refusals, reports."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pruning_suite.engine.pruning import units_to_remove
from pruning_suite.errors import ProtocolError, PruningError
from pruning_suite.protocol.ratios import (
    RatioSpec,
    ResNetStages,
    achieved,
    parse_ratio_spec,
    resnet_stage_of,
)

NAMES = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc1"]


@pytest.fixture(scope="module")
def resnet50_convs() -> list[str]:
    """Conv2d names of torchvision's ResNet-50 (built on the meta device: names only)."""
    with torch.device("meta"):
        model = torchvision.models.resnet50()
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def test_uniform_ratio_applies_to_every_layer() -> None:
    spec = parse_ratio_spec(" 0.5 ")
    assert spec.kind == "uniform" and spec.source == "0.5"
    assert spec.resolve(NAMES) == dict.fromkeys(NAMES, 0.5)


def test_later_patterns_override_earlier_ones() -> None:
    spec = parse_ratio_spec("*conv1:0.9, layer1.*:0.3, fc1:0.2")
    assert spec.resolve(NAMES) == {
        "conv1": 0.9,
        "layer1.0.conv1": 0.3,  # both '*conv1' and 'layer1.*' match; the later wins
        "layer1.0.conv2": 0.3,
        "layer2.0.conv1": 0.9,
        "fc1": 0.2,
    }
    reversed_order = parse_ratio_spec("layer1.*:0.3,*conv1:0.9")
    assert reversed_order.resolve(NAMES, strict=False)["layer1.0.conv1"] == 0.9


def test_unmatched_layers_get_zero_and_duplicates_follow_order() -> None:
    spec = parse_ratio_spec("layer1.0.conv1:0.4,layer1.0.conv1:0.1")
    ratios = spec.resolve(NAMES)
    assert ratios["layer1.0.conv1"] == 0.1
    assert ratios["conv1"] == ratios["fc1"] == 0.0


def test_per_stage_list_on_resnet50(resnet50_convs: list[str]) -> None:
    spec = parse_ratio_spec("[0, 0.6, 0.6, 0.6, 0.21, 0]")
    ratios = spec.resolve(resnet50_convs, resnet_stage_of)
    assert list(ratios) == resnet50_convs
    assert ratios["conv1"] == 0.0
    for name, ratio in ratios.items():
        if name.startswith(("layer1.", "layer2.", "layer3.")):
            assert ratio == 0.6, name
        elif name.startswith("layer4."):
            assert ratio == 0.21, name
    assert sum(n.startswith("layer4.") for n in ratios) == 10  # 3 blocks x 3 convs + downsample


def test_resnet_stage_map_convention() -> None:
    assert resnet_stage_of.num_stages == 6
    assert [resnet_stage_of(n) for n in ("conv1", "bn1", "layer1", "layer3.5.conv2", "fc")] == [
        0,
        0,
        1,
        3,
        5,
    ]
    assert resnet_stage_of("avgpool") is None
    cifar = ResNetStages(num_layers=3)
    assert cifar.num_stages == 5 and cifar("linear") == 4
    with pytest.raises(ProtocolError, match=r"layer1\.\.layer3"):
        cifar("layer4.0.conv1")


def test_per_stage_list_length_must_equal_stage_count(resnet50_convs: list[str]) -> None:
    spec = parse_ratio_spec("[0.6, 0.6, 0.6, 0.21]")
    with pytest.raises(ProtocolError, match="has 4 entries but the network has 6 stages") as err:
        spec.resolve(resnet50_convs, resnet_stage_of)
    assert "position 0 the stem" in err.value.hint


def test_per_stage_list_needs_a_stage_map_and_count() -> None:
    spec = parse_ratio_spec("[0, 0.5, 0]")
    with pytest.raises(ProtocolError, match="needs a stage map"):
        spec.resolve(NAMES)

    def by_prefix(name: str) -> int | None:
        return 1 if name.startswith("layer") else 0

    with pytest.raises(ProtocolError, match="does not say how many stages"):
        spec.resolve(NAMES, by_prefix)
    assert spec.resolve(NAMES, by_prefix, num_stages=3)["layer2.0.conv1"] == 0.5
    with pytest.raises(ProtocolError, match="'features.0' is in no stage"):
        spec.resolve(["features.0"], resnet_stage_of, num_stages=3)


def test_skip_patterns_win_in_every_form(resnet50_convs: list[str]) -> None:
    bang = parse_ratio_spec("!layer1.0.*,*conv1:0.9,layer1.*:0.3")
    assert bang.skip == ("layer1.0.*",)
    assert bang.resolve(NAMES) == {
        "conv1": 0.9,
        "layer1.0.conv1": 0.0,
        "layer1.0.conv2": 0.0,
        "layer2.0.conv1": 0.9,
        "fc1": 0.0,
    }
    assert parse_ratio_spec("0.5", skip=["fc1"]).resolve(NAMES)["fc1"] == 0.0
    stages = parse_ratio_spec("[0, 0.6, 0.6, 0.6, 0.21, 0]", skip=["layer4.*"])
    ratios = stages.resolve(resnet50_convs, resnet_stage_of)
    assert all(r == 0.0 for n, r in ratios.items() if n.startswith("layer4."))
    assert ratios["layer3.0.conv1"] == 0.6


def test_patterns_matching_nothing_are_refused_unless_not_strict() -> None:
    spec = parse_ratio_spec("layer9.*:0.5,!fc2")
    with pytest.raises(ProtocolError, match=r"\['layer9\.\*', 'fc2'\] .* match none"):
        spec.resolve(NAMES)
    assert spec.resolve(NAMES, strict=False) == dict.fromkeys(NAMES, 0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "it is empty"),
        ("1.0", "would empty the layers"),
        ("-0.1", r"outside \[0, 1\)"),
        ("50%", "is a percent"),
        ("nan", r"outside \[0, 1\)"),
        ("abc", "'abc' is not a number"),
        ("conv1:0.5,", "entry 2 '' is not 'pattern:ratio'"),
        ("conv1=0.5,fc1:0.2", "entry 1 'conv1=0.5'"),
        (":0.5", "is not a module-name pattern"),
        ("conv1:x", "'conv1' 'x' is not a number"),
        ("conv1:1.5", "would empty the layers"),
        ("[0, 0.6,]", "not a JSON list"),
        ("[]", "list is empty"),
        ("[0, true]", "stage 1 True is not a number"),
        ('[0, "0.5"]', "stage 1 '0.5' is not a number"),
        ("[0, 1]", "stage 1 1 would empty"),
    ],
)
def test_malformed_specs_are_refused_with_the_valid_forms(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as err:
        parse_ratio_spec(text)
    assert "malformed ratio spec" in err.value.message
    assert (
        "valid forms: '0.5'" in err.value.hint and "[0, 0.6, 0.6, 0.6, 0.21, 0]" in err.value.hint
    )


def test_bad_skip_argument_is_refused() -> None:
    with pytest.raises(ProtocolError, match="not a module-name pattern"):
        parse_ratio_spec("0.5", skip=[""])


def test_from_layer_ratios_matches_protocol_semantics() -> None:
    spec = RatioSpec.from_layer_ratios({"*": 0.5, "fc1": 0.1})
    assert spec.kind == "patterns" and spec.resolve(NAMES)["fc1"] == 0.1
    with pytest.raises(ProtocolError, match="would empty"):
        RatioSpec.from_layer_ratios({"conv1": 1.0})


def test_counts_use_the_one_count_rule() -> None:
    spec = parse_ratio_spec("conv1:0.3,layer1.0.conv1:0.99")
    counts = spec.counts({"conv1": 10, "layer1.0.conv1": 4}, rule=units_to_remove)
    assert counts == {"conv1": 3, "layer1.0.conv1": 3}  # ceil(3.0) despite float error; keep one


def test_achieved_reports_counts_and_fractions() -> None:
    report = achieved({"conv1": 16, "fc1": 64, "conv2": 8}, {"conv1": 11, "fc1": 64, "conv2": 1})
    assert report == {"conv1": (5, 5 / 16), "fc1": (0, 0.0), "conv2": (7, 7 / 8)}
    with pytest.raises(PruningError, match="missing after"):
        achieved({"conv1": 16}, {})
    with pytest.raises(PruningError, match="went from 4 to 5"):
        achieved({"conv1": 4}, {"conv1": 5})
