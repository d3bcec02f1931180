"""Measured latency of the dense and the pruned model (engine.latency), recorded in a submission
per device and batch size, never compared by audit (a machine's property, not the run's)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from pruning_suite.engine.latency import (
    LatencySettings,
    cpu_name,
    latency_devices,
    measure_latency,
)
from pruning_suite.run.audit import compare_runs


class Sleeper(nn.Module):
    """A model whose forward pass takes a known time: ``seconds`` of sleep."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return self.fc(x)


FAST = LatencySettings(warmup=1, repeats=3, block_seconds=0.0, max_number=1)


def test_median_latency_of_a_known_forward_time() -> None:
    dense, pruned = Sleeper(0.04), Sleeper(0.01)  # 40 ms and 10 ms a forward pass: 4x
    results = measure_latency(dense, pruned, (4,), [torch.device("cpu")], FAST)
    assert [(r.device, r.batch_size, r.repeats, r.warmup) for r in results] == [
        ("cpu", 1, 3, 1),
        ("cpu", 64, 3, 1),
    ]
    for r in results:
        assert r.dense_seconds >= 0.04 and r.pruned_seconds >= 0.01  # sleep is never short
        assert r.speedup == r.dense_seconds / r.pruned_seconds
        assert r.speedup > 2  # 4x, less whatever a loaded machine adds to both
        assert r.device_name == cpu_name() and r.num_threads == torch.get_num_threads()


def test_the_models_are_left_as_they_were() -> None:
    dense, pruned = Sleeper(0.0), Sleeper(0.0)
    dense.train()
    pruned.eval()
    measure_latency(dense, pruned, (4,), [torch.device("cpu")], FAST)
    assert dense.training is True and pruned.training is False  # copies were timed


def test_cpu_always_and_the_gpu_when_the_run_has_one() -> None:
    assert latency_devices(torch.device("cpu")) == [torch.device("cpu")]
    assert latency_devices(torch.device("cuda", 0)) == [
        torch.device("cpu"),
        torch.device("cuda", 0),
    ]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_latency_names_the_gpu() -> None:
    dense, pruned = nn.Linear(256, 256), nn.Linear(256, 64)
    (cpu_1, cpu_64, gpu_1, gpu_64) = measure_latency(
        dense, pruned, (256,), latency_devices(torch.device("cuda", 0)), FAST
    )
    assert (gpu_1.device, gpu_64.batch_size) == ("cuda", 64)
    assert gpu_1.device_name == torch.cuda.get_device_name(0)
    assert cpu_1.device == cpu_64.device == "cpu"


def test_a_run_records_latency_beside_mac_speedup(default_runs) -> None:
    sub = default_runs["l1norm"].submission
    assert sub.latency is not None
    assert [(m.device, m.batch_size) for m in sub.latency] == [("cpu", 1), ("cpu", 64)]
    for m in sub.latency:
        assert m.speedup == pytest.approx(m.dense_ms / m.pruned_ms)
        assert m.pruned_throughput == pytest.approx(m.batch_size / (m.pruned_ms / 1000))
        assert (m.warmup, m.repeats) == (3, 7)
    assert sub.pruning.speedup == pytest.approx(337_536 / 86_848)  # MACs: not the measured one


def test_audit_does_not_compare_latency(default_runs) -> None:
    recorded = default_runs["l1norm"].submission.model_dump(mode="json")
    rerun = {**recorded, "latency": [{**recorded["latency"][0], "dense_ms": 123.0}]}
    assert compare_runs(recorded, rerun) == []
