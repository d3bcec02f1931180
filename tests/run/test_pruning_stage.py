"""The suite-owned pruning stage: counted data and compute, training hooks, prune rounds.

Issue 12: a plugin that trained 300 SGD steps inside ``score()`` was certified S4.2 with a
0-epoch pruning stage. Here it is not, and a method that trains in the suite's loop is.
"""

from __future__ import annotations

import json

import pytest
import torch

from pruning_suite import PruningMethod, PruningSchedule, hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError, TrainingError
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file
from tests.helpers import CallLog, l1_scores


class _TrainsInScore(PruningMethod):
    """Network-slimming style, cheating: 300 SGD steps on training data inside score()."""

    name = "trains-in-score"
    version = "1"

    def score(self, ctx):
        import copy

        model = copy.deepcopy(ctx.model).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        steps = 0
        while steps < 300:
            for inputs, labels in ctx.calibration_batches(100):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(inputs), labels).backward()
                optimizer.step()
                steps += 1
                if steps == 300:
                    break
        ctx.model.load_state_dict(ctx.model.state_dict())  # no change to the model given
        return l1_scores(ctx)


class _Slimming(PruningMethod):
    """L1 on BatchNorm scales in the suite's loop; prune by the conv weights' L1 at the end."""

    name = "toy-slimming"
    version = "1"
    calls = CallLog("toy-slimming")

    def schedule(self):
        return PruningSchedule(trains=True)

    def regularize(self, ctx, model):
        type(self).calls.append("regularize", ctx.epoch)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d) and module.weight.grad is not None:
                module.weight.grad.add_(1e-4 * torch.sign(module.weight.detach()))

    def on_pruning_epoch_end(self, ctx, model):
        type(self).calls.append("epoch_end", ctx.epoch)

    def score(self, ctx):
        type(self).calls.append("score", ctx.epoch)
        return l1_scores(ctx)


class _Iterative(PruningMethod):
    name = "toy-iterative"
    version = "1"

    def schedule(self):
        return PruningSchedule(rounds=3, ratio_schedule="geometric")

    def score(self, ctx):
        return l1_scores(ctx)


class _Shrinking(PruningMethod):
    """Asks for 90% (45% after round 1 of 2), then 30% at the end: round 1 removed too much."""

    name = "shrinking"
    version = "1"

    def schedule(self):
        return PruningSchedule(rounds=2)

    def layer_ratios(self, ctx):
        return {name: 0.9 if ctx.round_index == 1 else 0.3 for name in ctx.ratios}

    def score(self, ctx):
        return l1_scores(ctx)


class _WritesWeights(_Slimming):
    name = "writes-weights"

    def regularize(self, ctx, model):
        with torch.no_grad():
            next(model.parameters()).mul_(0.5)


class _Explodes(_Slimming):
    name = "explodes"

    def regularize(self, ctx, model):
        for param in model.parameters():
            if param.grad is not None:
                param.grad.fill_(float("nan"))


class _Provider:
    @hookimpl
    def register_methods(self):
        return [_TrainsInScore, _Slimming, _Iterative, _WritesWeights, _Explodes, _Shrinking]


@pytest.fixture(scope="module")
def registry():
    return load_registry(extra_plugins=(_Provider(),))


def _record(result) -> dict:
    return json.loads(result.path.read_text())


def test_training_inside_score_is_counted_and_not_certified_S4(tmp_path, registry) -> None:
    result = run(RunConfig(plugin="trains-in-score", out=tmp_path), registry)
    stage = _record(result)["pruning_stage"]
    assert stage["method_optimizer_steps"] == 300
    train_examples = 1797 - 360 - 180  # 13 calibration batches per pass: 12 of 100, one of 57
    passes, extra = divmod(300, 13)
    assert stage["method_grad_samples"] == passes * train_examples + extra * 100 == 29011
    assert stage["calibration_samples"] == 29011
    assert stage["epochs"] == 0
    certification = _record(result)["certification"]
    assert certification["setup"] == "S3.2"  # met everything up to S3.2, not S4.1
    assert any("R-STAGE-3" in line or "optimizer steps" in line for line in certification["unmet"])


def test_a_fair_one_shot_method_is_certified_S4_2(tmp_path) -> None:
    result = run(RunConfig(plugin="l1norm", out=tmp_path))
    record = _record(result)
    assert record["certification"]["setup"] == "S4.2"
    stage = record["pruning_stage"]
    assert (stage["method_optimizer_steps"], stage["method_grad_samples"]) == (0, 0)
    assert stage["rounds"][0]["widths"] == {"conv1": 8, "conv2": 16, "fc1": 32}


