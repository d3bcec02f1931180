"""The conformance checks that run the method through the suite: the hook order in the real
pruning-stage loop (:func:`pruning_suite.run.pruning_loop.run_pruning_stage`) and a tiny
end-to-end run of the real runner (:func:`pruning_suite.run.runner.run`, smoke budget, CPU).

One run serves both checks: the method is run as a recording subclass (same name, version and
config; every hook delegates to the method's own) registered directly with the plugin registry,
so neither an installed entry point nor a network is needed. Runs are cached per method, config
and protocol for the life of the process.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..contract.hookspecs import hookimpl
from ..contract.method import PruningContext, PruningMethod, PruningSchedule
from ..contract.plugins import load_registry
from ..errors import PruningSuiteError
from ..run.prune import model_fingerprint
from ..run.runner import RunConfig, run
from ..validate import validate_file
from .checks import checked_schedule, fail, instance

__all__ = [
    "StageTrace",
    "check_end_to_end",
    "check_hook_order",
    "default_protocol",
    "expected_events",
    "trace_run",
]


@dataclass
class StageTrace:
    """What one end-to-end run of a method showed.

    Attributes:
        protocol: The protocol id it ran on.
        schedule: The method's schedule.
        events: The hooks in call order: ``("train", epoch)`` for a run of ``regularize`` calls
            in one stage epoch, ``("epoch_end", epochs_done)``, ``("score", round, epoch)``.
        problems: What a hook did wrong, in order (non-finite gradients, a changed model...).
        submission: The submission written, as a dict (None when the run failed).
        invalid: The validator's problems with it, one line each.
        error: The run's error, one line (None when it finished).
    """

    protocol: str
    schedule: PruningSchedule
    events: list[tuple[Any, ...]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    submission: dict[str, Any] | None = None
    invalid: list[str] = field(default_factory=list)
    error: str | None = None


_RUNS: dict[tuple[type, str, str], StageTrace] = {}


def default_protocol(method: type[PruningMethod], schedule: PruningSchedule) -> str:
    """The digits protocol of the method's granularity; its ``-s4`` version (a pruning budget of
    10 epochs, 2 under the smoke budget) when the method trains in the pruning stage."""
    base = "digits-convnet" if method.granularity == "filter" else "digits-convnet-unstructured"
    return f"{base}-s4" if schedule.trains else base


def trace_run(
    method: type[PruningMethod],
    config: Mapping[str, Any] | None = None,
    protocol: str | None = None,
) -> StageTrace:
    """Run ``method`` end to end once (cached): smoke budget, seed 0, CPU, no JSV, a temporary
    folder.

    The base model comes from the suite's cache (``$PRUNING_SUITE_CACHE`` or
    ``~/.cache/pruning-suite``); the first run trains it (a few seconds on 2 CPU cores).
    """
    options = dict(config or {})
    schedule = checked_schedule(method, instance(method, options))
    protocol = protocol or default_protocol(method, schedule)
    key = (method, json.dumps(options, sort_keys=True, default=str), protocol)
    if key not in _RUNS:
        _RUNS[key] = _run(method, options, protocol, schedule)
    return _RUNS[key]


def _run(
    method: type[PruningMethod], options: dict[str, Any], protocol: str, schedule: PruningSchedule
) -> StageTrace:
    trace = StageTrace(protocol, schedule)
    registry = load_registry(extra_plugins=[_Provides(_recording(method, trace))])
    with tempfile.TemporaryDirectory(prefix="pruning-suite-conformance-") as out:
        config = RunConfig(
            plugin=method.name,
            protocol=protocol,
            method_config=options,
            device="cpu",
            out=Path(out),
            smoke=True,
            jsv=False,  # trainability is the suite's measurement, not the method's contract
            isolate=False,  # the recording hooks write into this process's trace
        )
        try:
            result = run(config, registry)
        except PruningSuiteError as err:
            trace.error = f"{err.message} (hint: {err.hint})" if err.hint else err.message
            return trace
        trace.invalid = [f"{p.where}: {p.message}" for p in validate_file(result.path)]
        trace.submission = json.loads(Path(result.path).read_text(encoding="utf-8"))
    return trace


class _Provides:
    """A plugin registering one method class directly (no entry point)."""

    def __init__(self, method: type[PruningMethod]) -> None:
        self.method = method

    @hookimpl
    def register_methods(self) -> list[type[PruningMethod]]:
        return [self.method]


def _recording(method: type[PruningMethod], trace: StageTrace) -> type[PruningMethod]:
    """A subclass of ``method`` that records its hooks into ``trace`` and delegates each."""
    events, problems = trace.events, trace.problems
    last: dict[str, Any] = {}

    def score(self: Any, ctx: PruningContext) -> Any:
        events.append(("score", ctx.round_index, ctx.epoch))
        return method.score(self, ctx)

    def regularize(self: Any, ctx: PruningContext, model: nn.Module) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not all(p.grad is not None for p in params):
            problems.append("the suite called regularize() before backward (a grad is unset)")
        values = torch.cat([p.detach().flatten() for p in params])
        if ("train", ctx.epoch) == last.get("event") and torch.equal(values, last["values"]):
            problems.append("no optimizer step came between two regularize() calls")
        last.update(event=("train", ctx.epoch), values=values)
        if events[-1:] != [("train", ctx.epoch)]:
            events.append(("train", ctx.epoch))
        method.regularize(self, ctx, model)
        if not all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None):
            problems.append(f"regularize() left a non-finite gradient in epoch {ctx.epoch}")

    def on_pruning_epoch_end(self: Any, ctx: PruningContext, model: nn.Module) -> None:
        events.append(("epoch_end", ctx.epoch))
        last.clear()
        before = model_fingerprint(model)
        method.on_pruning_epoch_end(self, ctx, model)
        if model_fingerprint(model) != before:
            problems.append(f"on_pruning_epoch_end() modified the model after epoch {ctx.epoch}")

    hooks = {"score": score, "regularize": regularize}
    hooks["on_pruning_epoch_end"] = on_pruning_epoch_end
    return type(method.__name__, (method,), {**hooks, "__module__": method.__module__})


def expected_events(schedule: PruningSchedule, epochs: int) -> list[tuple[Any, ...]]:
    """The hooks the pruning stage calls for ``schedule`` over ``epochs`` stage epochs: each
    epoch's steps (``regularize`` after backward, before the optimizer step), then
    ``on_pruning_epoch_end``; round ``i`` is scored after epoch ``ceil(i * E / rounds)``."""
    events: list[tuple[Any, ...]] = []
    done = 0
    for index, end in enumerate(schedule.round_epochs(epochs), start=1):
        for epoch in range(done, end):
            events += [("train", epoch), ("epoch_end", epoch + 1)]
        done = max(done, end)
        events.append(("score", index, end))
    return events


def check_hook_order(
    method: type[PruningMethod],
    config: Mapping[str, Any] | None = None,
    protocol: str | None = None,
) -> None:
    """In the suite's pruning-stage loop, ``regularize`` runs after every backward pass and
    before every optimizer step and leaves finite gradients, ``on_pruning_epoch_end`` runs after
    each epoch and leaves the model as it was, and the prune rounds are scored at the epochs
    ``schedule()`` names (:meth:`~pruning_suite.PruningSchedule.round_epochs`)."""
    trace = trace_run(method, config, protocol)
    if trace.problems:
        fail(method, f"on {trace.protocol}: {trace.problems[0]}", _HOOK_FIXES[_kind(trace)])
    if trace.submission is None:
        fail(method, f"the run on {trace.protocol} failed: {trace.error}", "see check_end_to_end")
    epochs = trace.submission["pruning_stage"]["epochs"]
    expected = expected_events(trace.schedule, epochs)
    if trace.events != expected:
        pairs = zip(trace.events, expected, strict=False)
        at = next(
            (i for i, (a, b) in enumerate(pairs) if a != b), min(len(trace.events), len(expected))
        )
        got = trace.events[at] if at < len(trace.events) else "nothing"
        want = expected[at] if at < len(expected) else "nothing"
        fail(
            method,
            f"hook call {at + 1} on {trace.protocol} ({epochs} stage epochs) was {got},"
            f" expected {want}",
            "let the suite call the hooks; do not call score(), "
            "regularize() or on_pruning_epoch_end() from your own code",
        )


_HOOK_FIXES = {
    "grad": "add the regularizer's gradient to param.grad in place; keep it finite (lower the "
    "penalty)",
    "model": "only read the model in on_pruning_epoch_end(); keep state on self",
    "suite": "this is the suite's loop, not your method: report it to pruning-suite",
}


def _kind(trace: StageTrace) -> str:
    first = trace.problems[0]
    if "gradient" in first:
        return "grad"
    return "model" if "modified the model" in first else "suite"


def check_end_to_end(
    method: type[PruningMethod],
    config: Mapping[str, Any] | None = None,
    protocol: str | None = None,
) -> None:
    """A smoke run of the real runner (seed 0, CPU) finishes and writes a submission that
    validates (:func:`pruning_suite.validate.validate_file`), records the method's name, version,
    granularity and config, and prunes in the rounds ``schedule()`` names."""
    trace = trace_run(method, config, protocol)
    if trace.submission is None:
        fail(
            method,
            f"the smoke run on {trace.protocol} failed: {trace.error}",
            "run `pruning-suite run --plugin NAME --smoke --debug` for the traceback",
        )
    if trace.invalid:
        fail(
            method,
            f"the submission of the smoke run is invalid: {trace.invalid[0]}",
            "run `pruning-suite validate` on it; the method's config must be JSON-able",
        )
    recorded = trace.submission["method"]
    wanted = instance(method, config).config.model_dump(mode="json")
    mine = (method.name, method.version, method.granularity, wanted)
    theirs = (recorded["name"], recorded["version"], recorded["granularity"], recorded["config"])
    if mine != theirs:
        fail(method, f"the submission records {theirs}, not {mine}", "report it to pruning-suite")
    rounds = trace.submission["pruning_stage"]["rounds"]
    if len(rounds) != trace.schedule.rounds:
        fail(
            method,
            f"the run pruned in {len(rounds)} rounds, schedule() asks for {trace.schedule.rounds}",
            "report it to pruning-suite",
        )
