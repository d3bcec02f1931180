"""Executors that hand a study's runs to a distributed engine (the :class:`~.executor.Executor`
seam): :class:`SubmititExecutor`, one submitit job per run, on SLURM or as local processes;
:class:`RayExecutor`, one Ray task per run, on a Ray cluster or a local one.

A run is the same :class:`~pruning_suite.run.config.RunConfig` whichever executor runs it, so its
run id, file and bits do not depend on where it ran; the executor only decides where and how many
at a time. Runs already on disk are skipped before any executor sees them
(:func:`~.executor.run_study`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PruningSuiteError
from .executor import Gathered, run_job

if TYPE_CHECKING:
    from ..record.submission import Submission

__all__ = ["ENGINES", "RayExecutor", "SubmititExecutor", "engine_parameters"]

ENGINES = ("local", "submitit", "ray")
"""The ``study --executor`` choices."""

_POLL_S = 1.0
"""How often the submitit executor looks for finished jobs, seconds."""


class SubmititExecutor:
    """Runs each job as one submitit job (https://github.com/facebookincubator/submitit).

    ``cluster=None`` lets submitit pick: SLURM where ``sbatch`` exists, else local processes
    (every job at once: give a small CPU ``--jobs 1`` with the local executor instead);
    ``"debug"`` runs the jobs one after the other in this process (for testing a setup).
    Results come back in job order; ``on_done`` is called as each finishes. A failed run's error
    is raised once the jobs already submitted have finished (their files are kept); a job that
    the engine loses (preempted, out of time) is an error naming its log folder.

    Args:
        folder: Where submitit keeps its job scripts and logs (``%j`` is the job id).
        cluster: ``None`` (auto), ``"slurm"``, ``"local"`` or ``"debug"``.
        parameters: Passed to ``AutoExecutor.update_parameters`` (``timeout_min``,
            ``slurm_partition``, ``gpus_per_node``, ``cpus_per_task``...).

    Raises:
        PluginError: submitit is not installed (``pip install submitit``).
    """

    def __init__(
        self,
        folder: Path,
        cluster: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            import submitit
        except ImportError as err:
            raise PruningSuiteError(
                "study --executor submitit needs the submitit package",
                "pip install submitit (or use --executor local)",
            ) from err
        self._submitit = submitit
        self.folder, self.cluster = Path(folder), cluster
        self.parameters = dict(parameters or {})

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        """Submit every job, then gather them as they finish; see the class docstring."""
        executor = self._submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        try:
            executor.update_parameters(**self.parameters)
        except (TypeError, ValueError, NameError) as err:  # submitit: NameError for a bad name
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise PruningSuiteError(
                f"submitit does not take these --executor-param values: {first}",
                "see submitit's AutoExecutor.update_parameters for its parameter names",
            ) from err
        threads = int(self.parameters.get("cpus_per_task", 0)) or 0
        submitted = [executor.submit(run_job, job, threads) for job in jobs]
        return self._gather(submitted, on_done)

    def _gather(
        self, submitted: Sequence[Any], on_done: Callable[[int, Submission], None]
    ) -> list[Submission]:
        gathered = Gathered(on_done)
        pending = dict(enumerate(submitted))
        while pending:
            finished = [i for i, job in pending.items() if job.done()]
            if not finished:
                time.sleep(_POLL_S)
            for index in finished:
                gathered.add(index, self._outcome(pending.pop(index)))
        return gathered.submissions(len(submitted))

    def _outcome(self, job: Any) -> Submission | PruningSuiteError:
        try:
            return job.result()
        except Exception as err:  # the engine lost the job: preempted, timed out, killed
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            return PruningSuiteError(
                f"submitit job {job.job_id} did not finish: {first[:300]}",
                f"its logs are in {self.folder / str(job.job_id)}; run the study again to "
                "resume (finished runs are skipped)",
            )


class RayExecutor:
    """Runs each job as one Ray task (https://docs.ray.io), ``num_cpus`` CPUs and ``num_gpus``
    GPUs each, as many at a time as the cluster has room for.

    Connects to ``address`` (``"auto"``: the cluster this machine belongs to) or, with None,
    starts a local Ray instance for the study and shuts it down afterwards. Results come back in
    job order; ``on_done`` is called as each finishes; a failed run's error is raised once the
    submitted runs have finished (their files are kept).

    Args:
        address: A Ray cluster address, or None for a local instance.
        num_cpus: CPUs per run (also its torch threads).
        num_gpus: GPUs per run (a fraction packs several runs on one GPU).

    Raises:
        PruningSuiteError: Ray is not installed (``pip install ray``).
    """

    def __init__(self, address: str | None = None, num_cpus: int = 1, num_gpus: float = 0) -> None:
        try:
            import ray
        except ImportError as err:
            raise PruningSuiteError(
                "study --executor ray needs the ray package",
                "pip install ray (or use --executor local)",
            ) from err
        self._ray = ray
        self.address, self.num_cpus, self.num_gpus = address, int(num_cpus), float(num_gpus)

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        """Submit every job as a task, then gather them as they finish."""
        ray = self._ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        try:
            task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus)(run_job)
            refs = {task.remote(job, self.num_cpus): i for i, job in enumerate(jobs)}
            gathered = Gathered(on_done)
            while refs:
                (ready,), _ = ray.wait(list(refs), num_returns=1)
                gathered.add(refs.pop(ready), ray.get(ready))
        finally:
            if started:
                ray.shutdown()
        return gathered.submissions(len(jobs))


def engine_parameters(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; values are JSON where they parse (``4``, ``true``),
    else strings (``slurm_partition=gpu``).

    Raises:
        PruningSuiteError: A pair without ``=`` or with an empty key.
    """
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PruningSuiteError(
                f"--executor-param {pair!r} is not KEY=VALUE",
                "e.g. --executor-param timeout_min=60 --executor-param slurm_partition=gpu",
            )
        try:
            parameters[key.strip()] = json.loads(value)
        except ValueError:
            parameters[key.strip()] = value
    return parameters
