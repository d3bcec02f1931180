"""The results database committed in submissions/ validates with the current suite."""

from __future__ import annotations

from pathlib import Path

from pruning_suite.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1] / "submissions"


def test_committed_submissions_validate() -> None:
    results = validate_paths([ROOT])
    problems = [p for found in results.values() for p in found if p.severity == "error"]
    assert results, "no committed submissions found"
    assert not problems, "\n".join(p.report_line() for p in problems[:10])
