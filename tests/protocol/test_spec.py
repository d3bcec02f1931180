"""Comparison protocols: shipped files validate, the models are strict, the LR notation parses."""

from __future__ import annotations

import pytest

from pruning_suite.errors import ProtocolError
from pruning_suite.protocol.schedule import format_schedule, lr_at, parse_schedule, stage_ranges
from pruning_suite.protocol.spec import (
    DEFAULT_PROTOCOL,
    list_protocols,
    load_protocol,
    load_protocol_file,
)


def test_shipped_protocols_load_and_ids_match_file_names() -> None:
    ids = [p.id for p in list_protocols()]
    assert DEFAULT_PROTOCOL in ids
    assert {"fashion-mnist-lenet5", "fashion-mnist-mlp7-linear"} <= set(ids)


def test_default_protocol_is_digits() -> None:
    protocol = load_protocol(None)
    assert protocol.id == "digits-convnet"
    assert protocol.dataset.name == "digits"
    assert protocol.retraining.lr_at(0) == 0.01 and protocol.retraining.lr_at(10) == 0.001


def test_protocol_is_frozen() -> None:
    protocol = load_protocol(None)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        protocol.version = 2  # type: ignore[misc]


def test_content_hash_changes_when_a_number_moves() -> None:
    protocol = load_protocol(None)
    moved = protocol.model_copy(update={"seeds": protocol.seeds + 1})
    assert len(protocol.content_hash) == 64
    assert moved.content_hash != protocol.content_hash
    assert load_protocol(None).content_hash == protocol.content_hash


def test_unknown_protocol_says_did_you_mean() -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol("digits-convnt")
    assert "unknown protocol 'digits-convnt'" in info.value.message
    assert "did you mean 'digits-convnet'" in info.value.hint


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol(None).target("uniform-55")
    assert "uniform-50" in info.value.hint


def test_mlp7_linear_targets_layers_0_to_5_at_80_percent() -> None:
    protocol = load_protocol("fashion-mnist-mlp7-linear")
    target = protocol.target(None)
    assert [target.ratio_for(f"layers.{i}") for i in range(6)] == [0.8] * 6
    assert protocol.retraining.lr_schedule == "0:0.01,30:0.001,60:0.0001"
    assert protocol.retraining.batch_size == 100 and protocol.retraining.weight_decay == 1e-4


def test_later_patterns_override_earlier(tmp_path) -> None:
    from pruning_suite.protocol.spec import PruningTarget

    target = PruningTarget(id="t", layer_ratios={"*": 0.5, "fc*": 0.2})
    assert target.ratio_for("conv1") == 0.5
    assert target.ratio_for("fc1") == 0.2
    assert target.ratio_for("anything") == 0.5


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("version = 1", "version = 0"), "version"),
        (("epochs = 20", "epochs = -1"), "retraining.epochs"),
        (('lr_schedule = "0:0.01,10:0.001"', 'lr_schedule = "5:0.01"'), "retraining.lr_schedule"),
        (('"*" = 0.5', '"*" = 1.0'), "targets"),
        (("seeds = 3", "seeds = 3\nbogus = 1"), "bogus"),
    ],
)
def test_malformed_protocol_file_names_the_field(tmp_path, edit, field) -> None:
    from importlib import resources

    text = (resources.files("pruning_suite.protocol.files") / "digits-convnet.toml").read_text()
    assert edit[0] in text
    path = tmp_path / "bad.toml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ProtocolError) as info:
        load_protocol_file(path)
    assert field in info.value.message
    assert str(path) in info.value.message


def test_protocol_file_that_is_not_toml(tmp_path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("id = [unclosed\n")
    with pytest.raises(ProtocolError, match="not valid TOML"):
        load_protocol(str(path))


def test_lr_schedule_notation() -> None:
    stages = parse_schedule("0:0.01,30:0.001,60:0.0001")
    assert stages == ((0, 0.01), (30, 0.001), (60, 0.0001))
    assert [lr_at(stages, e) for e in (0, 29, 30, 59, 60, 89)] == [
        0.01,
        0.01,
        0.001,
        0.001,
        0.0001,
        0.0001,
    ]
    assert format_schedule(stages) == "0:0.01,30:0.001,60:0.0001"
    assert stage_ranges(stages, 90) == [range(0, 30), range(30, 60), range(60, 90)]
    assert stage_ranges(stages, 40) == [range(0, 30), range(30, 40)]


@pytest.mark.parametrize("bad", ["", "1:0.1", "0:0.1,0:0.01", "0:-1", "0:nan", "0-0.1", "a:0.1"])
def test_bad_lr_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(bad)


def test_stage_ratios_follow_the_papers_resnet_convention() -> None:
    """ResNet-50 at 2.31x (Wang et al., arXiv 2301.05219): stem 0, layer1-3 0.6, layer4 0.21, classifier 0."""
    from pruning_suite.protocol.spec import PruningTarget

    target = PruningTarget(id="r50", stage_ratios=(0, 0.6, 0.6, 0.6, 0.21, 0), skip=("layer3.0.*",))
    names = [
        "layer1.0.conv1",
        "layer2.1.conv2",
        "layer3.0.conv1",
        "layer3.1.conv1",
        "layer4.2.conv1",
    ]
    assert target.resolve(names) == {
        "layer1.0.conv1": 0.6,
        "layer2.1.conv2": 0.6,
        "layer3.0.conv1": 0.0,
        "layer3.1.conv1": 0.6,
        "layer4.2.conv1": 0.21,
    }


def test_a_target_needs_exactly_one_form() -> None:
    from pydantic import ValidationError

    from pruning_suite.protocol.spec import PruningTarget

    with pytest.raises(ValidationError, match="exactly one"):
        PruningTarget(id="t")
    with pytest.raises(ValidationError, match="exactly one"):
        PruningTarget(id="t", layer_ratios={"*": 0.5}, stage_ratios=(0, 0.5, 0))
    with pytest.raises(ValidationError):
        PruningTarget(id="t", stage_ratios=(0, 1.5, 0))
