"""The conformance checks that need no run: the class, its config, and what it returns on the
tiny model (:mod:`.tiny`).

Every check takes the method CLASS and its options (a mapping for its ``Config``, or ``None`` for
the defaults) and raises :class:`AssertionError` with one line, ``method 'NAME': what is wrong;
fix: how``, on the first problem it finds; it returns ``None`` when the method conforms.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import torch
from pydantic import BaseModel, ValidationError

from ..contract.method import Allocation, MethodConfig, PruningMethod, PruningSchedule
from ..contract.registry import NAME_PATTERN
from ..run.prune import model_fingerprint
from .tiny import tiny_context, tiny_model

__all__ = [
    "MAX_DESCRIPTION",
    "check_attributes",
    "check_config",
    "check_deterministic",
    "check_layer_ratios",
    "check_no_mutation",
    "check_schedule",
    "check_scores",
    "call",
    "checked_schedule",
    "fail",
    "instance",
]

MAX_DESCRIPTION = 120
"""Characters of a method's one-line ``description`` (a row of ``pruning-suite plugins``)."""

_PROBE_KEY = "pruning_suite_conformance_unknown_option"


def fail(method: type, what: str, fix: str) -> NoReturn:
    """Raise the one-line failure of a check: ``method 'NAME': what; fix: fix``."""
    name = getattr(method, "name", None)
    label = f"method {name!r}" if isinstance(name, str) else f"method class {method.__name__}"
    raise AssertionError(f"{label}: {what}; fix: {fix}")


def instance(method: type[PruningMethod], config: Mapping[str, Any] | None = None) -> PruningMethod:
    """``method`` configured with ``config`` (a mapping for its ``Config``; None = defaults)."""
    try:
        parsed = method.Config.model_validate(dict(config or {}))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "config"
        fail(
            method,
            f"the config {dict(config or {})!r} is refused: {where}: {first['msg']}",
            f"pass options that {method.Config.__name__} accepts",
        )
    return method(parsed)


def check_attributes(method: type[PruningMethod]) -> None:
    """The class meets the contract: a concrete :class:`~pruning_suite.PruningMethod` with a
    well-formed ``name`` (``[a-z0-9][a-z0-9-]*``), ``version``, ``granularity`` and one-line
    ``description`` of at most :data:`MAX_DESCRIPTION` characters."""
    if not (isinstance(method, type) and issubclass(method, PruningMethod)):
        raise AssertionError(
            f"{method!r} is not a PruningMethod subclass; fix: subclass pruning_suite.PruningMethod"
        )
    if getattr(method, "__abstractmethods__", None):
        fail(
            method,
            f"the class leaves {sorted(method.__abstractmethods__)} abstract",
            "implement score(self, ctx)",
        )
    name = getattr(method, "name", None)
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        fail(
            method,
            f"name is {name!r}",
            "set name = 'my-method' (lower-case letters, digits "
            "and '-'; it is the entry-point name and the --plugin value)",
        )
    version = getattr(method, "version", None)
    if not isinstance(version, str) or not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+-]*", version):
        fail(
            method,
            f"version is {version!r}",
            "set version = '1' (a string; bump it whenever a change can move a number)",
        )
    if method.granularity not in ("filter", "weight"):
        fail(
            method,
            f"granularity is {method.granularity!r}",
            "set granularity = 'filter' (structured) or 'weight' (unstructured)",
        )
    _check_description(method)
    if not isinstance(method.from_scratch, bool):
        fail(method, f"from_scratch is {method.from_scratch!r}", "leave from_scratch = False")


def _check_description(method: type[PruningMethod]) -> None:
    text = method.description
    if not isinstance(text, str) or not text.strip():
        fail(
            method,
            "description is empty",
            "set description = 'what it scores (Author et "
            "al., Venue Year)', one line for `pruning-suite plugins`",
        )
    if "\n" in text or len(text) > MAX_DESCRIPTION:
        fail(
            method,
            f"description is {len(text)} characters over {text.count(chr(10)) + 1} lines",
            f"keep it to one line of at most {MAX_DESCRIPTION} characters",
        )


def check_config(method: type[PruningMethod], config: Mapping[str, Any] | None = None) -> None:
    """``Config`` is a frozen :class:`~pruning_suite.MethodConfig` that forbids unknown keys,
    whose defaults pass its own validation and survive a JSON round trip (the config lands in
    the submission and the run id), and ``config`` configures the method."""
    model = method.Config
    if not (isinstance(model, type) and issubclass(model, MethodConfig)):
        fail(method, f"Config is {model!r}", "subclass pruning_suite.MethodConfig")
    settings = model.model_config
    if settings.get("frozen") is not True or settings.get("extra") != "forbid":
        fail(
            method,
            f"{model.__name__}.model_config is {dict(settings)!r}",
            "do not override model_config: MethodConfig is frozen with extra='forbid'",
        )
    _check_defaults(method, model)
    try:
        model.model_validate({_PROBE_KEY: 1})
    except ValidationError:
        pass
    else:
        fail(method, f"{model.__name__} accepts an unknown key", "keep extra='forbid'")
    configured = instance(method, config)
    if configured.config != model.model_validate(dict(config or {})):
        fail(
            method,
            "__init__ does not keep the config it is given as self.config",
            "call super().__init__(config) in __init__",
        )
    _check_round_trip(method, configured.config)


