"""A 4-run study under submitit or Ray, killed with ``kill -9`` after its first result, resumes
under another executor (issue 13: "a study resumes whichever executor ran its first half")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.run.crash_kit import short_protocol

ENGINE_PARAMETERS = {"submitit": ["timeout_min=10"], "ray": ["num_cpus=1"]}


def _study(tmp_path: Path, *executor: str) -> list[str]:
    command = [sys.executable, "-m", "pruning_suite.cli.main", "study", "lr-sweep"]
    command += ["--plugin", "l1norm", "--protocol", str(short_protocol(tmp_path)), "--seeds", "2"]
    command += ["--out", str(tmp_path / "out"), "--report", str(tmp_path / "report")]
    return [*command, "--device", "cpu", *executor]


@pytest.mark.slow
@pytest.mark.parametrize("engine", sorted(ENGINE_PARAMETERS))
def test_a_study_killed_under_an_engine_resumes_under_another_executor(
    tmp_path: Path, engine: str
) -> None:
    pytest.importorskip(engine)
    env = {**os.environ, "PRUNING_SUITE_CACHE": str(tmp_path / "cache")}
    executor = ["--executor", engine]
    for parameter in ENGINE_PARAMETERS[engine]:
        executor += ["--executor-param", parameter]
    study = subprocess.Popen(
        _study(tmp_path, *executor), env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not list((tmp_path / "out").rglob("*.json")):
        assert study.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(study.pid, signal.SIGKILL)  # the study and what its engine started in its session
    study.wait()
    done_before = len(list((tmp_path / "out").rglob("*.json")))
    assert 1 <= done_before < 4

    again = subprocess.run(_study(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skip ") >= done_before
    files = sorted((tmp_path / "out").rglob("*.json"))
    assert len(files) == 4  # 2 schedules x 2 seeds
    third = subprocess.run(_study(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    assert third.stdout.count("skip ") == 4 and "queue" not in third.stdout
    assert sorted((tmp_path / "out").rglob("*.json")) == files
