"""Tamper evidence (issue 14): counts behind accuracies, possible accuracies, copied seeds."""

from __future__ import annotations

import json
import shutil

from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.record.submission import Submission
from pruning_suite.rules import CheckContext
from pruning_suite.rules.evidence import check_evidence_recorded, impossible_accuracy
from pruning_suite.validate import validate_file, validate_paths
from tests.conftest_submissions import make_submission, run_id_for


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


def test_R_EVAL_3_without_counts_the_protocols_split_sizes_still_judge_accuracies(
    default_runs, tmp_path
) -> None:
    def counts_dropped(data):
        for key in ("test_correct", "test_examples", "val_correct", "val_examples"):
            data["final"][key] = None
        data["final"]["val_top1"] = 99.5  # impossible on digits' 180 validation images
        data["retraining"][-1]["val_top1"] = 99.5

    problems = validate_file(_forged(default_runs, tmp_path, counts_dropped))
    assert ("R-EVAL-3", "$.retraining[19].val_top1") in _rules(problems)


def test_R_EVAL_3_without_counts_a_possible_accuracy_is_not_refused(default_runs, tmp_path) -> None:
    def counts_dropped(data):
        for key in ("test_correct", "test_examples", "val_correct", "val_examples"):
            data["final"][key] = None

    problems = validate_file(_forged(default_runs, tmp_path, counts_dropped))
    assert [p.rule for p in problems if p.rule == "R-EVAL-3"] == []
    assert ("R-EVID-2", "$.final") in _rules(problems)  # the counts are still asked for


def test_R_EVID_2_a_run_that_dropped_its_evidence_is_refused_whatever_rule_set_it_claims(
    default_runs, tmp_path
) -> None:
    def stripped(data):
        data["evidence"] = None
        data["final"]["test_correct"] = data["final"]["test_examples"] = None
        data["certification"]["ruleset"] = 2

    problems = validate_file(_forged(default_runs, tmp_path, stripped))
    found = [p for p in problems if p.rule == "R-EVID-2"]
    assert [(p.where, p.severity) for p in found] == [("$.final", "error")]
    assert (
        "test and validation counts, weight and prediction digests are not recorded"
        in found[0].message
    )


def test_R_EVID_2_a_run_without_its_code_digest_or_stage_counts_is_refused(
    default_runs, tmp_path
) -> None:
    def no_code(data):
        data["method"]["code_sha256"] = None
        data["run_id"] = run_id_for(data)  # a forger recomputes the run id

    def no_stage(data):
        data["pruning_stage"] = None
        data["certification"]["ruleset"] = 3

    for edit, where, what in (
        (no_code, "$.method.code_sha256", "method code digest"),
        (no_stage, "$.pruning_stage", "pruning-stage counts"),
    ):
        path = _forged(default_runs, tmp_path, edit)
        found = [p for p in validate_file(path) if p.rule == "R-EVID-2"]
        assert [(p.where, p.severity) for p in found] == [(where, "error")], edit.__name__
        assert f"the run's {what} are not recorded" in found[0].message


def test_R_EVID_2_a_smoke_run_need_not_record_evidence() -> None:
    data = make_submission(smoke=True)
    data["evidence"] = data["method"]["code_sha256"] = data["pruning_stage"] = None
    sub = Submission.model_validate(data)
    assert list(check_evidence_recorded(CheckContext(sub))) == []
    assert list(check_evidence_recorded(CheckContext(sub.model_copy(update={"smoke": False}))))


def test_R_STAGE_3_counts_removed_do_not_meet_S4_1_whatever_rule_set_is_claimed(
    default_runs, tmp_path
) -> None:
    def uncounted(data):
        data["pruning_stage"]["method_grad_samples"] = None
        data["certification"]["ruleset"] = 2

    problems = validate_file(_forged(default_runs, tmp_path, uncounted))
    assert ("R-STAGE-3", "$.pruning_stage") in _rules(problems)
