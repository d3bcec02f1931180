"""The conformance kit (pruning_suite.testing): a conforming method passes every check, and each
way of breaking the contract fails exactly its check, with one line naming the method and the fix."""

from __future__ import annotations

import copy

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from pruning_suite import MethodConfig, PruningMethod, PruningSchedule
from pruning_suite.contract.plugins import load_registry
from pruning_suite.testing import (
    MethodConformance,
    check_attributes,
    check_config,
    check_deterministic,
    check_end_to_end,
    check_hook_order,
    check_layer_ratios,
    check_method,
    check_no_mutation,
    check_schedule,
    check_scores,
    expected_events,
    tiny_context,
    tiny_model,
    trace_run,
)


class _L2Config(MethodConfig):
    power: float = Field(1.0, gt=0.0)


class _L2(PruningMethod):
    """Conforms: the L2 norm of each filter (to ``power``)."""

    name = "kit-l2"
    version = "1"
    description = "L2 norm per filter (a conforming test method)"
    Config = _L2Config

    def score(self, ctx):
        return {
            la.name: la.module.weight.detach().flatten(1).norm(dim=1) ** self.config.power
            for la in ctx.layers
        }


class _TrainingAware(_L2):
    """Conforms: an L2 penalty added to the prunable weights' gradients, two rounds."""

    name = "kit-trains"

    def schedule(self):
        return PruningSchedule(trains=True, rounds=2)

    def regularize(self, ctx, model):
        for layer in ctx.layers:
            weight = model.get_submodule(layer.name).weight
            weight.grad.add_(1e-4 * weight.detach())


class _Weights(_L2):
    name = "kit-weights"
    granularity = "weight"

    def score(self, ctx):
        return {la.name: la.module.weight.detach().abs() for la in ctx.layers}


class TestTheKitAsAnAuthorUsesIt(MethodConformance):
    method = _TrainingAware
    config = {"power": 2.0}


def test_a_conforming_method_passes_every_check_of_either_granularity() -> None:
    check_method(_L2, config={"power": 0.5})
    check_method(_Weights)


def test_the_hooks_of_a_training_aware_method_are_traced_in_the_suites_loop() -> None:
    trace = trace_run(_TrainingAware, {"power": 2.0})
    assert trace.protocol == "digits-convnet-s4"  # a method that trains gets a pruning budget
    assert trace.events == [
        ("train", 0),
        ("epoch_end", 1),
        ("score", 1, 1),
        ("train", 1),
        ("epoch_end", 2),
        ("score", 2, 2),
    ]
    assert trace.submission["pruning_stage"]["epochs"] == 2  # the smoke cut of 10
    assert trace.problems == [] and trace.invalid == []


def test_expected_events_put_round_i_after_epoch_ceil_i_e_over_rounds() -> None:
    assert expected_events(PruningSchedule(), 0) == [("score", 1, 0)]
    assert expected_events(PruningSchedule(rounds=3), 2) == [
        ("train", 0),
        ("epoch_end", 1),
        ("score", 1, 1),
        ("train", 1),
        ("epoch_end", 2),
        ("score", 2, 2),
        ("score", 3, 2),
    ]


def _fails(check, method, match: str, **kw) -> None:
    with pytest.raises(AssertionError, match=match) as caught:
        check(method, **kw)
    text = str(caught.value)
    assert "\n" not in text and "; fix: " in text
    assert text.startswith((f"method {getattr(method, 'name', '')!r}", "method class"))


def _variant(name: str, base: type = _L2, **attrs) -> type:
    return type(name, (base,), {"name": name.lower().replace("_", "-"), **attrs})


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"name": "Kit_Bad"}, "name is 'Kit_Bad'"),
        ({"version": 1}, "version is 1"),
        ({"version": ""}, "version is ''"),
        ({"granularity": "channel"}, "granularity is 'channel'"),
        ({"description": ""}, "description is empty"),
        ({"description": "two\nlines"}, "over 2 lines"),
        ({"description": "x" * 121}, "121 characters"),
    ],
)
def test_malformed_class_attributes_fail(attrs: dict, match: str) -> None:
    _fails(check_attributes, type("Bad", (_L2,), attrs), match)


