"""Running a study's arms: skip runs already on disk, hand the rest to an :class:`Executor`.

Runs already in the results folder (same run id, a valid file) are skipped, so a study resumes
where it stopped. Jobs are handed to an :class:`Executor`; :class:`LocalExecutor` runs them here.
The seam is the executor: anything with ``run(jobs, on_done) -> submissions`` (e.g. a distributed
engine's adapter) can take its place.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import PruningSuiteError
from ..protocol.catalogue import load_protocol
from ..record.compare import check_same_protocol
from ..record.safefiles import die_with_parent
from ..record.submission import Submission
from .base import Arm, StudyResult

__all__ = [
    "Executor",
    "Gathered",
    "LocalExecutor",
    "die_with_parent",
    "planned_path",
    "eta",
    "pinned",
    "run_job",
    "run_study",
    "worker_devices",
]

Progress = Callable[[str], None]
Slot = tuple[int, int]  # (arm index, job index)


class Executor(Protocol):
    """Runs jobs and returns their submissions, in order. The seam for a distributed engine."""

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        """Run every job (a ``RunConfig``); call ``on_done(index, submission)`` as each finishes."""
        ...


class LocalExecutor:
    """Runs jobs on this machine: one after the other (``workers=1``), or ``workers`` at a time in
    separate processes.

    Two trainings on one small CPU slow each other many times over, so the default is one at a
    time; on a GPU, or a CPU with cores to spare, small models run well side by side. Each worker
    process gets ``torch.get_num_threads() // workers`` threads (at least 1); a CPU run then sets
    its own count (:func:`pruning_suite.run.config.cpu_threads`), so its bits do not depend on
    ``workers``. Results come back in job order; ``on_done`` is called as each run finishes.

    With several GPUs visible, jobs whose device is ``"cuda"`` (or None) are spread over them
    (:func:`worker_devices`, :func:`pinned`): the ``workers`` slots are ``cuda:0``,
    ``cuda:1``, ... round robin, so job ``i < workers`` runs on ``cuda:(i mod count)``, and each
    later job takes the GPU of the run that just finished, so every GPU keeps its share of the
    runs in flight. The device is not part of the run id; the submission records it in
    ``environment.device`` (a field reruns may change).

    When a run fails, runs not yet handed to a worker never start, the runs already started
    finish and keep their files, and the first failure is raised. On Ctrl-C nothing more starts
    and the workers stop their runs (a run writes its file only when it completes). Killed
    (``kill -9``), the parent takes its workers with it (:func:`die_with_parent`); run again,
    the study skips the finished runs and the interrupted ones resume from their last epoch.

    Args:
        workers: Runs at a time (>= 1).

    Raises:
        ValueError: ``workers`` < 1.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        """Run every job; see the class docstring."""
        if self.workers == 1 or len(jobs) <= 1:
            from ..run.runner import run

            done = []
            for index, job in enumerate(jobs):
                submission = run(job).submission
                on_done(index, submission)
                done.append(submission)
            return done
        return self._run_in_processes(jobs, on_done)

    def _run_in_processes(
        self, jobs: Sequence, on_done: Callable[[int, Submission], None]
    ) -> list[Submission]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        import torch

        threads = max(1, torch.get_num_threads() // self.workers)
        gathered = Gathered(on_done)
        context = multiprocessing.get_context("spawn")  # fork and torch's threads do not mix
        pool = ProcessPoolExecutor(
            self.workers, context, initializer=die_with_parent, initargs=(os.getpid(),)
        )
        queue, slots = deque(enumerate(jobs)), deque(worker_devices(self.workers))
        running: dict[Any, tuple[int, str | None]] = {}
        try:
            while queue or running:
                while queue and slots:  # a job goes to a worker only when a slot is free
                    index, job = queue.popleft()
                    slot = slots.popleft()
                    running[pool.submit(run_job, pinned(job, slot), threads)] = (index, slot)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index, slot = running.pop(future)
                    slots.append(slot)  # the next job takes this run's GPU
                    if not gathered.add(index, future.result()):
                        queue.clear()  # runs not yet handed to a worker never start
        except BaseException:  # Ctrl-C: start nothing more; the workers stop their own runs
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return gathered.submissions(len(jobs))


def worker_devices(workers: int) -> list[str | None]:
    """The device each of ``workers`` worker slots pins its CUDA jobs to.

    Slot ``k`` gets ``cuda:(k mod count)`` when ``count = torch.cuda.device_count()`` (the GPUs
    ``CUDA_VISIBLE_DEVICES`` leaves visible) is 2 or more, so ``workers`` > ``count`` puts
    several runs on each GPU; with fewer than 2 GPUs every slot is None (jobs keep their device).

    Args:
        workers: Runs at a time (>= 1).

    Returns:
        ``workers`` devices such as ``"cuda:1"``, or ``workers`` Nones.
    """
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < 2:
        return [None] * workers
    return [f"cuda:{k % count}" for k in range(workers)]


def pinned(job: Any, slot: str | None) -> Any:
    """``job`` (a ``RunConfig``) moved to the GPU ``slot``, when its device asks for CUDA
    without an index (``"cuda"``, or None with CUDA available); else ``job`` itself.

    Only the device changes: it is no part of the run id (:func:`planned_path` is unchanged).
    """
    if slot is None or job.device not in (None, "cuda"):
        return job
    return replace(job, device=slot)


class Gathered:
    """An executor's finished runs in job order; the first failure is raised at the end, after
    every run already started has finished (and kept its file).

    Args:
        on_done: Called with ``(index, submission)`` as each run succeeds.
    """

    def __init__(self, on_done: Callable[[int, Submission], None]) -> None:
        self.on_done = on_done
        self.results: dict[int, Submission] = {}
        self.failure: PruningSuiteError | None = None

    def add(self, index: int, outcome: Submission | PruningSuiteError) -> bool:
        """Record job ``index``'s outcome; False when it failed."""
        if isinstance(outcome, PruningSuiteError):
            self.failure = self.failure or outcome
            return False
        self.results[index] = outcome
        self.on_done(index, outcome)
        return True

    def submissions(self, count: int) -> list[Submission]:
        """The ``count`` jobs' submissions in order.

        Raises:
            PruningSuiteError: The first failure recorded.
        """
        if self.failure is not None:
            raise self.failure
        return [self.results[i] for i in range(count)]


def run_job(job: Any, threads: int = 0) -> Submission | PruningSuiteError:
    """One job in a worker process: its submission, or its error (returned, not raised, so the
    parent decides what else runs). ``threads`` > 0 sets torch's intra-op threads first; a job
    on ``cuda:N`` makes GPU N this process's current device, so what a run allocates without
    naming a device (pinned host memory, for one) lands on its own GPU too."""
    import torch

    from ..run.runner import run

    if threads > 0:
        torch.set_num_threads(threads)
    if job.device and job.device.startswith("cuda:"):
        torch.cuda.set_device(job.device)
    try:
        return run(job).submission
    except PruningSuiteError as err:
        return err


def planned_path(job: Any) -> Path:
    """Where ``job`` (a ``RunConfig``) writes its submission, computed without running it.

    Raises:
        PruningSuiteError: The job cannot run (:func:`pruning_suite.run.runner.plan_run`).
    """
    from ..run.runner import plan_run

    plan = plan_run(job)
    return Path(job.out) / plan.protocol.id / plan.method.name / f"{plan.run_id}.json"


def run_study(
    arms: Sequence[Arm],
    executor: Executor | None = None,
    progress: Progress = lambda line: None,
) -> StudyResult:
    """Run every job of every arm that has no valid submission yet; gather all submissions.

    A file that exists but fails validation is run again (and replaced), with a ``redo`` line
    saying which check it failed.

    Args:
        arms: The study's arms.
        executor: Who runs the jobs (default :class:`LocalExecutor`).
        progress: Called with one line per job (skipped, started, finished).

    Returns:
        Every arm's submissions in seed order, and how many runs ran or were skipped.

    Raises:
        PruningSuiteError: Before any run: two arms with one label or one run, a job that cannot
            run (unknown plugin or target, a method at another granularity than the protocol, a
            scratch baseline with a retraining override), or a file on disk made under another
            content of the protocol. After: a run failed (its error); runs finished before it are
            kept on disk.
    """
    _check_distinct(arms)
    found, todo = _find_on_disk(arms, progress)

    started, finished = time.monotonic(), [0]

    def on_done(index: int, submission: Submission) -> None:
        a, j = todo[index]
        found[(a, j)] = submission
        finished[0] += 1
        top1 = submission.final.test_top1
        left = eta(time.monotonic() - started, finished[0], len(todo))
        progress(f"done  {arms[a].label} seed {submission.seed}: top-1 {top1:.2f} ({left})")

    for index, (a, j) in enumerate(todo):
        progress(f"queue {arms[a].label} seed {arms[a].jobs[j].seed} ({index + 1}/{len(todo)})")
    (executor or LocalExecutor()).run([arms[a].jobs[j] for a, j in todo], on_done)
    return StudyResult(
        {arm.label: [found[(a, j)] for j in range(len(arm.jobs))] for a, arm in enumerate(arms)},
        ran=len(todo),
        skipped=sum(len(arm.jobs) for arm in arms) - len(todo),
    )


def eta(elapsed: float, done: int, total: int) -> str:
    """``"3/8 runs done, about 5 min left"``: the time left at the mean wall time per finished
    run so far (runs side by side included), in seconds below 2 minutes, else minutes or hours.
    """
    if done >= total:
        return f"{done}/{total} runs done"
    seconds = elapsed / max(done, 1) * (total - done)
    if seconds < 120:
        left = f"{seconds:.0f} s"
    elif seconds < 7200:
        left = f"{seconds / 60:.0f} min"
    else:
        left = f"{seconds / 3600:.1f} h"
    return f"{done}/{total} runs done, about {left} left"


def _check_distinct(arms: Sequence[Arm]) -> None:
    """Refuse two arms with one label, or two jobs that are one run (checking every job)."""
    labels = [arm.label for arm in arms]
    if len(set(labels)) != len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise PruningSuiteError(f"two arms of the study are both {twice!r}", "give each arm once")
    paths: dict[Path, str] = {}
    for arm in arms:
        for job in arm.jobs:
            path = planned_path(job)  # checks the job as a run does, before any run
            if path in paths:
                raise PruningSuiteError(
                    f"arms {paths[path]!r} and {arm.label!r} are the same run ({path.name})",
                    "give each arm another method, recipe or seed",
                )
            paths[path] = arm.label


def _find_on_disk(
    arms: Sequence[Arm], progress: Progress
) -> tuple[dict[Slot, Submission], list[Slot]]:
    """The valid submissions already on disk, and the jobs still to run."""
    found: dict[Slot, Submission] = {}
    todo: list[Slot] = []
    for a, arm in enumerate(arms):
        for j, job in enumerate(arm.jobs):
            submission = _valid_on_disk(arm, job, progress)
            if submission is None:
                todo.append((a, j))
            else:
                found[(a, j)] = submission
    return found, todo


def _valid_on_disk(arm: Arm, job: Any, progress: Progress) -> Submission | None:
    """The job's submission when a valid file exists; None (saying why) when it must run.

    Raises:
        PruningSuiteError: The file was made under another content of the protocol.
    """
    from ..validate import check_file

    path = planned_path(job)
    if not path.is_file():
        return None
    protocol = load_protocol(job.protocol)
    result = check_file(path, [protocol])
    if result.submission is not None:
        check_same_protocol(path, result.submission.protocol.content_hash, protocol)
    if result.ok and result.submission is not None:
        progress(f"skip  {arm.label} seed {job.seed}: {path} exists")
        return result.submission
    first = next((p for p in result.problems if p.severity == "error"), None)
    why = f"{first.rule or first.where}: {first.message}" if first else "unreadable"
    progress(f"redo  {arm.label} seed {job.seed}: {path} is not valid ({why})")
    return None
