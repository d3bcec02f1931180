"""``study --jobs N`` workers die with their parent (issue 14: after kill -9 of the study they lived
on as orphans, finished their runs, started queued ones and idled at ~765 MB each), and the
killed study resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.run.crash_kit import short_protocol

PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from pruning_suite.studies.executor import die_with_parent

def work(path):
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(600)

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(2, context, initializer=die_with_parent, initargs=(os.getpid(),))
    for i in range(2):
        pool.submit(work, os.path.join(sys.argv[1], f"worker{i}"))
    time.sleep(600)
"""


def _wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"  # a zombie has died
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.split(") ")[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_pool_workers_die_when_their_parent_is_killed(tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(PARENT))
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    files = [tmp_path / "worker0", tmp_path / "worker1"]
    deadline = time.monotonic() + 120
    while not all(f.is_file() and f.read_text() for f in files):
        assert parent.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    workers = [int(f.read_text()) for f in files]
    assert all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_gone(workers) == [], "orphaned workers outlived their study"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_a_study_with_two_jobs_leaves_no_orphan_and_the_rerun_resumes(tmp_path) -> None:
    env = {**os.environ, "PRUNING_SUITE_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "pruning_suite.cli.main", "study", "lr-sweep"]
    command += ["--plugin", "l1norm", "--protocol", str(short_protocol(tmp_path)), "--seeds", "2"]
    command += ["--out", str(tmp_path / "out"), "--report", str(tmp_path / "report")]
    command += ["--device", "cpu", "--jobs", "2"]
    study = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    work = tmp_path / "cache" / "work"
    deadline = time.monotonic() + 600
    while not list(work.glob("run-*-retraining.pt")):  # a worker is mid-retraining
        assert study.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    workers = [pid for pid in _children(study.pid) if "spawn_main" in _cmdline(pid)]
    assert len(workers) == 2
    study.send_signal(signal.SIGKILL)
    study.wait()
    assert _wait_gone(workers) == [], "orphaned workers outlived their study"
    done_before = len(list((tmp_path / "out").rglob("*.json")))

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skip ") == done_before
    assert "retraining resumes after epoch" in again.stderr
    assert len(list((tmp_path / "out").rglob("*.json"))) == 4  # 2 schedules x 2 seeds
    third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert third.stdout.count("skip ") == 4 and "queue" not in third.stdout


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
