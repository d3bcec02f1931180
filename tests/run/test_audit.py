"""pruning-suite audit: re-execution from provenance reproduces a run bit for bit on the CPU."""

from __future__ import annotations

import json
import tempfile

import pytest

from pruning_suite.cli.main import main
from pruning_suite.errors import PruningSuiteError, SubmissionError
from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.run.audit import audit_file, compare_runs, sample_files, settings_note


def test_an_untouched_run_is_reproduced_bit_for_bit(default_runs, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = audit_file(default_runs["l1norm"].path)
    assert result.differences == [] and result.reproduced
    assert result.rerun is None and list(tmp_path.iterdir()) == []  # its scratch folder removed


def test_an_edited_run_is_not_and_the_fields_are_named(default_runs, tmp_path, capsys) -> None:
    data = json.loads(default_runs["random"].path.read_text())
    data["retraining"][-1]["train_loss"] += 1e-12  # invisible in a table
    data["pruning"]["sparsity"] = 0.75
    forged = tmp_path / default_runs["random"].path.name
    write_json_atomic(forged, data)
    assert main(["audit", str(forged)]) == 1
    err = capsys.readouterr().err
    assert "NOT reproduced, 2 fields differ (rerun kept at " in err
    assert "$.pruning.sparsity: 0.75 != 0.7433" in err
    assert "$.retraining[19].train_loss" in err
    assert "note:" not in err  # made here, under the same settings


def test_compare_ignores_what_a_rerun_may_change_and_what_older_files_lack() -> None:
    recorded = {"created": "a", "final": {"test_top1": 90.0, "test_correct": None}, "x": [1, 2]}
    rerun = {"created": "b", "final": {"test_top1": 90.0, "test_correct": 324}, "x": [1, 2]}
    assert compare_runs(recorded, rerun) == []
    rerun["final"]["test_top1"] = 90.0 + 1e-9
    assert compare_runs(recorded, rerun) == ["$.final.test_top1: 90.0 != 90.000000001"]
    assert compare_runs(recorded, rerun, atol=1e-6) == []


def test_sample_draws_the_same_files_for_a_seed(tmp_path) -> None:
    for i in range(10):
        (tmp_path / f"{i}.json").write_text("{}")
    first = sample_files([tmp_path], 3, seed=7)
    assert len(first) == 3 and first == sample_files([tmp_path], 3, seed=7)
    assert sample_files([tmp_path], None) == sorted(tmp_path.glob("*.json"))


def test_a_file_made_under_other_settings_says_a_mismatch_is_expected(
    default_runs, tmp_path, capsys
) -> None:
    """A reviewer must not read a mismatch as an edit when the file was made with other CPU
    numerics or torch (its weights differ): one note line names what differed. With the same
    weights and predictions, other settings explain nothing, and no note excuses an edit."""
    data = json.loads(default_runs["random"].path.read_text())
    here = data["environment"]
    data["environment"] = {
        **here,
        "cpu_numerics": "ATen AVX512\n, MKL_CBWR=unset",
        "torch": "2.0.0",
    }
    data["pruning"]["sparsity"] = 0.75
    other = tmp_path / default_runs["random"].path.name
    write_json_atomic(other, data)
    assert main(["audit", str(other)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[1].startswith("  $.pruning.sparsity: 0.75 != 0.7433")  # no note: same bits

    data["evidence"]["weights_sha256"] = "0" * 64  # other bits, as other numerics would give
    write_json_atomic(other, data)
    assert main(["audit", str(other)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[1] == (
        "  note: the file was made with CPU numerics (ATen AVX512\\n, MKL_CBWR=unset), torch "
        f"2.0.0; this rerun used CPU numerics ({here['cpu_numerics']}), torch {here['torch']}: "
        "bit differences are expected, so a mismatch alone does not mean the file was edited"
    )
    assert any(line.startswith("  $.evidence.weights_sha256: ") for line in lines[2:])


def test_files_audit_cannot_rerun_are_one_line_errors(default_runs, tmp_path) -> None:
    (tmp_path / "folder.json").mkdir()  # a folder named like a file is not audited
    (tmp_path / "x.json").write_text('{"x": 1}')
    assert sample_files([tmp_path], None) == [tmp_path / "x.json"]
    with pytest.raises(SubmissionError, match="is not a submission: .* fields do not fit"):
        audit_file(tmp_path / "x.json")
    data = json.loads(default_runs["random"].path.read_text())
    data["environment"]["num_threads"] = 1_000_000
    write_json_atomic(tmp_path / "threads.json", data)
    with pytest.raises(PruningSuiteError, match="records 1000000 CPU threads; a rerun takes 1"):
        audit_file(tmp_path / "threads.json")


def test_a_file_audit_cannot_rerun_does_not_stop_the_others(default_runs, tmp_path, capsys) -> None:
    (tmp_path / "a.json").write_text('{"x": 1}')
    (tmp_path / "b.json").write_bytes(default_runs["l1norm"].path.read_bytes())
    assert main(["audit", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert f"{tmp_path / 'a.json'}: not audited: {tmp_path / 'a.json'} is not a submission" in (
        captured.err
    )
    assert f"{tmp_path / 'b.json'}: reproduced" in captured.out
    assert "2 audited: 1 reproduced, 1 not" in captured.out


def test_settings_note_names_only_what_differs_and_what_is_recorded(default_runs) -> None:
    rerun = default_runs["random"].submission.model_dump(mode="json")
    recorded = rerun["environment"]

    def stored(environment: object, evidence: object = "other bits") -> dict[str, object]:
        return {**rerun, "environment": environment, "evidence": evidence}

    assert settings_note(stored(recorded), rerun) is None
    older = {**recorded, "cpu_numerics": None}
    assert settings_note(stored(older), rerun) is None  # not recorded: nothing to say
    threads = {**recorded, "num_threads": recorded["num_threads"] + 1}
    assert settings_note(stored(threads, rerun["evidence"]), rerun) is None  # same bits: no excuse
    assert settings_note(stored(threads), rerun) == (
        f"the file was made with CPU threads: {recorded['num_threads'] + 1}; this rerun used "
        f"CPU threads: {recorded['num_threads']}: bit differences are expected, so a mismatch "
        "alone does not mean the file was edited"
    )
    assert settings_note("forged", rerun) is None and settings_note(stored([1]), rerun) is None
    odd = settings_note(stored({**recorded, "torch": {"x": "\x1b[2J"}}), rerun)
    assert odd is not None and "\x1b" not in odd and "torch {'x': '\\x1b[2J'}" in odd
