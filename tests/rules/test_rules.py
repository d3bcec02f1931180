"""One test per rule of RULES.md (``test_R_<ID>_...``) and the input cases of issue 4.

The fairness rules come from Wang et al., "Why is the State of Neural Network Pruning so
Confusing?" (arXiv 2301.05219): comparison setups S1..S4.2 and SX-A/SX-B (Table 2), final-epoch
accuracy, several seeds with their sample std. Every submission here is built by
``make_submission`` (a fully certified S4.2 closed-division sample); protocols of our own are TOML
files written to ``tmp_path`` and given to ``validate_paths`` / ``build_tables`` as ``protocols``.
No test trains a model except through the session fixture ``default_runs``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from pruning_suite.cli.main import main
from pruning_suite.protocol.spec import ComparisonProtocol, load_protocol, load_protocol_file
from pruning_suite.record.submission import Submission
from pruning_suite.report.tables import build_tables, load_submissions, render
from pruning_suite.rules import (
    CheckContext,
    ScratchBudget,
    certify,
    check_dataset_checksum,
    check_target_tolerance,
    scratch_epochs,
)
from pruning_suite.validate import validate_file, validate_paths
from tests.conftest_submissions import (
    certified,
    make_submission,
    percent,
    run_id_for,
    write_submission,
)

DIGITS = load_protocol("digits-convnet")
DIGITS_TOML = (
    resources.files("pruning_suite.protocol.files").joinpath("digits-convnet.toml").read_text()
)


def _protocol_file(tmp_path: Path, pid: str, retrain_epochs: int = 20, extra: str = ""):
    """A protocol of our own: digits-convnet under id ``pid`` with other retraining epochs and
    ``extra`` TOML tables appended; written to ``tmp_path`` and loaded from there."""
    text = DIGITS_TOML.replace('id = "digits-convnet"', f'id = "{pid}"')
    text = text.replace("[retraining]\nepochs = 20", f"[retraining]\nepochs = {retrain_epochs}")
    path = tmp_path / f"{pid}.toml"
    path.write_text(text + extra, encoding="utf-8")
    return load_protocol_file(path)


def _problems(tmp_path: Path, data: dict, protocols=(), name: str | None = None) -> list:
    return validate_file(write_submission(tmp_path, data, name), protocols)


def _rules(problems) -> list[tuple[str, str, str]]:
    return [(p.rule, p.severity, p.where) for p in problems]


def _recertify(data: dict, protocol: ComparisonProtocol = DIGITS) -> dict:
    """``data`` with the certification its (edited) fields support: only the edit is reported."""
    data["certification"] = certified(data, protocol)
    return data


def _set_accuracies(data: dict, test: list[int], val: list[int] | None = None) -> dict:
    """Per-epoch test (and validation) images right in the retraining rows, of the run's test
    (validation) examples, as top-1; ``final`` = the last row, with its counts."""
    n_test, n_val = data["final"]["test_examples"], data["final"]["val_examples"]
    val = val or [round(t * n_val / n_test) - 1 for t in test]
    assert len(test) == len(val) == len(data["retraining"])
    for row, t, v in zip(data["retraining"], test, val, strict=True):
        row["test_top1"], row["val_top1"] = percent(t, n_test), percent(v, n_val)
    last = data["retraining"][-1]
    data["final"].update(test_top1=last["test_top1"], val_top1=last["val_top1"])
    data["final"].update(test_correct=test[-1], val_correct=val[-1])
    data["final"]["delta_top1"] = last["test_top1"] - data["base_model"]["dense_test_top1"]
    return data


# =========================================================================== by construction


def test_R_RETRAIN_1_runs_retrain_with_the_protocols_whole_recipe(default_runs) -> None:
    for name in ("l1norm", "random"):
        sub = default_runs[name].submission
        assert sub.retraining_recipe.model_dump() == DIGITS.retraining.model_dump()
        assert len(sub.retraining) == DIGITS.retraining.epochs == 20
        assert [row.lr for row in sub.retraining] == [0.01] * 10 + [0.001] * 10
        assert sub.retraining_override is None


# =========================================================================== checked per file


def test_R_SCHEMA_1_a_seed_of_the_wrong_type_is_one_schema_problem(tmp_path) -> None:
    data = make_submission()
    data["seed"] = "3"
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-SCHEMA-1", "error", "$.seed")]
    assert problem.message == 'expected integer, got string "3"'


def _untrusted_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Issue 4's hostile files: name -> (path, what the one-line reason says)."""
    good = json.dumps(make_submission(), indent=2)
    files = {}

    def put(name: str, text: str, reason: str) -> None:
        path = tmp_path / f"{name}.json"
        path.write_text(text, encoding="utf-8")
        files[name] = (path, reason)

    put("nan", good.replace('"test_top1": 90.0', '"test_top1": NaN', 1), "numbers must be finite")
    put("duplicate-key", good.replace('"seed": 0,', '"seed": 0,\n  "seed": 1,', 1), "duplicate key")
    put("deep", '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested deeper than 64 levels")
    for name, seed in (("seed-string", '"3"'), ("seed-float", "3.5")):
        put(name, good.replace('"seed": 0,', f'"seed": {seed},', 1), "expected integer")
    put(
        "schema-99",
        good.replace('"schema_version": 1', '"schema_version": 99', 1),
        "schema_version 99 is not supported; supported: 1",
    )
    huge = tmp_path / "huge.json"
    huge.touch()
    os.truncate(huge, 200 * 2**20)  # sparse: 200 MB are never written, nor read
    files["huge"] = (huge, "200.0 MiB, over the 16.0 MiB limit of a JSON file")
    return files


def test_R_SCHEMA_1_hostile_files_are_refused_with_one_line_each(tmp_path) -> None:
    files = _untrusted_files(tmp_path)
    results = validate_paths([path for path, _ in files.values()])
    for name, (path, reason) in files.items():
        problems = [p for p in results[path] if p.rule == "R-SCHEMA-1"]
        assert len(problems) == 1, (name, results[path])
        assert problems[0].severity == "error" and "\n" not in problems[0].message, name
        assert reason in problems[0].message, (name, problems[0].message)


def test_R_SCHEMA_1_cli_refuses_hostile_files_without_a_traceback(tmp_path) -> None:
    files = _untrusted_files(tmp_path)
    exe = shutil.which("pruning-suite", path=str(Path(sys.executable).parent)) or shutil.which(
        "pruning-suite"
    )
    assert exe, "the pruning-suite console script is not installed"
    done = subprocess.run(
        [exe, "validate", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    for path, reason in files.values():
        lines = [line for line in done.stdout.splitlines() if line.startswith(f"{path}: ")]
        assert any(reason in line and "[R-SCHEMA-1]" in line for line in lines), path
    assert "7 files checked: 0 valid, 7 invalid" in done.stdout


def test_R_EVAL_1_reported_accuracy_is_the_final_epoch_never_a_best_one(tmp_path) -> None:
    # 3 epochs of gradual pruning (274, 273, 275 of 360 test images: 76.1 %, 75.8 %, 76.4 %),
    # then 7 of retraining
    protocol = _protocol_file(
        tmp_path,
        "digits-gradual",
        retrain_epochs=7,
        extra='\n[pruning_budget]\nepochs = 3\nlr_schedule = "0:0.01"\n',
    )
    data = make_submission(under=protocol)
    stage = [
        {
            "epoch": i,
            "lr": 0.01,
            "train_loss": 0.5,
            "val_top1": percent(t // 2 - 1, 180),
            "test_top1": percent(t, 360),
        }
        for i, t in enumerate((274, 273, 275))
    ]
    data["pruning_stage"] = {
        **data["pruning_stage"],
        "epochs": 3,
        "lr_schedule": "0:0.01",
        "log": stage,
    }
    _set_accuracies(data, [253, 266, 269, 272, 271, 270, 270])  # 75.0 % = 270 of 360
    _recertify(data, protocol)
    final = Submission.model_validate(data).final
    assert (final.test_top1, final.selection) == (75.0, "final-epoch")
    assert data["certification"]["setup"] == "S4.2"
    assert _problems(tmp_path, data, [protocol]) == []
    # the best pruning-stage epoch, the best retraining epoch (counts edited alike)
    for right in (275, 272):
        claimed = percent(right, 360)
        edited = json.loads(json.dumps(data))
        edited["final"].update(test_top1=claimed, test_correct=right)
        edited["final"]["delta_top1"] = claimed - edited["base_model"]["dense_test_top1"]
        problems = _problems(tmp_path, edited, [protocol])
        assert _rules(problems) == [("R-EVAL-1", "error", "$.final.test_top1")], claimed
        assert f"final.test_top1 is {claimed:.10g} but the last retraining epoch" in (
            problems[0].message
        )


def test_R_EVAL_1_best_val_selects_on_the_validation_split_only(tmp_path) -> None:
    data = make_submission()
    test = [288] * 17 + [335, 329, 328]  # of 360: best test epoch 17
    val = [144] * 17 + [160, 162, 162]  # of 180: best validation epoch 18 (earliest of the tie)
    _set_accuracies(data, test, val)
    data["final"].update(selection="best-val", selected_epoch=18, test_correct=329, val_correct=162)
    data["final"].update(test_top1=percent(329, 360), val_top1=percent(162, 180))
    data["final"]["delta_top1"] = percent(329, 360) - 92.5
    assert _problems(tmp_path, _recertify(data)) == []
    data["final"].update(selected_epoch=17, test_correct=335, val_correct=160)
    data["final"].update(test_top1=percent(335, 360), val_top1=percent(160, 180))
    data["final"]["delta_top1"] = percent(335, 360) - 92.5
    problems = _problems(tmp_path, _recertify(data))
    assert [p.where for p in problems] == [
        "$.final.selected_epoch",
        "$.final.test_top1",
        "$.final.val_top1",
    ]
    assert {p.rule for p in problems} == {"R-EVAL-1"}
    assert "the retraining epoch with the best validation top-1 is 18" in problems[0].message


def test_R_EVAL_2_delta_is_recomputed_from_the_raw_fields(tmp_path) -> None:
    data = make_submission()
    data["final"]["delta_top1"] = 2.5  # sign flipped: 90.0 - 92.5 is -2.5
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-EVAL-2", "error", "$.final.delta_top1")]
    assert "delta_top1 is 2.5 but final.test_top1 - base_model.dense_test_top1 is -2.5" in (
        problem.message
    )


def test_R_EVAL_2_report_deltas_are_against_the_protocols_base_model(tmp_path) -> None:
    protocol = _protocol_file(
        tmp_path, "digits-pinned", extra="\n[base_reference]\ndense_test_top1 = 67.5\n"
    )
    subs = [  # 252, 261 and 243 of 360 test images
        Submission.model_validate(
            make_submission(under=protocol, method=name, top1=70.0, dense_top1=dense)
        )
        for name, dense in (("a", 72.5), ("b", 67.5))
    ]
    assert [s.final.delta_top1 for s in subs] == pytest.approx([-2.5, 2.5])  # their own
    tables = build_tables(subs, [protocol])
    rows = [row for table in tables for row in table.incomplete]  # 1 of 3 seeds: listed apart
    deltas = {row.method: row.delta_top1 for row in rows}
    assert deltas == pytest.approx({"a": 2.5, "b": 2.5})
    text = render(tables)
    assert text.count(" +2.50 |") == 2 and "-2.50" not in text
    assert "delta vs the protocol's base model (dense test top-1 67.50)" in text
    # a's own base is not the protocol's (S2 unmet): it is certified S1 and tabled apart
    assert [(t.division, t.setup, [r.method for r in t.rows + t.incomplete]) for t in tables] == [
        ("closed", "S4.2", ["b"]),
        ("open", "S1", ["a"]),
    ]


def test_R_MEAS_1_flops_are_twice_the_macs(tmp_path) -> None:
    data = make_submission()
    data["pruning"]["flops_pruned"] = 2500  # FLOPs stored under the MACs number
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-MEAS-1", "error", "$.pruning.flops_pruned")]
    assert problem.message == "flops_pruned is 2500 but 2 x macs_pruned is 5000; FLOPs = 2 x MACs"


def test_R_MEAS_2_speedup_is_macs_dense_over_macs_pruned(tmp_path) -> None:
    data = make_submission()
    data["pruning"]["speedup"] = 2.01  # within the target tolerance, not the recomputation's
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-MEAS-2", "error", "$.pruning.speedup")]
    assert problem.message == "speedup is 2.01 but macs_dense / macs_pruned is 2"


def test_R_MEAS_3_sparsity_is_recomputed_for_filter_and_weight_granularity(tmp_path) -> None:
    data = make_submission()
    data["pruning"]["sparsity"] = 0.405
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-MEAS-3", "error", "$.pruning.sparsity")]
    assert "but 1 - params_pruned / params_dense is 0.4" in problem.message
    weight = _weight_granularity(make_submission(protocol="my-protocol"))
    weight["pruning"]["sparsity"] = 0.4  # 1 - 600 / 1000, but weight sparsity counts non-zeros
    problems = [p for p in _problems(tmp_path, weight) if p.rule == "R-MEAS-3"]
    assert [p.message for p in problems] == [
        "sparsity is 0.4 but 1 - params_nonzero / params_dense is 0.7"
    ]


def _weight_granularity(data: dict) -> dict:
    """``data`` as a weight-granularity run: dense shapes, 300 of 1000 weights non-zero."""
    data["method"]["granularity"] = "weight"
    data["pruning"].update(
        granularity="weight",
        params_pruned=1000,
        macs_pruned=5000,
        flops_pruned=10000,
        speedup=1.0,
        params_nonzero=300,
        sparsity=0.7,
        macs_effective=1250,
        flops_effective=2500,
        effective_speedup=4.0,
    )
    return data


def test_R_MEAS_4_base_params_are_the_dense_params(tmp_path) -> None:
    data = make_submission()
    data["base_model"]["params"] = 999
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-MEAS-4", "error", "$.base_model.params")]


def test_R_MEAS_5_layer_ratios_are_recomputed(tmp_path) -> None:
    data = make_submission()
    data["pruning"]["layers"][1]["achieved_ratio"] = 0.4  # conv2: (16 - 8) / 16 = 0.5
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-MEAS-5", "error", "$.pruning.layers[1].achieved_ratio")]
    assert "(16 - 8) / 16 = 0.5" in problem.message


def test_R_MEAS_6_a_pruned_model_is_never_larger(tmp_path) -> None:
    data = make_submission(protocol="my-protocol")  # no target to miss: only R-MEAS-6
    data["pruning"].update(macs_pruned=6000, flops_pruned=12000, speedup=5000 / 6000)
    problems = [p for p in _problems(tmp_path, data) if p.severity == "error"]
    assert _rules(problems) == [("R-MEAS-6", "error", "$.pruning.macs_pruned")]
    assert problems[0].message == (
        "macs_pruned is 6000 but macs_dense is 5000; a pruned model is not larger than its "
        "dense model"
    )


def test_R_MEAS_7_weight_granularity_records_effective_counts(tmp_path) -> None:
    data = _weight_granularity(make_submission(protocol="my-protocol"))
    assert [p.rule for p in _problems(tmp_path, data)] == ["R-PROTO-1"]  # unknown protocol only
    data["pruning"]["flops_effective"] = 1250
    data["pruning"]["effective_speedup"] = 2.0
    problems = _problems(tmp_path, data)
    assert _rules(problems)[:2] == [
        ("R-MEAS-7", "error", "$.pruning.flops_effective"),
        ("R-MEAS-7", "error", "$.pruning.effective_speedup"),
    ]
    mixed = make_submission()
    mixed["method"]["granularity"] = "weight"  # a weight method, filter measurements
    assert ("R-MEAS-7", "error", "$.method.granularity") in _rules(_problems(tmp_path, mixed))


def test_R_LOG_1_retraining_epochs_are_numbered_from_zero(tmp_path) -> None:
    data = make_submission()
    data["retraining"][1]["epoch"] = 5
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-LOG-1", "error", "$.retraining[1].epoch")]
    assert problem.message == "epoch is 5 but row 1 must be epoch 1; epochs are numbered 0..n-1"


def test_R_RANK_1_smoke_runs_are_not_rankable_and_never_ranked(tmp_path) -> None:
    data = make_submission(smoke=True)
    data["rankable"] = True
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-RANK-1", "error", "$.rankable")]
    smoke = Submission.model_validate(make_submission(smoke=True, seed=1, top1=97.5))
    (table,) = build_tables([Submission.model_validate(make_submission()), smoke])
    assert [row.seeds for row in table.incomplete] == [(0,)] and table.smoke_runs == 1


def test_R_ID_1_a_run_id_file_holds_that_run(tmp_path) -> None:
    data = make_submission()
    (problem,) = _problems(tmp_path, data, name="0123456789ab.json")
    assert _rules([problem]) == [("R-ID-1", "error", "$.run_id")]
    assert "'0123456789ab.json'" in problem.message


def test_R_ID_3_no_two_files_of_a_tree_hold_one_run_id(tmp_path) -> None:
    data = make_submission()
    first = write_submission(tmp_path / "tree" / "a", data)
    copy = write_submission(tmp_path / "tree" / "b", data, name="copy.json")
    results = validate_paths([tmp_path / "tree"])
    for path, other in ((first, copy), (copy, first)):
        (dup,) = [p for p in results[path] if p.rule == "R-ID-3"]
        assert dup.where == "$.run_id" and str(other) in dup.message


def test_R_ID_2_the_run_id_is_recomputed_from_the_files_fields(tmp_path) -> None:
    data = make_submission(seed=3)
    expected = data["run_id"]
    data["run_id"] = "0123456789ab"
    (problem,) = _problems(tmp_path, data, name="run.json")
    assert _rules([problem]) == [("R-ID-2", "error", "$.run_id")]
    assert f"give run id {expected!r}" in problem.message


def test_R_PROTO_1_a_shipped_protocol_is_followed_or_the_file_is_invalid(tmp_path) -> None:
    data = make_submission()
    data["protocol"]["content_hash"] = "e" * 64
    data["run_id"] = run_id_for(data)  # the content hash is part of the run id
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-PROTO-1", "error", "$.protocol.content_hash")]
    (problem,) = _problems(tmp_path, make_submission(protocol="my-protocol"))
    assert _rules([problem]) == [("R-PROTO-1", "warning", "$.protocol.id")]
    assert (
        problem.message
        == "protocol my-protocol@1 is not shipped with this suite nor registered by a plugin "
        "with this content; recipe not checked"
    )
    # a protocol of the user's, changed after the run: the recorded hash no longer matches
    from pruning_suite.protocol.spec import load_protocol

    mine = tmp_path / "mine.toml"
    text = (Path(__file__).parents[2] / "suite/protocol/files/digits-convnet.toml").read_text()
    mine.write_text(text.replace('id = "digits-convnet"', 'id = "my-protocol"'))
    (problem,) = _problems(
        tmp_path, make_submission(protocol="my-protocol"), [load_protocol(str(mine))]
    )
    assert _rules([problem]) == [("R-PROTO-1", "error", "$.protocol.content_hash")]
    assert "the protocol changed after this run" in problem.message


def test_R_FILE_1_only_the_runs_own_model_file_is_opened(tmp_path) -> None:
    data = make_submission()
    model = b"weights"
    data["pruned_model"] = {
        "file": f"{data['run_id']}.pt",
        "sha256": hashlib.sha256(model).hexdigest(),
    }
    (tmp_path / f"{data['run_id']}.pt").write_bytes(model)
    assert _problems(tmp_path, data) == []
    (tmp_path / f"{data['run_id']}.pt").write_bytes(b"replaced")
    assert _rules(_problems(tmp_path, data)) == [("R-FILE-1", "error", "$.pruned_model.sha256")]
    (tmp_path / f"{data['run_id']}.pt").unlink()
    (tmp_path / "elsewhere.pt").write_bytes(model)
    (tmp_path / f"{data['run_id']}.pt").symlink_to(tmp_path / "elsewhere.pt")  # never followed
    assert _rules(_problems(tmp_path, data)) == [("R-FILE-1", "warning", "$.pruned_model.file")]
    data["pruned_model"]["file"] = "0123456789ab.pt"  # another run's file name
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-FILE-1", "error", "$.pruned_model.file")]


def test_R_DATA_2_other_data_is_not_even_s1(tmp_path) -> None:
    data = make_submission()
    data["protocol"]["dataset_sha256"] = "b" * 64
    _recertify(data)
    assert data["certification"]["setup"] is None and data["certification"]["division"] == "open"
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-DATA-2", "warning", "$.protocol.dataset_sha256")]
    assert problem.message.startswith(
        "not S1: dataset sha256 bbbbbbbbbbbb... is not the protocol's"
    )
    unpinned = DIGITS.model_copy(
        update={"dataset": DIGITS.dataset.model_copy(update={"sha256": "unpinned"})}
    )
    sub = Submission.model_validate(data)
    assert list(check_dataset_checksum(CheckContext(sub, protocol=unpinned))) == []
    (unmet,) = check_dataset_checksum(CheckContext(sub, protocol=DIGITS))
    assert unmet.where == "$.protocol.dataset_sha256"


@pytest.mark.parametrize(
    ("target", "unmet"),
    [
        ({"sparsity": 0.409, "speedup": 1.97}, []),  # 0.009 and 1.5% off: within tolerance
        ({"sparsity": 0.411}, ["$.pruning.sparsity"]),  # 0.011 off: over the 0.01
        ({"speedup": 1.95}, ["$.pruning.speedup"]),  # 2.6% off: over the 2%
    ],
)
def test_R_TARGET_1_achieved_figures_within_the_tolerance_of_the_targets(
    tmp_path, target, unmet
) -> None:
    data = make_submission()
    data["target"].update(target)
    sub = Submission.model_validate(data)
    assert [u.where for u in check_target_tolerance(CheckContext(sub, protocol=DIGITS))] == unmet
    problems = _problems(tmp_path, _recertify(data))
    assert _rules(problems) == [("R-TARGET-1", "warning", where) for where in unmet]
    assert data["certification"]["setup"] == (None if unmet else "S4.2")


def test_R_TARGET_1_message_names_both_figures(tmp_path) -> None:
    data = make_submission()
    data["target"]["speedup"] = 1.95
    (problem,) = _problems(tmp_path, _recertify(data))
    assert problem.message == ("not S1: speedup 2.0000x is more than 2% from the target's 1.9500x")


def test_R_BASE_2_a_pinned_base_model_must_be_the_one_started_from(tmp_path) -> None:
    pinned = f'\n[base_reference]\ncheckpoint_sha256 = "{"c" * 64}"\ndense_test_top1 = 92.5\n'
    protocol = _protocol_file(tmp_path, "digits-base", extra=pinned)
    assert _problems(tmp_path, make_submission(under=protocol), [protocol]) == []
    other = make_submission(under=protocol, checkpoint_sha256="d" * 64, dense_top1=95.0)
    _recertify(other, protocol)
    assert (other["certification"]["setup"], other["certification"]["division"]) == ("S1", "open")
    problems = _problems(tmp_path, other, [protocol])
    assert _rules(problems) == [
        ("R-BASE-2", "warning", "$.base_model.checkpoint_sha256"),
        ("R-BASE-2", "warning", "$.base_model.dense_test_top1"),
    ]
    assert "base dense test top-1 95.00 is not the protocol's 92.50" in problems[1].message


def test_R_BASE_2_an_imported_base_model_is_not_the_protocols(tmp_path) -> None:
    sub = Submission.model_validate(make_submission()).model_copy()
    base = sub.base_model.model_copy(update={"source": "imported"})
    unmet = certify(sub.model_copy(update={"base_model": base}), DIGITS)
    assert unmet.setup == "S1" and unmet.unmet[0].startswith("S2 R-BASE-2: base model source")


def test_R_RETRAIN_2_40_epochs_pass_160_are_open_division(tmp_path) -> None:
    protocol = _protocol_file(tmp_path, "digits-40", retrain_epochs=40)
    short = make_submission(under=protocol, method="a", top1=90.0)
    long = make_submission(
        under=protocol, method="b", top1=95.0, retraining_override={"epochs": 160}
    )
    assert (len(short["retraining"]), len(long["retraining"])) == (40, 160)
    assert short["certification"]["setup"] == "S4.2"
    assert (long["certification"]["setup"], long["certification"]["division"]) == ("S2", "open")
    paths = [write_submission(tmp_path / "out", data) for data in (short, long)]
    results = validate_paths(paths, protocols=[protocol])
    assert [p for p in results[paths[0]] if p.rule != "R-SEED-2"] == []
    warnings = [p for p in results[paths[1]] if p.rule == "R-RETRAIN-2"]
    assert _rules(warnings) == [("R-RETRAIN-2", "warning", "$.retraining")]
    assert warnings[0].message == (
        "not S3.1: 160 retraining epochs logged; protocol digits-40@1 retrains for 40"
    )
    assert not any(p.severity == "error" for ps in results.values() for p in ps)
    subs, _ = load_submissions(tmp_path / "out", [protocol])
    tables = build_tables(subs, [protocol])
    assert [(t.division, t.setup, [r.method for r in t.rows + t.incomplete]) for t in tables] == [
        ("closed", "S4.2", ["a"]),
        ("open", "S2", ["b"]),  # the better number, but never ranked among the closed ones
    ]
    text = render(tables)
    closed, open_ = text.split("**digits-40@1**")[1:]
    assert "closed division, certified S4.2" in closed and "| b v1.0" not in closed
    assert "open division, certified S2 (not ranked with the closed division)" in open_


def test_R_RETRAIN_3_the_whole_recipe_is_the_protocols(tmp_path) -> None:
    data = make_submission()
    data["retraining_recipe"]["batch_size"] = 128
    _recertify(data)
    assert (data["certification"]["setup"], data["certification"]["division"]) == ("S3.1", "open")
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-RETRAIN-3", "warning", "$.retraining_recipe.batch_size")]
    assert problem.message == "not S3.2: retraining batch_size is 128; the protocol's is 64"
    del data["retraining_recipe"]
    (problem,) = _problems(tmp_path, _recertify(data))
    assert (problem.rule, problem.message) == (
        "R-RETRAIN-3",
        "not S3.2: the retraining recipe is not recorded",
    )
    lr = make_submission(retraining_override={"lr_schedule": "0:0.01"})
    assert lr["certification"]["setup"] == "S3.1"
    problems = _problems(tmp_path, lr)
    assert _rules(problems) == [
        ("R-RETRAIN-3", "warning", "$.retraining[10].lr"),
        ("R-RETRAIN-3", "warning", "$.retraining_recipe.lr_schedule"),
    ]


def test_R_STAGE_1_pruning_stage_epochs_within_the_budget(tmp_path) -> None:
    data = make_submission()
    data["pruning_stage"]["epochs"] = 2  # the protocol's budget: one-shot (0 epochs)
    _recertify(data)
    assert (data["certification"]["setup"], data["certification"]["division"]) == (
        "S3.2",
        "closed",  # still the protocol's retraining recipe
    )
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-STAGE-1", "warning", "$.pruning_stage.epochs")]
    assert problem.message == (
        "not S4.1: the pruning stage trained 2 epochs; the protocol's budget is 0"
    )
    del data["pruning_stage"]
    problems = _problems(tmp_path, _recertify(data))
    assert sorted((p.rule, p.where) for p in problems) == [
        ("R-EVID-2", "$.pruning_stage"),  # a non-smoke run records its stage's counts
        ("R-STAGE-1", "$.pruning_stage"),
    ]


def test_R_STAGE_2_pruning_stage_lr_schedule_is_the_budgets(tmp_path) -> None:
    data = make_submission()
    data["pruning_stage"]["lr_schedule"] = "0:0.1"
    _recertify(data)
    assert (data["certification"]["setup"], data["certification"]["division"]) == (
        "S4.1",
        "closed",
    )
    (problem,) = _problems(tmp_path, data)
    assert _rules([problem]) == [("R-STAGE-2", "warning", "$.pruning_stage.lr_schedule")]


def test_R_STAGE_3_method_compute_within_the_calibration_budget(tmp_path) -> None:
    data = make_submission()
    data["pruning_stage"]["method_grad_samples"] = 2049  # the default budget: 2,048 examples
    data["pruning_stage"]["method_optimizer_steps"] = 3
    _recertify(data)
    assert data["certification"]["setup"] == "S3.2"
    problems = _problems(tmp_path, data)
    assert _rules(problems) == [
        ("R-STAGE-3", "warning", "$.pruning_stage.method_grad_samples"),
        ("R-STAGE-3", "warning", "$.pruning_stage.method_optimizer_steps"),
    ]
    assert "passed forward with gradients 2049 training examples" in problems[0].message
    data["pruning_stage"]["method_grad_samples"] = 2048
    data["pruning_stage"]["method_optimizer_steps"] = 0
    assert _problems(tmp_path, _recertify(data)) == []
    for key in ("calibration_samples", "method_grad_samples", "method_optimizer_steps"):
        del data["pruning_stage"][key]  # not counted: held to it from rule set 3 on
    problems = _problems(tmp_path, _recertify(data))
    assert sorted((p.rule, p.where) for p in problems) == [
        ("R-EVID-2", "$.pruning_stage"),  # and refused: a non-smoke run records them
        ("R-STAGE-3", "$.pruning_stage"),
    ]


def test_R_CERT_1_a_claimed_setup_must_be_the_one_the_fields_support(tmp_path) -> None:
    data = make_submission(retraining_override={"lr_schedule": "0:0.01"})
    data["certification"] = {"setup": "S4.2", "division": "closed", "unmet": []}  # overclaimed
    errors = [p for p in _problems(tmp_path, data) if p.severity == "error"]
    assert _rules(errors) == [("R-CERT-1", "error", "$.certification")]
    assert errors[0].message == (
        "certification says S4.2 (closed division) but the file's fields support S3.1 "
        "(open division)"
    )
    modest = make_submission()
    modest["certification"] = {"setup": "S2", "division": "open", "unmet": []}  # underclaimed
    assert _rules(_problems(tmp_path, modest)) == [("R-CERT-1", "error", "$.certification")]
    del modest["certification"]  # an older file: a warning, ranked as open division
    (problem,) = _problems(tmp_path, modest)
    assert _rules([problem]) == [("R-CERT-1", "warning", "$.certification")]
    assert "the fields support S4.2 (closed division)" in problem.message


def test_R_SX_1_scratch_budgets_of_the_paper() -> None:
    # Scratch-B, K1 = 160 pretraining epochs at a 2x FLOP reduction
    f1, f2 = 2_000_000, 1_000_000

    def epochs(setup, k1, k2, f1=None, f2=None, **rest):
        return scratch_epochs(ScratchBudget(setup, k1, k2, f1, f2, **rest))

    assert epochs("SX-B", 160, 40, f1, f2, includes_retraining=False) == 320
    assert epochs("SX-B", 160, 40, f1, f2, includes_retraining=True) == 360
    assert epochs("SX-A", 160, 40, pruning_epochs=0) == 200  # K1 + P + K2
    assert epochs("SX-A", 160, 40, pruning_epochs=10) == 210
    assert epochs("SX-B", 160, 0, 3, 2, includes_retraining=False) == 240  # exact
    assert epochs("SX-B", 10, 0, 10, 3, includes_retraining=False) == 34  # ceil(33.3)
    with pytest.raises(ValueError, match="SX-B needs the dense and pruned FLOPs"):
        epochs("SX-B", 160, 40)
    with pytest.raises(ValueError, match="unknown scratch setup"):
        epochs("SX-C", 160, 40)


def _scratch(data: dict, **changes) -> dict:
    """``data`` as a scratch baseline with an SX-B budget under digits-convnet (K1 = 30, K2 = 20,
    F1/F2 = 2: 30 x 2 + 20 = 80 epochs), logging ``changes.get("epochs", 80)`` training epochs
    with the scratch recipe of that many epochs, certified as its fields support."""
    data["scratch"] = {
        "setup": "SX-B",
        "pretrain_epochs": 30,
        "retraining_epochs": 20,
        "flops_dense": 10000,
        "flops_pruned": 5000,
        "includes_retraining": True,
        "epochs": 80,
    } | changes
    from pruning_suite.protocol.spec import load_protocol
    from pruning_suite.rules import scratch_recipe

    recipe = scratch_recipe(load_protocol("digits-convnet"), data["scratch"]["epochs"])
    data["retraining_recipe"] = recipe.model_dump(mode="json")  # trained its budget's recipe
    rows = data["retraining"]
    data["retraining"] = [
        dict(rows[min(i, len(rows) - 1)], epoch=i, lr=recipe.lr_at(i))
        for i in range(data["scratch"]["epochs"])
    ]
    examples = data["final"]["test_examples"]
    right = [round(r["test_top1"] * examples / 100) for r in data["retraining"]]
    return _recertify(_set_accuracies(data, right))


def test_R_SX_1_a_scratch_block_is_checked_against_its_budget(tmp_path) -> None:
    within = _scratch(make_submission())
    assert within["certification"]["setup"] == "SX-B"
    assert _problems(tmp_path, within) == []
    short = _scratch(make_submission(), epochs=79)
    (problem,) = _problems(tmp_path, short)
    assert _rules([problem]) == [("R-SX-1", "error", "$.scratch.epochs")]
    assert problem.message == "scratch trained 79 epochs but its SX-B budget is 80"
    fake = _scratch(make_submission(), flops_pruned=2500, epochs=140)  # F2 is not the measured
    assert ("R-SX-1", "error", "$.scratch.flops_pruned") in _rules(_problems(tmp_path, fake))
    longer = _scratch(make_submission(), pretrain_epochs=60, epochs=140)  # K1: not the protocol's
    problems = [p for p in _problems(tmp_path, longer) if p.rule == "R-SX-1"]
    assert _rules(problems) == [("R-SX-1", "error", "$.scratch")]
    assert (
        "K1, K2, includes_retraining are (60, 20, True) but the protocol's are (30, 20, True)"
        in problems[0].message
    )


# =========================================================================== across files


def test_R_SEED_1_seeds_0_0_1_of_one_method_fail(tmp_path) -> None:
    paths = [
        write_submission(tmp_path / "a", make_submission(seed=0, top1=90.0)),
        write_submission(tmp_path / "b", make_submission(seed=0, top1=92.5)),  # a rerun
        write_submission(tmp_path / "a", make_submission(seed=1, top1=87.5)),
    ]
    results = validate_paths([tmp_path])
    for path in paths[:2]:
        (seed,) = [p for p in results[path] if p.rule == "R-SEED-1"]
        assert (seed.severity, seed.where) == ("error", "$.seed")
        assert "seed 0 is used by more than one run" in seed.message
        assert "(seeds 0, 0, 1)" in seed.message
    assert [p.rule for p in results[paths[2]]] == ["R-SEED-2"]  # seeds 0 and 1 of 3


def test_R_SEED_2_zero_valid_runs_say_0_of_3(tmp_path) -> None:
    for seed in range(3):
        bad = make_submission(seed=seed)
        bad["pruning"]["flops_pruned"] = 2500
        write_submission(tmp_path, bad)
    results = validate_paths([tmp_path])
    for problems in results.values():
        (seed,) = [p for p in problems if p.rule == "R-SEED-2"]
        assert seed.severity == "error"
        assert seed.message.startswith(
            "0 of 3 required seeds of this method under digits-convnet@1"
        )
    subs, _ = load_submissions(tmp_path)
    assert subs == [] and render(build_tables(subs)) == "No valid submissions found.\n"


def test_R_SEED_2_fewer_seeds_than_the_protocols_are_a_warning(tmp_path) -> None:
    for seed in (0, 2):
        write_submission(tmp_path, make_submission(seed=seed))
    results = validate_paths([tmp_path])
    for problems in results.values():
        (seed,) = problems
        assert (seed.rule, seed.severity) == ("R-SEED-2", "warning")
        assert seed.message.startswith("2 of 3 required seeds")
        assert seed.hint.startswith("run the missing seeds (e.g. --seed 1)")
    for seed in (1,):
        write_submission(tmp_path, make_submission(seed=seed))
    assert all(ps == [] for ps in validate_paths([tmp_path]).values())


def test_R_PROTO_3_one_protocol_at_two_versions_is_reported(tmp_path) -> None:
    old = write_submission(tmp_path, make_submission())
    new = write_submission(tmp_path, make_submission(protocol_version=2))
    results = validate_paths([tmp_path])
    for path in (old, new):
        (problem,) = [p for p in results[path] if p.rule == "R-PROTO-3"]
        assert (problem.severity, problem.where) == ("warning", "$.protocol.version")
        assert "protocol digits-convnet appears at versions 1, 2" in problem.message
    tables = build_tables(
        [Submission.model_validate(json.loads(p.read_text())) for p in (old, new)]
    )
    assert [t.protocol_version for t in tables] == [1, 2]  # never one table


def test_R_PROTO_4_one_protocol_version_with_two_contents_is_an_error(tmp_path) -> None:
    first = make_submission(protocol="my-protocol", seed=0)
    edited = make_submission(protocol="my-protocol", seed=1)
    edited["protocol"]["content_hash"] = "e" * 64
    edited["run_id"] = run_id_for(edited)
    paths = [write_submission(tmp_path, data) for data in (first, edited)]
    results = validate_paths([tmp_path])
    for path in paths:
        (problem,) = [p for p in results[path] if p.rule == "R-PROTO-4"]
        assert (problem.severity, problem.where) == ("error", "$.protocol.content_hash")
        assert "protocol my-protocol@1 has 2 contents in these files" in problem.message
    alone = validate_paths([paths[0]])[paths[0]]
    assert not [p for p in alone if p.rule == "R-PROTO-4"]


def test_R_BASE_3_a_run_on_another_base_model_is_reported(tmp_path) -> None:
    for seed, sha in ((0, "c" * 64), (1, "c" * 64), (2, "d" * 64)):
        write_submission(tmp_path, make_submission(seed=seed, checkpoint_sha256=sha))
    results = validate_paths([tmp_path])
    flagged = {path.name: ps for path, ps in results.items() if ps}
    ((name, (problem,)),) = flagged.items()
    assert name == f"{make_submission(seed=2)['run_id']}.json"
    assert _rules([problem]) == [("R-BASE-3", "warning", "$.base_model.checkpoint_sha256")]
    assert "the one 2 of 3 runs under digits-convnet@1 start from" in problem.message


def test_R_BASE_4_an_edited_base_accuracy_beside_runs_of_the_same_base_model_is_caught(
    tmp_path,
) -> None:
    for seed, dense in ((0, 92.5), (1, 92.5), (2, 90.0)):
        write_submission(tmp_path, make_submission(seed=seed, dense_top1=dense))
    results = validate_paths([tmp_path])
    flagged = {path.name: ps for path, ps in results.items() if ps}
    ((name, (problem,)),) = flagged.items()
    assert name == f"{make_submission(seed=2)['run_id']}.json"
    assert _rules([problem]) == [("R-BASE-4", "error", "$.base_model")]
    assert "but 2 of 3 runs from it record" in problem.message


# =========================================================================== issue 4: more inputs


def test_report_states_the_sample_std_and_a_single_runs_is_na() -> None:
    subs = [
        Submission.model_validate(make_submission(seed=s, top1=t))
        for s, t in ((0, 90.0), (1, 95.0))
    ]
    subs.append(Submission.model_validate(make_submission(method="random", top1=80.0)))
    (table,) = build_tables(subs)
    rows = {row.method: row for row in table.rows + table.incomplete}
    assert rows["l1norm"].top1_std == pytest.approx(3.5355339059327378)  # sqrt(12.5), ddof=1
    assert rows["random"].top1_std is None
    for fmt in ("github", "latex", "html"):
        assert "mean ± sample std over seeds" in render([table], fmt).replace(r"$\pm$", "±")
    text = render([table])
    assert "92.50 ± 3.54" in text and "80.00 ± n/a" in text and "80.00 ± 0.00" not in text
    csv_text = render([table], "csv")
    assert "top1_sample_std" in csv_text.splitlines()[0] and ",n/a," in csv_text


def test_validate_strict_fails_on_warnings_only(default_runs, capsys) -> None:
    out = str(default_runs["out"])  # l1norm and random, seed 0: 1 of 3 seeds (warnings)
    assert main(["validate", out]) == 0
    text = capsys.readouterr().out
    assert "warning [R-SEED-2]" in text and "error" not in text.replace("0 errors", "")
    assert main(["validate", "--strict", out]) == 1
    assert "error [R-SEED-2]" in capsys.readouterr().out


def test_validate_json_carries_rule_ids(default_runs, tmp_path, capsys) -> None:
    data = json.loads(default_runs["l1norm"].path.read_text())
    data["final"]["delta_top1"] += 1
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(data))
    assert main(["validate", "--json", str(bad)]) == 1
    out = json.loads(capsys.readouterr().out)
    ((file,),) = [out["files"]]
    # the edit, then the row's seed count: its only file is invalid, so 0 of 3 seeds
    assert [(p["rule"], p["where"], p["severity"]) for p in file["problems"]] == [
        ("R-EVAL-2", "$.final.delta_top1", "error"),
        ("R-SEED-2", "$.seed", "error"),
    ]


def test_runs_pass_validate_certified_s4_2_closed(default_runs) -> None:
    for name in ("l1norm", "random"):
        result = default_runs[name]
        sub = result.submission
        assert (sub.certification.setup, sub.certification.division) == ("S4.2", "closed")
        assert sub.certification.unmet == []
        assert certify(sub, DIGITS) == sub.certification
        assert validate_file(result.path) == []
        assert sub.run_id == run_id_for(json.loads(result.path.read_text()))
    subs, _ = load_submissions(default_runs["out"])
    (table,) = build_tables(subs)
    assert (table.division, table.setup) == ("closed", "S4.2")
    assert "closed division, certified S4.2" in render([table])


def test_R_RETRAIN_4_a_declared_override_must_match_what_ran(tmp_path) -> None:
    from tests.conftest_submissions import make_submission, run_id_for, write_submission

    data = make_submission()
    data["retraining_override"] = {"epochs": 5}  # a lie: the recipe ran the protocol's 20 epochs
    data["run_id"] = run_id_for(data)
    path = write_submission(tmp_path, data)
    problems = validate_file(path)
    assert [(p.where, p.rule) for p in problems if p.severity == "error"] == [
        ("$.retraining_override.epochs", "R-RETRAIN-4")
    ]
    smoke = make_submission(smoke=True)  # a smoke run cuts the override's 5 epochs to its 2
    smoke["retraining_override"] = {"epochs": 5}
    smoke["retraining_recipe"]["epochs"] = 2
    smoke["run_id"] = run_id_for(smoke)
    problems = validate_file(write_submission(tmp_path / "s", smoke))
    assert not [p for p in problems if p.rule == "R-RETRAIN-4"]


def test_R_RETRAIN_4_a_scratch_run_trains_all_of_its_budgets_recipe(tmp_path) -> None:
    data = _scratch(make_submission())
    data["retraining_recipe"]["momentum"] = 0.5
    data["retraining"][3]["lr"] = 0.5
    problems = [p for p in _problems(tmp_path, data) if p.rule == "R-RETRAIN-4"]
    assert [p.where for p in problems] == ["$.retraining[3].lr", "$.retraining_recipe.momentum"]
    assert problems[1].message == "retraining momentum 0.5 differs from its scratch budget's 0.9"


def test_R_TARGET_1_a_target_the_protocol_does_not_have_is_not_s1(tmp_path) -> None:
    from pruning_suite.protocol.spec import load_protocol
    from pruning_suite.record.submission import Submission
    from pruning_suite.rules import certify
    from tests.conftest_submissions import make_submission

    data = make_submission()
    data["target"]["id"] = "uniform-does-not-exist"
    cert = certify(Submission.model_validate(data), load_protocol("digits-convnet"))
    assert cert.setup is None and "not one of the protocol's" in cert.unmet[0]
    data = make_submission()
    data["target"]["layer_ratios"] = {"*": 0.1}
    cert = certify(Submission.model_validate(data), load_protocol("digits-convnet"))
    assert cert.setup is None and any("R-TARGET-1" in u for u in cert.unmet)
