"""README.md keeps exactly two set-up commands, and .ci/run runs exactly those."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up on a new machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.S)


def test_readme_has_two_setup_commands_install_run_and_test() -> None:
    commands = _setup_commands()
    assert len(commands) == 2
    install, test = commands
    assert "pip install" in install and "pruning-suite run --plugin l1norm" in install
    assert "pytest" in test


def test_ci_runs_the_readme_commands_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in _setup_commands():
        assert command in ci, f".ci/run does not run README's command: {command}"


def test_no_placeholders_left_in_readme() -> None:
    assert "PLACEHOLDER" not in (ROOT / "README.md").read_text()
