"""The example third-party package's own tests (plugins/example_taylor/tests) use the conformance
kit and pass, run as its author runs them: pytest in the package, the package on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "plugins" / "example_taylor"


@pytest.mark.slow
def test_the_example_packages_tests_pass_with_the_kit() -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    result = subprocess.run(
        command, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "11 passed" in result.stdout  # 9 conformance checks + 2 known answers
