"""One process at a time per base model and per run id (issue 14: two identical runs at once both
trained the base model), and stale temporary files of killed writers removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from pruning_suite.record.jsonio import write_json_atomic
from pruning_suite.record.safefiles import STALE_AFTER_S, exclusive, pid_alive, remove_stale_temps
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.studies.executor import planned_path

from .crash_kit import finish, start, submission, wait_for


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_stale_temps_go_by_dead_pid_or_age_and_nothing_else(tmp_path) -> None:
    dead, now = _dead_pid(), time.time()
    names = {
        f".abc.json.{dead}.0123abcd.tmp": True,  # its writer is dead
        f".abc.json.{os.getpid()}.0123abcd.tmp": False,  # a live writer (this process)
        f".old.json.{os.getpid()}.0123abcd.tmp": True,  # live pid, but over an hour old
        "tmpab_cd123.tmp": False,  # an old version's pid-less name, recent
        "tmpoldoldol.tmp": True,  # the same, over an hour old
        ".abc.pt.x1y2z3w4.tmp": True,  # write_json_atomic's old pid-less name, old
        "notes.tmp": False,  # not ours, however old
        "abc.json": False,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    for name in (
        f".old.json.{os.getpid()}.0123abcd.tmp",
        "tmpoldoldol.tmp",
        ".abc.pt.x1y2z3w4.tmp",
        "notes.tmp",
    ):
        os.utime(tmp_path / name, (now - STALE_AFTER_S - 5,) * 2)
    removed = {path.name for path in remove_stale_temps(tmp_path)}
    assert removed == {name for name, stale in names.items() if stale}
    assert {p.name for p in tmp_path.iterdir()} == {n for n, stale in names.items() if not stale}


def test_the_next_write_into_a_folder_removes_what_a_killed_writer_left(tmp_path) -> None:
    dead = _dead_pid()
    left = tmp_path / f".run.json.{dead}.89abcdef.tmp"
    left.write_text('{"half": ')
    write_json_atomic(tmp_path / "other.json", {"a": 1})
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_a_killed_writers_temps_in_out_and_cache_are_gone_after_the_next_run(
    tmp_path, monkeypatch
) -> None:
    """The issue's leftovers: an 8 KB ``.<run-id>.json.*.tmp`` in --out and a 0-byte
    ``tmp*.tmp`` of an older version in ``cache/base``; after the next run into both folders,
    neither is there."""
    cache, out, dead = tmp_path / "cache", tmp_path / "out", _dead_pid()
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(cache))
    config = RunConfig(plugin="l1norm", smoke=True, out=out)
    folder = planned_path(config).parent
    folder.mkdir(parents=True)
    stale = folder / f".{planned_path(config).name}.{dead}.0f0f0f0f.tmp"
    stale.write_text("x" * 8192)
    (cache / "base").mkdir(parents=True)
    old = cache / "base" / "tmpk2j4h5g6.tmp"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 2 * STALE_AFTER_S,) * 2)
    run(config)
    assert not stale.exists() and not old.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_exclusive_lets_one_holder_in_and_names_it_to_the_waiter(tmp_path) -> None:
    lock, order, said = tmp_path / "locks" / "x.lock", [], []
    entered = threading.Event()

    def holder() -> None:
        with exclusive(lock, "x", said.append):
            entered.set()
            time.sleep(0.5)
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait(10)
    with exclusive(lock, "the thing x", said.append):  # another open file: flock conflicts
        order.append("second in")
    thread.join()
    assert order == ["first out", "second in"]
    assert said == [f"waiting for pid {os.getpid()}, which holds the thing x ({lock})"]
    assert not lock.exists()  # removed by its last holder: lock files do not pile up


def test_waiters_on_a_removed_lock_file_still_take_turns(tmp_path) -> None:
    """Each holder removes the file while it holds it; waiters that locked the removed file open
    the new one, so never two are in at once."""
    lock, inside, most = tmp_path / "x.lock", [0], [0]

    def worker() -> None:
        for _ in range(20):
            with exclusive(lock, "x", lambda _: None):
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.001)
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most == [1] and not lock.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("second", "what"), [("l1norm", "run "), ("random", "the training of base model ")]
)
def test_two_runs_at_once_train_the_base_model_once(tmp_path, second, what) -> None:
    """Same run: the run-id lock; another method: the base-model lock. The second waits, says
    for whom, and then finds the base model cached."""
    cache = tmp_path / "cache"
    first = start(tmp_path / "a", cache, "pause:base:1")
    wait_for(tmp_path / "a" / "halted", first)  # holds both locks, mid base training
    other = start(tmp_path / "b", cache, plugin=second)
    log = tmp_path / "b" / "stderr.txt"
    deadline = time.monotonic() + 300
    while "waiting for pid" not in log.read_text():
        assert other.poll() is None, log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (tmp_path / "a" / "halted.go").touch()
    finish(first)
    err = finish(other)
    assert err.count("waiting for pid") == 1
    assert f"waiting for pid {first.pid}, which holds {what}" in err
    a, b = submission(tmp_path / "a"), submission(tmp_path / "b")
    assert (a["base_model"]["source"], b["base_model"]["source"]) == ("trained", "cached")
    assert a["base_model"]["checkpoint_sha256"] == b["base_model"]["checkpoint_sha256"]