def _check_defaults(method: type[PruningMethod], model: type[MethodConfig]) -> None:
    try:
        defaults = model()
    except ValidationError as err:
        fail(
            method,
            f"{model.__name__}() needs options: {err.errors()[0]['msg']}",
            "give every option a default (the suite runs a method with {} unless told)",
        )
    try:
        model.model_validate(defaults.model_dump())
    except ValidationError as err:
        first = err.errors()[0]
        fail(
            method,
            f"the default of {'.'.join(map(str, first['loc']))} is invalid: {first['msg']}",
            "make each default satisfy its own Field constraints",
        )


def _check_round_trip(method: type[PruningMethod], config: BaseModel) -> None:
    model = type(config)
    try:
        text = json.dumps(config.model_dump(mode="json"), allow_nan=False)
        back = model.model_validate(json.loads(text))
    except (TypeError, ValueError) as err:
        fail(
            method,
            f"the config does not survive JSON ({type(err).__name__}: {err})",
            "use JSON-able option types (numbers, strings, booleans, lists, Literal)",
        )
    if back != config:
        fail(
            method,
            f"the config changes through JSON: {config!r} -> {back!r}",
            "use option types that read back to the same value",
        )


def check_scores(method: type[PruningMethod], config: Mapping[str, Any] | None = None) -> None:
    """``score`` on the tiny model returns, for exactly the prunable layers, a finite float
    tensor of shape ``[num_units]`` (filter granularity) or the weight's shape (weight)."""
    model = tiny_model()
    ctx = tiny_context(model)
    scores = _score(method, config, ctx)
    names = [layer.name for layer in ctx.layers]
    if not isinstance(scores, Mapping):
        fail(
            method,
            f"score() returned {type(scores).__name__}",
            "return a dict mapping each name in ctx.layers to a tensor",
        )
    if set(scores) != set(names):
        fail(
            method,
            f"score() returned layers {sorted(map(str, scores))}, the prunable layers are {names}",
            "return one tensor per layer in ctx.layers, keyed by layer.name",
        )
    for layer in ctx.layers:
        _check_layer_scores(method, layer.name, scores[layer.name], _shape(method, layer))


def _shape(method: type[PruningMethod], layer: Any) -> tuple[int, ...]:
    if method.granularity == "weight":
        return tuple(layer.module.weight.shape)
    return (layer.num_units,)


def _check_layer_scores(
    method: type[PruningMethod], name: str, value: Any, shape: tuple[int, ...]
) -> None:
    kind = "one score per weight" if method.granularity == "weight" else "one score per unit"
    if not isinstance(value, torch.Tensor) or not torch.is_floating_point(value):
        what = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
        fail(method, f"scores for {name!r} are {what}", "return a float tensor per layer")
    if tuple(value.shape) != shape:
        fail(
            method,
            f"scores for {name!r} have shape {list(value.shape)}, {method.granularity} "
            f"granularity needs {list(shape)}",
            f"return {kind} of the layer",
        )
    if not bool(torch.isfinite(value.detach().cpu()).all()):
        fail(
            method,
            f"scores for {name!r} are not all finite",
            "return finite scores (NaN and inf cannot be ranked); guard divisions by zero",
        )


def _score(
    method: type[PruningMethod], config: Mapping[str, Any] | None, ctx: Any
) -> Mapping[str, torch.Tensor]:
    return call(method, instance(method, config), "score", ctx)


def call(method: type[PruningMethod], configured: PruningMethod, step: str, *args: Any) -> Any:
    """``configured.step(*args)``; an exception it raises fails the check (chained)."""
    try:
        return getattr(configured, step)(*args)
    except AssertionError:
        raise
    except Exception as err:
        text = f"{err}".replace("\n", " ")
        fail(
            method,
            f"{step}() raised {type(err).__name__} on the conformance kit's tiny model: {text}",
            "see the chained traceback above",
        )


def check_deterministic(
    method: type[PruningMethod], config: Mapping[str, Any] | None = None
) -> None:
    """Two fresh instances scoring fresh copies of one model with the same seed give identical
    scores (bit for bit); another seed may differ. Randomness must come from
    ``ctx.generator``, data from ``ctx.calibration_batches`` (seeded by the run's seed)."""
    first = _score(method, config, tiny_context(tiny_model(), seed=7))
    second = _score(method, config, tiny_context(tiny_model(), seed=7))
    _score(method, config, tiny_context(tiny_model(), seed=8))  # another seed must work too
    for name, value in first.items():
        other = second.get(name)
        if not isinstance(other, torch.Tensor) or not torch.equal(value, other):
            fail(
                method,
                f"two score() calls with seed 7 differ for layer {name!r}",
                "draw random numbers from ctx.generator (torch.rand(..., generator="
                "ctx.generator)), never the global RNG, and keep no state between runs",
            )


