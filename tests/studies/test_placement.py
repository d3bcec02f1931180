"""``study --jobs N`` on several GPUs (issue 13, item 3): runs spread round robin over the visible
GPUs, several per GPU, the run id untouched; ``--jobs 2`` gives the bits of two plain runs.

The GPU tests run on the CPU: ``torch.cuda`` is monkeypatched and the worker pool replaced by one
that records the device of every job it is handed and finishes them on a simulated clock.
"""

from __future__ import annotations

import concurrent.futures
from collections import Counter
from concurrent.futures import Future
from dataclasses import replace

import pytest
import torch

from pruning_suite.record.compare import compare_runs
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.studies.executor import LocalExecutor, pinned, planned_path, worker_devices


def _gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_worker_slots_go_round_robin_over_several_gpus(monkeypatch) -> None:
    _gpus(monkeypatch, 2)
    assert worker_devices(5) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    _gpus(monkeypatch, 1)
    assert worker_devices(3) == [None] * 3  # one GPU: jobs keep their own device
    _gpus(monkeypatch, 0)
    assert worker_devices(2) == [None] * 2


def test_only_jobs_asking_for_any_gpu_are_pinned_and_the_run_id_stays(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path, smoke=True)
    assert pinned(base, "cuda:1").device == "cuda:1"  # None: CUDA when present
    assert pinned(replace(base, device="cuda"), "cuda:1").device == "cuda:1"
    for device in ("cpu", "cuda:0"):
        assert pinned(replace(base, device=device), "cuda:1").device == device
    assert pinned(base, None) is base
    assert planned_path(pinned(base, "cuda:1")) == planned_path(base)


class _SimulatedPool:
    """Stands in for ``ProcessPoolExecutor``: records each job's device; a job of seed s takes
    ``DURATION[s % 4]`` time units, and ``wait`` returns the run that finishes first."""

    DURATION = (5, 1, 1, 1)  # seed 0 runs are slow: round robin by job index would pile up
    log: list[tuple[float, Counter]] = []

    def __init__(self, workers, context, initializer=None, initargs=()) -> None:
        self.workers, self.now = workers, 0.0
        self.ends: dict[Future, tuple[float, str]] = {}
        _SimulatedPool.current = self

    def submit(self, fn, job, threads) -> Future:
        assert len(self.ends) < self.workers, "more jobs handed out than workers"
        future: Future = Future()
        future.set_result(f"seed {job.seed} on {job.device}")
        self.ends[future] = (self.now + self.DURATION[job.seed % 4], job.device)
        _SimulatedPool.log.append((self.now, Counter(d for _, d in self.ends.values())))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _first_to_finish(futures, return_when=None):
    pool = _SimulatedPool.current
    first = min(futures, key=lambda f: pool.ends[f][0])
    pool.now = pool.ends.pop(first)[0]
    return {first}, set(futures) - {first}


def test_jobs_spread_over_gpus_and_each_gpu_keeps_its_share(monkeypatch, tmp_path) -> None:
    _gpus(monkeypatch, 2)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _SimulatedPool)
    monkeypatch.setattr(concurrent.futures, "wait", _first_to_finish)
    _SimulatedPool.log = []
    base = RunConfig(plugin="l1norm", out=tmp_path, device="cuda")
    jobs = [replace(base, seed=seed) for seed in range(12)] + [replace(base, device="cpu")]
    done: list[int] = []
    subs = LocalExecutor(workers=4).run(jobs, lambda index, _: done.append(index))
    assert sorted(done) == list(range(13))
    assert subs[:4] == [f"seed {s} on cuda:{s % 2}" for s in range(4)]  # job i: cuda:(i mod 2)
    assert subs[12] == "seed 0 on cpu"
    assert {sub.rsplit(" ", 1)[1] for sub in subs[:12]} == {"cuda:0", "cuda:1"}
    for _, in_flight in _SimulatedPool.log:  # never more than 4 / 2 runs on one GPU
        assert max(count for device, count in in_flight.items() if device != "cpu") <= 2


def _as_json(result) -> dict:
    return result.model_dump(mode="json")


@pytest.mark.slow
def test_jobs_2_gives_the_bits_of_two_plain_runs(monkeypatch, tmp_path) -> None:
    base = RunConfig(plugin="l1norm", smoke=True, device="cpu")
    jobs = [replace(base, seed=0), replace(base, seed=1)]
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache-jobs"))
    side_by_side = LocalExecutor(workers=2).run(
        [replace(job, out=tmp_path / "jobs") for job in jobs], lambda *_: None
    )
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache-plain"))  # its own base model
    plain = [run(replace(job, out=tmp_path / "plain")).submission for job in jobs]
    for one, other in zip(side_by_side, plain, strict=True):
        assert one.run_id == other.run_id
        first, second = _as_json(one), _as_json(other)
        assert compare_runs(first, second) == [] and compare_runs(second, first) == []
        assert first["environment"]["num_threads"] == second["environment"]["num_threads"]
