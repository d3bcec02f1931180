"""What a rerun must reproduce, and when a stored submission is kept instead of a rerun's."""

from __future__ import annotations

import copy

from pruning_suite.record.compare import compare_runs, reproduces

STORED = {
    "run_id": "abc",
    "created": "2026-12-01T00:00:00Z",
    "final": {"test_top1": 90.0, "test_correct": 324},
    "certification": {"setup": "S4.2", "division": "closed", "unmet": []},
    "latency": [{"device": "cpu", "batch_size": 1, "pruned_ms": 1.2}],
}


def _rerun(**changes: object) -> dict:
    rerun = copy.deepcopy(STORED)
    rerun.update(changes)
    return rerun


def test_a_rerun_that_differs_only_in_volatile_values_reproduces() -> None:
    rerun = _rerun(created="2026-12-05T00:00:00Z", latency=[{"device": "cpu", "pruned_ms": 3.4}])
    assert compare_runs(STORED, rerun) == []
    assert reproduces(STORED, rerun)


def test_a_different_number_does_not() -> None:
    rerun = _rerun(final={"test_top1": 90.0 + 1e-9, "test_correct": 324})
    assert not reproduces(STORED, rerun)


def test_a_field_only_the_rerun_records_is_new_information() -> None:
    older = copy.deepcopy(STORED)
    older["final"]["test_correct"] = None
    assert compare_runs(older, STORED) == []  # audit: an older file is not wrong
    assert not reproduces(older, STORED)  # but a rerun that records more is kept
    no_latency = {key: value for key, value in STORED.items() if key != "latency"}
    assert not reproduces(no_latency, STORED)
    assert not reproduces(STORED, no_latency)


def test_a_different_certification_is_not_reproduced() -> None:
    rerun = _rerun(certification={"setup": "S4.2", "division": "closed", "unmet": ["R-X-1"]})
    assert compare_runs(STORED, rerun) == []  # audit leaves certification to validate
    assert not reproduces(STORED, rerun)
