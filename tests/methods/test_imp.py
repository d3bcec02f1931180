"""Iterative magnitude pruning with rewinding (Frankle & Carbin, ICLR 2019): geometric rounds in
the suite's pruning stage, survivors rewound to the stage's start between rounds."""

from __future__ import annotations

import pytest
import torch

from pruning_suite import PruningSchedule, hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.run.runner import RunConfig, run
from pruning_suite_plugins.imp import IMP

from ._stage_kit import run_record

PROTOCOL = "digits-convnet-unstructured-s4"
# weights of conv1, conv2, fc1 kept after each round at 90%: n - ceil(n * (1 - 0.1 ** (i / 3)))
GEOMETRIC_90 = [
    {"conv1": 66, "conv2": 2138, "fc1": 15209},  # 53.6% removed
    {"conv1": 31, "conv2": 992, "fc1": 7059},  # 78.5%
    {"conv1": 14, "conv2": 460, "fc1": 3276},  # 90%
]


class _Spy(IMP):
    """IMP that records the prunable weights at the first step of every training segment."""

    name = "imp-spy"
    first: dict[int, dict[str, torch.Tensor]] = {}

    def regularize(self, ctx, model):
        if ctx.epoch not in self.first:  # no optimizer step yet in this segment
            self.first[ctx.epoch] = {
                la.name: la.module.weight.detach().clone() for la in ctx.layers
            }


class _Provider:
    @hookimpl
    def register_methods(self):
        return [_Spy]


def test_schedule_is_geometric_rounds_that_train_and_rewind() -> None:
    assert IMP().schedule() == PruningSchedule(
        rounds=3, ratio_schedule="geometric", trains=True, rewind=True
    )
    assert load_registry().method("imp", {"rounds": 5}).schedule().rounds == 5


def test_rounds_follow_the_geometric_schedule_and_rewound_weights_are_the_start_weights(
    tmp_path,
) -> None:
    _Spy.first.clear()
    registry = load_registry(extra_plugins=(_Provider(),))
    result = run(
        RunConfig(plugin="imp-spy", protocol=PROTOCOL, smoke=True, out=tmp_path, isolate=False),
        registry,
    )
    rounds = result.submission.pruning_stage.rounds
    assert [r.widths for r in rounds] == GEOMETRIC_90
    assert [r.epoch for r in rounds] == [1, 2, 2]  # a 2-epoch smoke stage: ceil(i * 2 / 3)
    start, after_round_1 = _Spy.first[0], _Spy.first[1]  # segments starting at epochs 0 and 1
    for name, kept in GEOMETRIC_90[0].items():
        survivors = after_round_1[name] != 0
        assert int(survivors.sum()) == kept
        assert torch.equal(after_round_1[name][survivors], start[name][survivors])
        assert bool((start[name] != 0).all())  # so the zeros are exactly the mask


def test_imp_runs_in_the_suites_pruning_stage(tmp_path) -> None:
    record = run_record(tmp_path, "imp", PROTOCOL)
    stage = record["pruning_stage"]
    assert (stage["epochs"], stage["lr_schedule"], len(stage["log"])) == (2, "0:0.01", 2)
    assert stage["ratio_schedule"] == "geometric"
    assert [r["widths"] for r in stage["rounds"]] == GEOMETRIC_90
    counts = ("calibration_samples", "method_grad_samples", "method_optimizer_steps")
    assert [stage[c] for c in counts] == [0, 0, 0]
    layers = record["pruning"]["layers"]
    assert [la["after"] for la in layers] == list(GEOMETRIC_90[-1].values())


@pytest.mark.slow
def test_imp_is_certified_S4_2_on_the_unstructured_s4_protocol(tmp_path) -> None:
    record = run_record(tmp_path, "imp", PROTOCOL, smoke=False)
    stage = record["pruning_stage"]
    assert [r["epoch"] for r in stage["rounds"]] == [4, 7, 10]
    assert (stage["epochs"], len(stage["log"]), stage["method_optimizer_steps"]) == (10, 10, 0)
    assert record["certification"]["setup"] == "S4.2"
