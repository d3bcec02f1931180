"""Same seed, same bits, whatever the thread count the process starts with (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from pruning_suite.errors import PruningSuiteError
from pruning_suite.run.config import CPU_THREADS, CPU_THREADS_ENV, cpu_threads

_RUN = """
import json, sys, torch
from pruning_suite.run.runner import RunConfig, run
result = run(RunConfig(plugin="l1norm", smoke=True, out=sys.argv[1], device="cpu"))
print(json.dumps({"threads_after": torch.get_num_threads(), **result.submission.model_dump(mode="json")}))
"""


def _run_with(omp_threads: str, out, cache) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": omp_threads, "PRUNING_SUITE_CACHE": str(cache)}
    env.pop(CPU_THREADS_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(out)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_omp_threads_1_and_2_give_the_same_bits(tmp_path) -> None:
    one = _run_with("1", tmp_path / "a", tmp_path / "cache1")
    two = _run_with("2", tmp_path / "b", tmp_path / "cache2")  # each trains its own base model
    assert one["environment"]["num_threads"] == two["environment"]["num_threads"] == CPU_THREADS
    assert one["threads_after"] == 1 and two["threads_after"] == 2  # restored after the run
    for key in ("base_model", "retraining", "final", "evidence", "pruning"):
        assert one[key] == two[key], key


def test_cpu_threads_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(CPU_THREADS_ENV, raising=False)
    assert cpu_threads() == CPU_THREADS == 2
    monkeypatch.setenv(CPU_THREADS_ENV, "4")
    assert cpu_threads() == 4
    for bad in ("0", "x", "1000", "\u00b2", "\u0663", "9" * 5000):  # superscript 2, Arabic 3
        monkeypatch.setenv(CPU_THREADS_ENV, bad)
        with pytest.raises(PruningSuiteError, match=CPU_THREADS_ENV):
            cpu_threads()
    assert torch.get_num_threads() >= 1
