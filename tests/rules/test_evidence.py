"""Tamper evidence (issue 14): counts behind accuracies, possible accuracies, copied seeds."""

from __future__ import annotations

import json
import shutil

from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.rules.evidence import impossible_accuracy
from pruning_suite.validate import validate_file, validate_paths
from tests.conftest_submissions import run_id_for


def _rules(problems) -> list[tuple[str, str]]:
    return [(p.rule, p.where) for p in problems]


def _forged(default_runs, tmp_path, edit) -> object:
    source = default_runs["l1norm"].path
    data = json.loads(source.read_text())
    edit(data)
    path = tmp_path / source.name
    write_json_atomic(path, data)
    return path


def test_R_EVAL_3_a_run_records_counts_that_give_its_accuracies(default_runs) -> None:
    data = json.loads(default_runs["l1norm"].path.read_text())
    final = data["final"]
    assert (final["test_examples"], final["val_examples"]) == (360, 180)  # digits' fixed splits
    assert final["test_top1"] == 100.0 * final["test_correct"] / 360
    assert final["val_top1"] == 100.0 * final["val_correct"] / 180
    assert len(data["evidence"]["weights_sha256"]) == 64
    assert validate_file(default_runs["l1norm"].path) == []


def test_R_EVAL_3_one_point_more_on_the_final_epoch_is_caught(default_runs, tmp_path) -> None:
    def plus_one(data):
        data["final"]["test_top1"] += 1.0
        data["retraining"][-1]["test_top1"] += 1.0
        data["final"]["delta_top1"] += 1.0

    problems = validate_file(_forged(default_runs, tmp_path, plus_one))
    assert ("R-EVAL-3", "$.final.test_top1") in _rules(problems)
    assert all(p.severity == "error" for p in problems if p.rule == "R-EVAL-3")


def test_R_EVAL_3_an_impossible_accuracy_is_caught_even_with_consistent_counts_removed(
    default_runs, tmp_path
) -> None:
    def impossible(data):
        for row in data["retraining"]:
            row["test_top1"] = 99.5  # 358.2 of 360 images
        data["final"]["test_top1"] = 99.5
        data["final"]["delta_top1"] = 99.5 - data["base_model"]["dense_test_top1"]
        data["final"]["test_correct"] = None

    problems = validate_file(_forged(default_runs, tmp_path, impossible))
    assert ("R-EVAL-3", "$.retraining[0].test_top1") in _rules(problems)
    assert impossible_accuracy(99.5, 360) and not impossible_accuracy(100 * 358 / 360, 360)


def test_R_EVID_1_a_copied_seed_is_caught_across_the_tree(default_runs, tmp_path) -> None:
    folder = tmp_path / "digits-convnet" / "l1norm"
    folder.mkdir(parents=True)
    original = shutil.copy(default_runs["l1norm"].path, folder)
    data = json.loads(default_runs["l1norm"].path.read_text())
    data["seed"] = 1  # the worst seed replaced by a copy of another, run id recomputed
    data["run_id"] = run_id_for(data)
    write_json_atomic(folder / f"{data['run_id']}.json", data)
    results = validate_paths([tmp_path])
    copied = [p for problems in results.values() for p in problems if p.rule == "R-EVID-1"]
    assert len(copied) == 2 and all(p.severity == "error" for p in copied)
    assert str(original) in copied[1].message or str(original) in copied[0].message


def test_R_STAGE_3_counts_removed_do_not_meet_S4_1_whatever_rule_set_is_claimed(
    default_runs, tmp_path
) -> None:
    def uncounted(data):
        data["pruning_stage"]["method_grad_samples"] = None
        data["certification"]["ruleset"] = 2

    problems = validate_file(_forged(default_runs, tmp_path, uncounted))
    assert ("R-STAGE-3", "$.pruning_stage") in _rules(problems)