def test_an_abstract_class_fails() -> None:
    abstract = type("Abstract", (PruningMethod,), {"name": "abstract", "version": "1"})
    _fails(check_attributes, abstract, r"leaves \['score'\] abstract")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _BadDefault(MethodConfig):
    batches: int = Field(0, ge=1)


class _NotFrozen(MethodConfig):
    model_config = ConfigDict(frozen=False, extra="forbid")


@pytest.mark.parametrize(
    ("config_model", "match"),
    [
        (_Loose, "Config is <class"),
        (_NotFrozen, r"model_config is .*fix: do not override model_config"),
        (
            _BadDefault,
            "the default of batches is invalid: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_configs_fail(config_model: type, match: str) -> None:
    _fails(check_config, _variant("Kit_Config", Config=config_model), match)


def test_a_config_the_method_refuses_fails() -> None:
    _fails(check_config, _L2, r"the config \{'power': -1\} is refused: power", config={"power": -1})


@pytest.mark.parametrize(
    ("score", "match"),
    [
        (lambda self, ctx: [1.0], "score\\(\\) returned list"),
        (
            lambda self, ctx: {ctx.layers[0].name: torch.ones(4)},
            r"returned layers \['conv1'\], the prunable layers are \['conv1', 'conv2', 'fc1'\]",
        ),
        (
            lambda self, ctx: {la.name: la.module.weight.detach() for la in ctx.layers},
            r"scores for 'conv1' have shape \[4, 1, 3, 3\], filter granularity needs \[4\]",
        ),
        (
            lambda self, ctx: {
                la.name: torch.full((la.num_units,), float("nan")) for la in ctx.layers
            },
            "scores for 'conv1' are not all finite",
        ),
        (
            lambda self, ctx: {la.name: torch.arange(la.num_units) for la in ctx.layers},
            "scores for 'conv1' are torch.int64",
        ),
        (lambda self, ctx: 1 / 0, "score\\(\\) raised ZeroDivisionError"),
    ],
)
def test_malformed_scores_fail(score, match: str) -> None:
    _fails(check_scores, _variant("Kit_Scores", score=score), match)


def test_weight_granularity_needs_the_weights_shape() -> None:
    method = _variant("Kit_Weight_Shape", granularity="weight")  # scores per filter
    _fails(
        check_scores, method, r"'conv1' have shape \[4\], weight granularity needs \[4, 1, 3, 3\]"
    )


def test_the_global_rng_is_not_deterministic() -> None:
    def score(self, ctx):
        return {la.name: torch.rand(la.num_units) for la in ctx.layers}

    _fails(
        check_deterministic,
        _variant("Kit_Global_Rng", score=score),
        "seed 7 differ for layer 'conv1'",
    )


def test_the_seeded_generator_is_deterministic() -> None:
    def score(self, ctx):
        return {la.name: torch.rand(la.num_units, generator=ctx.generator) for la in ctx.layers}

    check_deterministic(_variant("Kit_Seeded", score=score))


def _updates_batchnorm(self, ctx):
    ctx.model.train()(torch.randn(4, 1, 8, 8))  # a train-mode forward moves the running stats
    ctx.model.eval()
    return _L2.score(self, ctx)


def _leaves_grads(self, ctx):
    ctx.model.fc(torch.randn(2, 8)).sum().backward()
    return _L2.score(self, ctx)


def _on_a_copy(self, ctx):
    model = copy.deepcopy(ctx.model).train()
    model(torch.randn(4, 1, 8, 8))
    return _L2.score(self, ctx)


@pytest.mark.parametrize(
    ("score", "match"),
    [
        (_updates_batchnorm, "score\\(\\) modified the model it was given.*copy.deepcopy"),
        (_leaves_grads, "score\\(\\) left gradients"),
    ],
)
def test_mutating_the_model_fails(score, match: str) -> None:
    _fails(check_no_mutation, _variant("Kit_Mutates", score=score), match)


def test_working_on_a_copy_passes() -> None:
    check_no_mutation(_variant("Kit_Copy", score=_on_a_copy))


@pytest.mark.parametrize(
    ("layer_ratios", "rounds", "match"),
    [
        (lambda self, ctx: {"conv1": 1.0}, 1, "gives 'conv1' the ratio 1.0"),
        (lambda self, ctx: {"conv1": True}, 1, "gives 'conv1' the ratio True"),
        (lambda self, ctx: {"fc": 0.5}, 1, r"names \['fc'\], not prunable layers"),
        (lambda self, ctx: 0.5, 1, "layer_ratios\\(\\) returned float"),
        (
            lambda self, ctx: {"conv1": 0.6 if ctx.round_index == 1 else 0.3},
            2,
            "lowers 'conv1' from 0.6 to 0.3 in round 2",
        ),
    ],
)
def test_malformed_layer_ratios_fail(layer_ratios, rounds: int, match: str) -> None:
    schedule = lambda self: PruningSchedule(rounds=rounds)  # noqa: E731
    method = _variant("Kit_Ratios", layer_ratios=layer_ratios, schedule=schedule)
    _fails(check_layer_ratios, method, match)


@pytest.mark.parametrize(
    ("attrs", "match"),
    [
        ({"schedule": lambda self: {"rounds": 2}}, "schedule\\(\\) returned dict"),
        ({"allocation": lambda self: "global"}, "allocation\\(\\) returned str"),
        (
            {"schedule": lambda self: PruningSchedule(rounds=2, rewind=True)},
            "rewinds weights at filter",
        ),
    ],
)
def test_malformed_schedules_fail(attrs: dict, match: str) -> None:
    _fails(check_schedule, _variant("Kit_Schedule", **attrs), match)


def test_a_regularizer_that_makes_gradients_nan_fails_the_hook_check() -> None:
    def regularize(self, ctx, model):
        next(model.parameters()).grad.fill_(float("nan"))

    method = _variant("Kit_Nan", _TrainingAware, regularize=regularize)
    _fails(
        check_hook_order,
        method,
        "regularize\\(\\) left a non-finite gradient in epoch 0.*lower the penalty",
    )
    _fails(
        check_end_to_end,
        method,
        "the smoke run on digits-convnet-s4 failed: pruning stage of 'kit-nan'",
    )


def test_an_epoch_end_hook_that_changes_the_model_fails() -> None:
    def on_pruning_epoch_end(self, ctx, model):
        model.register_forward_hook(lambda *args: None)

    method = _variant("Kit_Epoch_End", _TrainingAware, on_pruning_epoch_end=on_pruning_epoch_end)
    _fails(check_hook_order, method, "on_pruning_epoch_end\\(\\) modified the model after epoch 1")


def test_a_run_the_suite_refuses_fails_end_to_end_with_its_hint() -> None:
    _fails(
        check_end_to_end,
        _TrainingAware,
        "gives no pruning budget .*hint: run it under a protocol with a pruning budget",
        protocol="digits-convnet",
    )


def test_the_tiny_context_is_the_suites_counted_seeded_channel() -> None:
    ctx = tiny_context(tiny_model(), seed=3)
    assert [(la.name, la.num_units) for la in ctx.layers] == [
        ("conv1", 4),
        ("conv2", 6),
        ("fc1", 8),
    ]
    first = [inputs for inputs, _ in ctx.calibration_batches(10)]
    again = [inputs for inputs, _ in ctx.calibration_batches(2)]
    assert [len(b) for b in first] == [10, 10, 10, 10] and ctx.calibration_batches.samples == 60
    assert torch.equal(first[1], again[1])  # each call starts the same seeded order over


_METHODS = sorted(load_registry().methods)


@pytest.mark.parametrize("name", _METHODS)
def test_every_installed_method_passes_the_checks_without_a_run(name: str) -> None:
    check_method(load_registry().methods[name].cls, end_to_end=False)


@pytest.mark.parametrize("name", _METHODS)
def test_every_installed_method_passes_the_checks_with_a_run(name: str) -> None:
    check_method(load_registry().methods[name].cls)