def check_no_mutation(method: type[PruningMethod], config: Mapping[str, Any] | None = None) -> None:
    """``score`` and ``layer_ratios`` leave the model they are given as it was: weights,
    buffers (BatchNorm statistics), modules, train/eval mode and hooks
    (:func:`pruning_suite.run.prune.model_fingerprint`, the check a run makes)."""
    model = tiny_model()
    before = model_fingerprint(model)
    ctx = tiny_context(model)
    configured = instance(method, config)
    call(method, configured, "score", ctx)
    if model_fingerprint(model) != before:
        fail(
            method,
            "score() modified the model it was given (weights, buffers, modules, mode or hooks)",
            "work on copy.deepcopy(ctx.model); the core applies the pruning",
        )
    call(method, configured, "layer_ratios", ctx)
    if model_fingerprint(model) != before:
        fail(method, "layer_ratios() modified the model it was given", "only read ctx.model")
    if any(p.grad is not None for p in model.parameters()):
        fail(
            method,
            "score() left gradients on the model it was given",
            "take gradients on copy.deepcopy(ctx.model)",
        )


def check_layer_ratios(
    method: type[PruningMethod], config: Mapping[str, Any] | None = None
) -> None:
    """``layer_ratios`` maps prunable layer names to ratios in ``[0, 1)``, and never asks a
    later prune round for less than an earlier one (a schedule only removes)."""
    configured = instance(method, config)
    rounds = checked_schedule(method, configured).rounds
    names = {layer.name for layer in tiny_context(tiny_model()).layers}
    previous: Mapping[str, float] = {}
    for index in range(1, rounds + 1):
        ctx = tiny_context(tiny_model(), round_index=index)
        ratios = call(method, configured, "layer_ratios", ctx)
        if not isinstance(ratios, Mapping):
            fail(
                method,
                f"layer_ratios() returned {type(ratios).__name__}",
                "return a dict mapping layer names to ratios in [0, 1), or ctx.ratios",
            )
        if not set(ratios) <= names:
            fail(
                method,
                f"layer_ratios() names {sorted(set(map(str, ratios)) - names)}, not "
                "prunable layers",
                "key ratios by the names in ctx.layers",
            )
        for name, value in ratios.items():
            _check_ratio(method, name, value)
            if value < previous.get(name, 0.0):
                fail(
                    method,
                    f"layer_ratios() lowers {name!r} from {previous[name]} to {value} "
                    f"in round {index}",
                    "return the same final ratios every round; the core "
                    "schedules the cumulative ratio of each round",
                )
        previous = ratios


def _check_ratio(method: type[PruningMethod], name: str, value: Any) -> None:
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not 0.0 <= value < 1.0:
        fail(
            method,
            f"layer_ratios() gives {name!r} the ratio {value!r}",
            "a ratio is a fraction of the layer's units in [0, 1)",
        )


def checked_schedule(method: type[PruningMethod], configured: PruningMethod) -> PruningSchedule:
    """``configured.schedule()``, failing the check unless it is a ``PruningSchedule``."""
    schedule = call(method, configured, "schedule")
    if not isinstance(schedule, PruningSchedule):
        fail(
            method,
            f"schedule() returned {type(schedule).__name__}",
            "return pruning_suite.PruningSchedule(...)",
        )
    return schedule


def check_schedule(method: type[PruningMethod], config: Mapping[str, Any] | None = None) -> None:
    """``schedule()`` returns a :class:`~pruning_suite.PruningSchedule` and ``allocation()`` an
    :class:`~pruning_suite.Allocation`, both the same on every call; rewinding only at weight
    granularity; a from-scratch baseline neither trains nor prunes in rounds."""
    configured = instance(method, config)
    schedule = checked_schedule(method, configured)
    allocation = call(method, configured, "allocation")
    if not isinstance(allocation, Allocation):
        fail(
            method,
            f"allocation() returned {type(allocation).__name__}",
            "return pruning_suite.Allocation(...) (scope='layer' or 'global')",
        )
    if configured.schedule() != schedule or configured.allocation() != allocation:
        fail(
            method,
            "schedule() or allocation() changes from call to call",
            "derive them from self.config only",
        )
    if schedule.rewind and method.granularity != "weight":
        fail(
            method,
            "schedule() rewinds weights at filter granularity",
            "set rewind=False, or granularity = 'weight' (iterative magnitude pruning)",
        )
    if method.from_scratch and (schedule.trains or schedule.rounds > 1):
        fail(
            method,
            "a from-scratch baseline trains or prunes in rounds",
            "keep the default one-shot schedule: the core trains the architecture from scratch",
        )
