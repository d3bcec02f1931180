"""Weight (unstructured) granularity end to end: masks held through retraining, effective counts,
the saved model, granularity mismatches refused, and the validator's checks of all of it."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pruning_suite.engine.checkpoint import read_checkpoint
from pruning_suite.errors import PluginError
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file

PROTOCOL = "digits-convnet-unstructured"


@pytest.fixture(scope="module")
def magnitude_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("weight")
    return run(
        RunConfig(plugin="magnitude", protocol=PROTOCOL, out=out, smoke=True, save_model=True)
    )


def _removed(ratio: float, n: int) -> int:
    return min(math.ceil(ratio * n), n - 1)


def test_magnitude_removes_the_count_rule_of_weights_per_layer(magnitude_run) -> None:
    p = magnitude_run.submission.pruning
    sizes = {"conv1": 16 * 1 * 9, "conv2": 32 * 16 * 9, "fc1": 64 * 512}
    assert [(layer.name, layer.before, layer.after) for layer in p.layers] == [
        (name, n, n - _removed(0.9, n)) for name, n in sizes.items()
    ]
    assert [layer.after for layer in p.layers] == [14, 460, 3276]


def test_weight_granularity_records_dense_and_effective_counts(magnitude_run) -> None:
    p = magnitude_run.submission.pruning
    assert p.granularity == "weight" and magnitude_run.submission.method.granularity == "weight"
    # dense shapes are kept
    assert (p.params_pruned, p.macs_pruned, p.speedup) == (p.params_dense, p.macs_dense, 1.0)
    # non-zero: 14 + 460 + 3276 kept weights, + every bias and BN entry (16+32+64 biases,
    # 2 x (16 + 32) BN affine) + the unpruned classifier (64 x 10 + 10)
    assert p.params_nonzero == 14 + 460 + 3276 + (16 + 32 + 64) + 2 * (16 + 32) + 650
    # each kept weight is applied at 64 positions in conv1/conv2 (8x8 maps), once in the Linears
    assert p.macs_effective == 14 * 64 + 460 * 64 + 3276 + 640
    assert p.flops_effective == 2 * p.macs_effective
    assert p.effective_speedup == pytest.approx(p.macs_dense / p.macs_effective)
    assert p.sparsity == pytest.approx(1 - p.params_nonzero / p.params_dense)


def test_masks_hold_through_retraining_in_the_saved_model(magnitude_run) -> None:
    sub = magnitude_run.submission
    path = magnitude_run.path.with_suffix(".pt")
    assert sub.pruned_model is not None and sub.pruned_model.file == path.name
    checkpoint = read_checkpoint(path)
    masks = checkpoint.meta["weight_masks"]
    assert sorted(masks) == ["conv1", "conv2", "fc1"]
    for name, keep in masks.items():
        weight = checkpoint.state_dict[f"{name}.weight"]
        assert keep.shape == weight.shape
        assert torch.count_nonzero(weight[~keep]) == 0, f"{name}: a pruned weight revived"
        assert torch.count_nonzero(weight[keep]) == keep.sum(), f"{name}: kept weights are trained"
    assert validate_file(magnitude_run.path) == []


@pytest.mark.parametrize(
    ("plugin", "protocol"), [("l1norm", PROTOCOL), ("magnitude", "digits-convnet")]
)
def test_a_method_of_the_other_granularity_is_refused_before_training(
    plugin, protocol, tmp_path
) -> None:
    with pytest.raises(PluginError, match="granularity") as err:
        run(RunConfig(plugin=plugin, protocol=protocol, out=tmp_path, smoke=True))
    assert "pruning-suite plugins" in err.value.hint
    assert not list(tmp_path.rglob("*.json"))


def _tampered(magnitude_run, tmp_path, edit) -> list:
    data = json.loads(magnitude_run.path.read_text())
    edit(data)
    folder = tmp_path / "db"
    folder.mkdir()
    path = folder / magnitude_run.path.name
    path.write_text(json.dumps(data))
    model = magnitude_run.path.with_suffix(".pt")
    (folder / model.name).write_bytes(model.read_bytes())
    return validate_file(path)


def test_R_MEAS_7_effective_flops_must_be_twice_the_effective_macs(magnitude_run, tmp_path) -> None:
    def edit(data):
        data["pruning"]["flops_effective"] += 2

    problems = _tampered(magnitude_run, tmp_path, edit)
    assert [(p.where, p.severity) for p in problems] == [("$.pruning.flops_effective", "error")]


def test_R_MEAS_7_weight_granularity_needs_the_effective_counts(magnitude_run, tmp_path) -> None:
    def edit(data):
        data["pruning"]["macs_effective"] = None

    problems = _tampered(magnitude_run, tmp_path, edit)
    assert "$.pruning.macs_effective" in [p.where for p in problems]


def test_R_MEAS_3_weight_sparsity_counts_non_zero_parameters(magnitude_run, tmp_path) -> None:
    def edit(data):
        data["pruning"]["sparsity"] = 0.0  # 1 - params_pruned / params_dense: the dense claim

    problems = _tampered(magnitude_run, tmp_path, edit)
    assert [p.where for p in problems] == ["$.pruning.sparsity"]
    assert "params_nonzero" in problems[0].message


def test_R_FILE_1_a_replaced_model_file_is_caught(magnitude_run, tmp_path) -> None:
    problems = _tampered(magnitude_run, tmp_path, lambda data: None)
    assert problems == []
    model = tmp_path / "db" / magnitude_run.path.with_suffix(".pt").name
    model.write_bytes(model.read_bytes() + b"\0")
    problems = validate_file(tmp_path / "db" / magnitude_run.path.name)
    assert [(p.where, p.severity) for p in problems] == [("$.pruned_model.sha256", "error")]


def test_R_FILE_1_only_the_runs_own_file_name_is_accepted(magnitude_run, tmp_path) -> None:
    def edit(data):
        data["pruned_model"]["file"] = "000000000000.pt"

    problems = _tampered(magnitude_run, tmp_path, edit)
    assert [p.where for p in problems] == ["$.pruned_model.file"]

    def outside(data):
        data["pruned_model"]["file"] = "../../etc/passwd"

    problems = _tampered_again(magnitude_run, tmp_path, outside)
    assert problems and problems[0].where == "$.pruned_model.file"


def _tampered_again(magnitude_run, tmp_path, edit) -> list:
    sub = tmp_path / "again"
    sub.mkdir()
    return _tampered(magnitude_run, sub, edit)


def test_R_FILE_1_a_missing_model_file_is_a_warning(magnitude_run, tmp_path) -> None:
    data = json.loads(magnitude_run.path.read_text())
    path = tmp_path / magnitude_run.path.name
    path.write_text(json.dumps(data))
    problems = validate_file(path)
    assert [(p.where, p.severity) for p in problems] == [("$.pruned_model.file", "warning")]
