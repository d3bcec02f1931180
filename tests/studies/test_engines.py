"""A study's runs handed to submitit (issue 13): the same files, in job order, whatever runs
them; engine parameters from the command line; a run's error comes back as the suite's error."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pruning_suite.errors import PluginError, PruningSuiteError
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.studies.engines import SubmititExecutor, engine_parameters
from pruning_suite.studies.executor import planned_path
from pruning_suite.validate import check_file

pytest.importorskip("submitit")


def test_engine_parameters_are_json_where_they_parse() -> None:
    pairs = ["timeout_min=60", "slurm_partition=gpu", "gpus_per_node=1", "exclusive=true"]
    assert engine_parameters(pairs) == {
        "timeout_min": 60,
        "slurm_partition": "gpu",
        "gpus_per_node": 1,
        "exclusive": True,
    }
    with pytest.raises(PruningSuiteError, match="is not KEY=VALUE"):
        engine_parameters(["timeout_min"])


def test_submitit_runs_give_the_files_a_local_run_gives(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path / "out", smoke=True)
    jobs = [replace(base, seed=0), replace(base, seed=1)]
    finished: list[int] = []
    executor = SubmititExecutor(tmp_path / "submitit", cluster="debug")
    subs = executor.run(jobs, lambda index, _: finished.append(index))
    assert [s.seed for s in subs] == [0, 1] and sorted(finished) == [0, 1]
    for job, sub in zip(jobs, subs, strict=True):
        assert planned_path(job).stem == sub.run_id and check_file(planned_path(job)).ok
    here = run(replace(jobs[0], out=tmp_path / "here"))
    assert here.submission.evidence == subs[0].evidence  # same run, same bits


def test_a_run_that_fails_under_submitit_raises_the_suites_error(tmp_path) -> None:
    base = RunConfig(plugin="l1norm", out=tmp_path / "out", smoke=True)
    executor = SubmititExecutor(tmp_path / "submitit", cluster="debug")
    with pytest.raises(PluginError, match="unknown plugin 'l1nrom'"):
        executor.run([replace(base, plugin="l1nrom")], lambda *_: None)


def test_unknown_submitit_parameters_are_a_clear_error(tmp_path) -> None:
    executor = SubmititExecutor(tmp_path / "submitit", "debug", {"no_such_parameter": 1})
    with pytest.raises(PruningSuiteError, match="does not take these --executor-param"):
        executor.run([RunConfig(plugin="l1norm", smoke=True, out=tmp_path)], lambda *_: None)


@pytest.mark.slow
def test_submitits_local_processes_run_a_study_job(tmp_path) -> None:
    job = RunConfig(plugin="l1norm", out=tmp_path / "out", smoke=True)
    executor = SubmititExecutor(tmp_path / "submitit", "local", {"timeout_min": 10})
    (sub,) = executor.run([job], lambda *_: None)
    assert check_file(planned_path(job)).ok and sub.run_id == planned_path(job).stem


@pytest.mark.slow
def test_ray_tasks_give_the_files_a_local_run_gives(tmp_path) -> None:
    pytest.importorskip("ray")
    from pruning_suite.studies.engines import RayExecutor

    base = RunConfig(plugin="l1norm", out=tmp_path / "out", smoke=True)
    jobs = [replace(base, seed=0), replace(base, plugin="l1nrom", seed=1)]
    with pytest.raises(PluginError, match="unknown plugin 'l1nrom'"):
        RayExecutor(num_cpus=1).run(jobs, lambda *_: None)
    assert check_file(planned_path(jobs[0])).ok  # the good run finished and kept its file
    (sub,) = RayExecutor(num_cpus=1).run(jobs[:1], lambda *_: None)
    assert sub.evidence == run(replace(jobs[0], out=tmp_path / "here")).submission.evidence


def test_a_study_says_how_long_is_left_from_the_runs_done() -> None:
    from pruning_suite.studies.executor import eta

    assert eta(50.0, 1, 3) == "1/3 runs done, about 100 s left"
    assert eta(600.0, 2, 10) == "2/10 runs done, about 40 min left"
    assert eta(3600.0, 1, 4) == "1/4 runs done, about 3.0 h left"
    assert eta(5.0, 4, 4) == "4/4 runs done"