def test_training_aware_method_trains_in_the_suites_loop(tmp_path, registry, monkeypatch) -> None:
    _Slimming.calls.start(monkeypatch, tmp_path)
    result = run(
        RunConfig(plugin="toy-slimming", protocol="digits-convnet-s4", out=tmp_path), registry
    )
    record = _record(result)
    stage = record["pruning_stage"]
    assert stage["epochs"] == 10 and stage["lr_schedule"] == "0:0.01"
    assert len(stage["log"]) == 10
    train_examples = 1797 - 360 - 180
    assert stage["training_samples"] == 10 * train_examples
    assert [r["epoch"] for r in stage["rounds"]] == [10]  # one-shot: pruned at the end
    assert record["certification"]["setup"] == "S4.2"
    assert validate_file(result.path) == []
    # hooks in order: every step's regularize within its epoch, epoch end after it, score last
    steps_per_epoch = -(-train_examples // 64)
    kinds = [kind for kind, _ in _Slimming.calls.rows()]
    assert kinds.count("regularize") == 10 * steps_per_epoch
    assert [e for k, e in _Slimming.calls.rows() if k == "epoch_end"] == list(range(1, 11))
    assert kinds[-1] == "score" and kinds.count("score") == 1
    first_end = kinds.index("epoch_end")
    assert kinds[:first_end] == ["regularize"] * steps_per_epoch


def test_training_aware_method_refused_without_a_pruning_budget(tmp_path, registry) -> None:
    with pytest.raises(PluginError, match="gives no pruning budget"):
        run(RunConfig(plugin="toy-slimming", smoke=True, out=tmp_path), registry)
    assert not list(tmp_path.rglob("*.json"))


def test_iterative_schedule_records_and_lands_on_the_target(tmp_path, registry) -> None:
    result = run(
        RunConfig(plugin="toy-iterative", target="uniform-70", smoke=True, out=tmp_path), registry
    )
    rounds = _record(result)["pruning_stage"]["rounds"]
    # geometric cumulative ratios 1 - 0.3 ** (i / 3) of 16 / 32 / 64 units under the count rule
    assert [r["widths"] for r in rounds] == [
        {"conv1": 10, "conv2": 21, "fc1": 42},
        {"conv1": 7, "conv2": 14, "fc1": 28},
        {"conv1": 4, "conv2": 9, "fc1": 19},
    ]
    assert [r["params"] for r in rounds] == sorted((r["params"] for r in rounds), reverse=True)
    layers = _record(result)["pruning"]["layers"]
    assert [(la["before"], la["after"]) for la in layers] == [(16, 4), (32, 9), (64, 19)]


def test_a_schedule_that_overshoots_is_refused_naming_the_layer(tmp_path, registry) -> None:
    with pytest.raises(PluginError, match=r"round 2 asks layer 'conv1' to keep 11 of 16 units"):
        run(RunConfig(plugin="shrinking", smoke=True, out=tmp_path), registry)
    assert not list(tmp_path.rglob("*.json"))


def test_regularizer_that_writes_weights_is_refused(tmp_path, registry) -> None:
    with pytest.raises(PluginError, match="changed parameter or buffer values in regularize"):
        run(
            RunConfig(
                plugin="writes-weights", protocol="digits-convnet-s4", smoke=True, out=tmp_path
            ),
            registry,
        )
    assert not list(tmp_path.rglob("*.json"))


def test_regularizer_that_makes_the_loss_nan_names_the_method(tmp_path, registry) -> None:
    with pytest.raises(TrainingError, match="pruning stage of 'explodes'"):
        run(
            RunConfig(plugin="explodes", protocol="digits-convnet-s4", smoke=True, out=tmp_path),
            registry,
        )
    assert not list(tmp_path.rglob("*.json"))


def test_schedule_rounds_and_ratios() -> None:
    schedule = PruningSchedule(rounds=4, ratio_schedule="geometric")
    assert schedule.round_epochs(10) == [3, 5, 8, 10]
    assert schedule.round_epochs(0) == [0, 0, 0, 0]
    assert schedule.cumulative_ratio(0.75, 2) == pytest.approx(0.5)
    assert schedule.cumulative_ratio(0.75, 4) == 0.75
    assert PruningSchedule(rounds=4).cumulative_ratio(0.8, 1) == pytest.approx(0.2)


class _CountsSteps(_Slimming):
    name = "counts-steps"
    seen = CallLog("counts-steps")

    def regularize(self, ctx, model):
        type(self).seen.append(ctx.step, ctx.stage_epochs, tuple(ctx.example.shape))


class _TouchesStats(_Slimming):
    name = "touches-stats"

    def regularize(self, ctx, model):
        model(ctx.example)  # train mode: moves the BatchNorm running statistics


def test_regularize_sees_the_step_the_stage_length_and_an_example(tmp_path, monkeypatch) -> None:
    registry = load_registry(extra_plugins=(_StepProvider(),))
    _CountsSteps.seen.start(monkeypatch, tmp_path)
    run(
        RunConfig(plugin="counts-steps", protocol="digits-convnet-s4", smoke=True, out=tmp_path),
        registry,
    )
    steps = [s for s, _, _ in _CountsSteps.seen.rows()]
    assert (
        steps == list(range(len(steps))) and len(steps) == 2 * 20
    )  # smoke: 2 epochs of 20 batches
    assert {(e, shape) for _, e, shape in _CountsSteps.seen.rows()} == {(2, (2, 1, 8, 8))}


def test_a_regularizer_that_moves_batchnorm_statistics_is_refused(tmp_path) -> None:
    registry = load_registry(extra_plugins=(_StepProvider(),))
    with pytest.raises(PluginError, match="buffer values in regularize"):
        run(
            RunConfig(
                plugin="touches-stats", protocol="digits-convnet-s4", smoke=True, out=tmp_path
            ),
            registry,
        )


class _StepProvider:
    @hookimpl
    def register_methods(self):
        return [_CountsSteps, _TouchesStats]


class _GlobalL1(PruningMethod):
    name = "global-l1"
    version = "1"

    def allocation(self):
        from pruning_suite import Allocation

        return Allocation(scope="global", normalizer="mean")

    def score(self, ctx):
        return l1_scores(ctx)


class _BudgetProvider:
    @hookimpl
    def register_methods(self):
        return [_GlobalL1]


@pytest.mark.parametrize("plugin", ["l1norm", "global-l1"])
def test_a_budget_target_runs_end_to_end_and_reaches_its_speedup(plugin, tmp_path) -> None:
    """A target that fixes only a MACs speedup (digits-convnet-budget, macs-2x): the layer-wise
    method prunes at the uniform ratio that first reaches 2x, the global one at the smallest
    global total that does; both are certified."""
    registry = load_registry(extra_plugins=(_BudgetProvider(),))
    config = RunConfig(
        plugin=plugin, protocol="digits-convnet-budget", target="macs-2x", out=tmp_path
    )
    record = _record(run(config, registry))
    assert record["pruning"]["speedup"] >= 2.0
    assert record["certification"]["setup"] == "S4.2"
    widths = record["pruning_stage"]["rounds"][0]["widths"]
    if (
        plugin == "l1norm"
    ):  # the uniform breakpoint 19/64 of every layer's units, under the count rule
        assert widths == {"conv1": 11, "conv2": 22, "fc1": 45}
        assert set(record["target"]["layer_ratios"].values()) == {19 / 64}
    else:
        assert widths != {"conv1": 11, "conv2": 22, "fc1": 45}


class _KwargsSGD(PruningMethod):
    """Trains inside score() calling the model with a keyword (``model(x=inputs)``)."""

    name = "kwargs-sgd"
    version = "1"

    def score(self, ctx):
        import copy

        model = copy.deepcopy(ctx.model).train()
        for inputs, labels in ctx.calibration_batches(3):
            grads = torch.autograd.grad(
                torch.nn.functional.cross_entropy(model(x=inputs), labels),
                list(model.parameters()),
            )
            with torch.no_grad():
                for param, grad in zip(model.parameters(), grads, strict=True):
                    param.sub_(0.01 * grad)
        return l1_scores(ctx)


class _WritesData(_Slimming):
    name = "writes-data"

    def regularize(self, ctx, model):
        next(model.parameters()).data.mul_(0.5)  # bumps no version counter of the parameter


class _TrainsAtEpochEnd(_Slimming):
    name = "trains-at-epoch-end"

    def on_pruning_epoch_end(self, ctx, model):
        with torch.no_grad():
            next(model.parameters()).add_(0.01)


class _HugeSchedule(_Iterative):
    name = "huge-schedule"

    def schedule(self):
        return PruningSchedule.model_construct(
            rounds=10**7, ratio_schedule="linear", trains=False, rewind=False
        )


class _HardeningProvider:
    @hookimpl
    def register_methods(self):
        return [_KwargsSGD, _WritesData, _TrainsAtEpochEnd, _HugeSchedule]


@pytest.fixture(scope="module")
def hardening():
    return load_registry(extra_plugins=(_HardeningProvider(),))


def test_a_model_called_with_keywords_is_metered(tmp_path, hardening) -> None:
    stage = _record(run(RunConfig(plugin="kwargs-sgd", smoke=True, out=tmp_path), hardening))[
        "pruning_stage"
    ]
    assert stage["method_grad_samples"] == stage["calibration_samples"] == 300


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ("writes-data", "changed parameter or buffer values in regularize"),
        ("trains-at-epoch-end", "changed the model in on_pruning_epoch_end"),
        ("huge-schedule", "returned an invalid PruningSchedule"),
    ],
)
def test_hooks_that_change_the_model_or_skip_validation_are_refused(
    plugin, message, tmp_path, hardening
) -> None:
    config = RunConfig(plugin=plugin, protocol="digits-convnet-s4", smoke=True, out=tmp_path)
    with pytest.raises(PluginError, match=message):
        run(config, hardening)
    assert not list(tmp_path.rglob("*.json"))
