"""validate --deep: rebuild and recount what a submission claims (issue 14)."""

from __future__ import annotations

import json
import shutil

import pytest

from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.rules import deep
from pruning_suite.run.basecache import file_sha256
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("deep")
    return [
        run(RunConfig(plugin="l1norm", seed=s, smoke=True, out=out, save_model=True))
        for s in (0, 1)
    ]


def _copy(result, folder):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(result.path, folder)
    shutil.copy(result.path.with_suffix(".pt"), folder)
    return folder / result.path.name, json.loads(result.path.read_text())


def _deep_rules(problems) -> list[tuple[str, str]]:
    return [(p.rule, p.where) for p in problems if p.rule.startswith("R-DEEP")]


def test_R_DEEP_1_an_honest_run_recounts_to_its_claims(saved_runs) -> None:
    assert validate_file(saved_runs[0].path, deep=True) == []


def test_R_DEEP_1_macs_times_four_with_the_speedup_kept_is_caught(saved_runs, tmp_path) -> None:
    path, data = _copy(saved_runs[0], tmp_path)
    m = data["pruning"]
    for key in ("macs_dense", "macs_pruned", "macs_effective"):
        if m.get(key):
            m[key] *= 4
    for key in ("flops_dense", "flops_pruned", "flops_effective"):
        if m.get(key):
            m[key] *= 4
    write_json_atomic(path, data)
    assert validate_file(path) == []  # consistent with itself: the file rules cannot see it
    found = _deep_rules(validate_file(path, deep=True))
    assert ("R-DEEP-1", "$.pruning.macs_dense") in found
    assert ("R-DEEP-1", "$.pruning.macs_pruned") in found


def test_R_DEEP_2_another_runs_model_file_is_caught(saved_runs, tmp_path) -> None:
    path, data = _copy(saved_runs[0], tmp_path)
    shutil.copy(saved_runs[1].path.with_suffix(".pt"), path.with_suffix(".pt"))  # seed 1's model
    data["pruned_model"]["sha256"] = file_sha256(path.with_suffix(".pt"))  # hash kept consistent
    write_json_atomic(path, data)
    found = _deep_rules(validate_file(path, deep=True))
    assert found == [("R-DEEP-2", "$.evidence.weights_sha256")]


def test_R_DEEP_2_a_model_over_the_size_bound_is_not_read(
    saved_runs, tmp_path, monkeypatch
) -> None:
    path, _ = _copy(saved_runs[0], tmp_path)
    monkeypatch.setattr(deep, "MAX_MODEL_BYTES", 100)
    (problem,) = [p for p in validate_file(path, deep=True) if p.rule == "R-DEEP-2"]
    assert problem.severity == "warning" and "over the 100 bytes" in problem.message
