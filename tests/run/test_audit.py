"""pruning-suite audit: re-execution from provenance reproduces a run bit for bit on the CPU."""

from __future__ import annotations

import json
import tempfile

from pruning_suite.cli.main import main
from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.run.audit import audit_file, compare_runs, sample_files


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
