"""Magnitude pruning's allocation option: layer-wise (Han et al. 2015, the default, whose run ids
are those of the files committed before the option existed) or one global ranking of |w|."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pruning_suite import Allocation
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.record.identity import RunIdentity, run_id
from pruning_suite.record.submission import Submission
from pruning_suite.testing import MethodConformance
from pruning_suite_plugins.magnitude import Magnitude, MagnitudeConfig

from ._stage_kit import run_record

SMOKE = (None, "open", ["smoke run: reduced budget"])
PROTOCOL = "digits-convnet-unstructured"
COMMITTED = Path(__file__).resolve().parents[2] / "submissions" / PROTOCOL / "magnitude"
SIZES = {"conv1": 144, "conv2": 4608, "fc1": 32768}
KEPT_LAYERWISE = {"conv1": 14, "conv2": 460, "fc1": 3276}


@pytest.mark.parametrize(
    ("options", "recorded"),
    [
        ({}, {}),
        ({"allocation": "layer"}, {}),  # the default spelled out is the same run
        ({"allocation": "global"}, {"allocation": "global"}),
        (
            {"allocation": "global", "max_layer_ratio": 0.8},
            {"allocation": "global", "max_layer_ratio": 0.8},
        ),
    ],
)
def test_the_recorded_config_leaves_out_defaults(options: dict, recorded: dict) -> None:
    config = MagnitudeConfig.model_validate(options)
    assert config.model_dump(mode="json") == recorded
    assert MagnitudeConfig.model_validate(recorded) == config


def test_committed_layer_wise_runs_keep_their_run_ids() -> None:
    files = sorted(COMMITTED.glob("*.json"))
    assert len(files) == 3
    for path in files:
        sub = Submission.model_validate(json.loads(path.read_text()))
        rerun = load_registry().method("magnitude", dict(sub.method.config))
        assert rerun.config.model_dump(mode="json") == sub.method.config == {}
        assert run_id(RunIdentity.of(sub)) == path.stem


def test_allocation_is_layer_wise_by_default_and_global_without_a_normalizer() -> None:
    assert Magnitude().allocation() == Allocation()
    assert Magnitude(MagnitudeConfig(allocation="global")).allocation() == Allocation(
        scope="global", normalizer="none", max_layer_ratio=0.95
    )


def test_a_cap_without_global_allocation_is_refused() -> None:
    with pytest.raises(PluginError, match="max_layer_ratio only matters"):
        load_registry().method("magnitude", {"max_layer_ratio": 0.5})


class TestGlobalMagnitudeConforms(MethodConformance):
    method = Magnitude
    config = {"allocation": "global"}
    end_to_end = False  # the run below is the end-to-end check


def test_global_magnitude_runs_on_digits_and_its_layers_lose_unequal_shares(tmp_path) -> None:
    record = run_record(tmp_path, "magnitude", PROTOCOL, method_config={"allocation": "global"})
    assert record["method"]["config"] == {"allocation": "global"}
    assert record["pruning_stage"]["allocation"] == "global"
    kept = {layer["name"]: layer["after"] for layer in record["pruning"]["layers"]}
    assert sum(kept.values()) == sum(KEPT_LAYERWISE.values())
    assert kept != KEPT_LAYERWISE
    assert all(kept[name] >= 0.05 * SIZES[name] for name in SIZES)  # the 95% cap
    cert = record["certification"]
    assert (cert["setup"], cert["division"], cert["unmet"]) == SMOKE
