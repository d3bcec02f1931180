"""The results database committed in submissions/ validates with the current suite."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from pruning_suite.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1] / "submissions"


def test_committed_submissions_validate() -> None:
    results = validate_paths([ROOT])
    problems = [p for found in results.values() for p in found if p.severity == "error"]
    assert results, "no committed submissions found"
    assert not problems, "\n".join(p.report_line() for p in problems[:10])


DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(
    "page", sorted(p.parent.name for p in DOCS.glob("*/README.md")), ids=lambda name: name
)
def test_each_docs_page_is_what_its_command_writes_from_the_committed_runs(
    page, tmp_path, monkeypatch, capsys
) -> None:
    """A reproduction page cannot drift from its submissions: its own command, run on the
    committed results, finds every run and writes the same page."""
    from pruning_suite import studies as study
    from pruning_suite.cli.main import main

    def no_runs(self, jobs, on_done):
        assert not jobs, f"docs/{page} lists runs missing from submissions/: {jobs}"
        return []

    monkeypatch.setattr(study.LocalExecutor, "run", no_runs)
    committed = (DOCS / page / "README.md").read_text()
    command = committed.split("```sh\n", 1)[1].split("\n```", 1)[0]
    argv = shlex.split(command)[1:]
    report = argv.index("--report")
    argv[report + 1] = str(tmp_path / page)
    assert "--out" not in argv  # the page's runs are the committed ones
    assert main([*argv, "--out", str(ROOT)]) == 0
    written = (tmp_path / page / "README.md").read_text()
    written = written.replace(shlex.join(["pruning-suite", *argv, "--out", str(ROOT)]), command)
    assert written == committed


def test_the_readme_main_job_reproduces_a_committed_file() -> None:
    """README's first command (``pruning-suite run --plugin l1norm``) writes into submissions/;
    it keeps the committed file only when its run id is committed and it reproduces it. A new
    run id (the l1norm code or the digits-convnet protocol changed) would add a file there and
    stale docs/leaderboard in CI."""
    from pruning_suite.run.runner import RunConfig, plan_run

    run_id = plan_run(RunConfig(plugin="l1norm")).run_id
    assert (ROOT / "digits-convnet" / "l1norm" / f"{run_id}.json").is_file(), (
        f"no committed run {run_id}: run 'bash submissions/regenerate.sh digits' and rebuild "
        "the site (pruning-suite leaderboard submissions --out docs/leaderboard)"
    )
