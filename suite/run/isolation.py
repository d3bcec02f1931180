"""The pruning stage in a process of its own: method code never runs where results are made.

A method's code (its scoring, calibration, schedule and pruning-stage hooks) could rewrite the
suite's evaluation, hang, or crash the interpreter (issue 14: a ``score()`` that replaced
``evaluate`` with ``lambda *a, **k: 100.0`` was certified at 100.00%). So the runner hands the
pruning stage (:func:`~.pruning_loop.run_pruning_stage`) to a fresh ``spawn`` process and takes
back only data, as a ``torch.save`` archive read with ``weights_only=True`` (tensors, numbers,
strings; no code can come back):

- every round's removed units (filter granularity), sent as the round is applied; the runner
  replays them at once on its own copy of the dense model
  (:func:`~pruning_suite.engine.surgery.apply_structured_pruning`, verified);
- after every stage epoch, the weights: the runner loads them strictly into its replayed model
  and evaluates the validation and test splits itself. The child holds the training split only
  (:func:`train_only`) and gets back the validation top-1 alone, once per stage epoch; the runner
  writes the test top-1 into the stage's log, whose validation figures must be the ones it sent;
- the weight masks (weight granularity), which it applies to its own weights.

The stage's result keeps the weights of its last evaluated epoch, with the later rounds replayed
on them: nothing else the child sends is loaded. The stage's epochs are the runner's own count
(:func:`~.config.stage_epochs`), so a one-shot stage (0 epochs) hands back no weights at all, and
a result naming other epochs, rounds or accuracies than the runner saw is refused. It also takes
back the method's last decision, the stage's record (validated again), the target's ratios and
the random generator's state (so the rest of the run draws what it would have drawn in one
process).

The child gets copies, never shared memory, so it cannot touch the runner's model, and it gets no
validation or test example (emptied splits in fresh storage). It runs at most
``pruning_budget.time_limit_s`` seconds of wall time and is then killed; it dies with the runner
(:func:`~pruning_suite.record.safefiles.die_with_parent`). What it cannot guard against: code that
runs when the plugin's module is imported (plugins are discovered in the runner's process); the
dataset's files on disk, which method code could open itself (``audit`` reruns the same code, so
it does not tell either); the counts the stage records (samples, gradient passes), which are made
in the method's process; and the weights sent after each epoch: method code that replaces the
suite's loop in its own process can send weights it trained otherwise (on the training split;
its compute uncounted).
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from .. import errors
from ..contract.method import PruningMethod
from ..data.datasets import DataSplits
from ..engine.masks import WeightMasks
from ..engine.surgery import apply_structured_pruning
from ..engine.train import EpochStats, evaluate
from ..errors import PluginError, PruningSuiteError
from ..protocol.spec import ComparisonProtocol, PruningTarget, TrainRecipe
from ..record.safefiles import die_with_parent
from ..record.submission import PruningStage as PruningStageRecord
from .config import stage_epochs
from .prune import PruningDecision, PruningOutcome, PruningStage
from .pruning_loop import NO_HOOKS, PruningStageResult, StageHooks, run_pruning_stage

__all__ = ["StageJob", "run_isolated_stage", "run_stage_here", "train_only"]

_POLL_S = 0.5
"""How often the runner checks that the stage's process is alive, seconds."""


@dataclass(frozen=True)
class StageJob:
    """One pruning stage, as the runner hands it to the stage's process (pickled, copied).

    Attributes:
        model: The dense base model (its device is the run's).
        method: The plugin's method instance (its class must be importable by name).
        protocol, target, seed: Select the stage (:class:`~.prune.PruningStage`).
        data: The dataset's splits; the stage's process gets ``train`` alone (:func:`train_only`),
            and the runner evaluates each stage epoch on val and test.
        retraining: The protocol's retraining recipe (the stage trains with its batch size,
            optimizer and augmentation).
        smoke: Cut the stage to the smoke budget.
    """

    model: nn.Module
    method: PruningMethod
    protocol: ComparisonProtocol
    target: PruningTarget
    seed: int
    data: DataSplits
    retraining: TrainRecipe
    smoke: bool = False


def run_isolated_stage(job: StageJob, hooks: StageHooks = NO_HOOKS) -> PruningStageResult:
    """Run the pruning stage in a spawned process; prune ``job.model`` in place from its data.

    The process gets ``job.data``'s training split only (:func:`train_only`); this process
    evaluates every stage epoch on the validation and test splits from the weights the stage's
    process sends after the epoch, and replays each prune round as it happens.

    Args:
        job: The stage; ``job.model`` (the runner's copy) is pruned in place by replaying the
            child's removals and masks, with the weights of the last epoch it evaluated.
        hooks: ``on_epoch`` and ``on_train_start`` are relayed from the stage's process;
            ``on_round`` and ``evaluate_epoch`` are this module's own.

    Returns:
        The stage's result, as :func:`~.pruning_loop.run_pruning_stage` returns it in one process.

    Raises:
        PluginError: The method's class cannot be handed to a process (defined inside a
            function), the stage ran over ``pruning_budget.time_limit_s``, its process died, or
            it sent back something malformed or inconsistent with what this process evaluated;
            and every error the stage raises in one process (PluginError, PruningError,
            TrainingError, ...), with its message and hint.
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")  # fork deadlocks torch's thread pool in the child
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(target=_child, args=(theirs, os.getpid()), daemon=True)
    name, limit = job.method.name, job.protocol.pruning_budget.time_limit_s
    runner_side = _RunnerSide(job, hooks, ours)
    try:
        archive = _archive(job, name)
        process.start()
        theirs.close()
        ours.send_bytes(archive)
        del archive
        reply = _await(ours, process, name, limit, runner_side)
    finally:
        if process.is_alive():
            process.kill()
        if process.pid is not None:
            process.join()
        ours.close()
    return _replay(job, reply, runner_side)


def run_stage_here(job: StageJob, hooks: StageHooks = NO_HOOKS) -> PruningStageResult:
    """The same stage in this process (``run --in-process``): ``job.model`` is pruned in place
    by the method's own decisions; for debugging a method, without the isolation."""
    stage = PruningStage(job.method, job.protocol, job.target, job.seed)
    return run_pruning_stage(job.model, stage, job.data, job.retraining, job.smoke, hooks)


def train_only(data: DataSplits) -> DataSplits:
    """``data`` with its validation and test splits emptied (no examples, same type and
    normalization): what the stage's process gets. The splits' files on disk stay readable to
    method code (``data.source``); no check here or in ``audit`` tells a method that reads them."""
    return DataSplits(
        data.train, _no_examples(data.val), _no_examples(data.test), data.sha256, data.source
    )


def _no_examples(split: Any) -> Any:
    """``split`` without examples, in fresh storage: a ``[:0]`` view would carry the whole
    storage into the archive (``torch.save`` saves a view's storage), the examples with it."""
    names = ("images", "labels") if hasattr(split, "images") else ("paths", "labels")
    return dataclasses.replace(split, **{name: _empty(getattr(split, name)) for name in names})


def _empty(values: Any) -> Any:
    if isinstance(values, torch.Tensor):
        return values.new_empty((0, *values.shape[1:]))
    return values[:0].copy()  # a NumPy array of paths


class _RunnerSide:
    """This process's part of the stage: it replays each round on ``job.model`` as the child
    applies it, and evaluates each stage epoch on val and test from the child's weights."""

    def __init__(self, job: StageJob, hooks: StageHooks, conn: Connection) -> None:
        self.job, self.hooks, self.conn = job, hooks, conn
        self.example = job.data.train.batch(slice(0, 2))
        self.rounds: list[dict[str, list[int]]] = []
        self.evaluated: list[tuple[float, float]] = []
        self.epochs, _ = stage_epochs(job.protocol, job.retraining, job.smoke)

    def round(self, body: Any) -> None:
        removals = _removals(body)
        if removals:
            apply_structured_pruning(self.job.model, removals, self.example)
        self.rounds.append(removals)

    def evaluate(self, state: Any) -> None:
        """Score the child's epoch weights: once per stage epoch, never more."""
        job = self.job
        if len(self.evaluated) >= self.epochs:
            raise PluginError(
                f"plugin {job.method.name!r}: the pruning stage asked for more epoch evaluations "
                f"than its {self.epochs} epochs",
                "only the suite's loop may ask for an epoch's accuracy; the method's code did",
            )
        _load_trained(job.model, state, job.method.name)
        figures = (evaluate(job.model, job.data.val), evaluate(job.model, job.data.test))
        self.evaluated.append(figures)
        _send(self.conn, "val_top1", figures[0])  # the test accuracy never enters the child

    def epoch(self, body: Mapping[str, Any]) -> None:
        if self.hooks.on_epoch is not None and self.evaluated:
            val, test = self.evaluated[-1]
            self.hooks.on_epoch(EpochStats(**{**body, "val_top1": val, "test_top1": test}))


def _archive(job: StageJob, name: str) -> bytes:
    """The job and the runner's torch settings as ``torch.save`` bytes (copies, not shared)."""
    settings = {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "rng": torch.get_rng_state(),
        "cuda_rng": _cuda_rng(job),
    }
    try:
        pickle.dumps(job.method)
    except (AttributeError, TypeError, pickle.PicklingError) as err:  # "Can't pickle <local>"
        raise PluginError(
            f"plugin {name!r} cannot run in the pruning stage's own process: {err}",
            "define the method class (and its config) at the top level of an importable module",
        ) from err
    buffer = io.BytesIO()
    try:
        torch.save({"job": replace(job, data=train_only(job.data)), "settings": settings}, buffer)
    except (AttributeError, TypeError, RuntimeError, pickle.PicklingError) as err:
        raise PruningSuiteError(
            f"the model or data of this run cannot be handed to the pruning stage's process: {err}",
            "an architecture or dataset plugin must define its classes at the top level of an "
            "importable module",
        ) from err
    return buffer.getvalue()


def _cuda_rng(job: StageJob) -> torch.Tensor | None:
    device = next(iter(job.model.parameters())).device
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _await(
    conn: Connection, process: Any, name: str, limit: float, runner_side: _RunnerSide
) -> dict[str, Any]:
    """Serve the child (rounds, epoch evaluations, progress) until it sends its result; enforce
    the time limit."""
    deadline = time.monotonic() + limit
    on_train_start = runner_side.hooks.on_train_start
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PluginError(
                f"plugin {name!r}: the pruning stage ran over its time limit of {limit:g} s "
                "(pruning_budget.time_limit_s) and was stopped",
                "a method that hangs in score() or a hook is a bug in the plugin; a protocol whose "
                "pruning stage needs longer sets a larger pruning_budget.time_limit_s",
            )
        if not conn.poll(min(left, _POLL_S)):
            if not process.is_alive() and not conn.poll():
                raise _died(name, process)
            continue
        try:
            kind, body = _message(conn.recv_bytes())
        except EOFError:
            process.join()
            raise _died(name, process) from None
        if kind == "round":
            runner_side.round(body)
        elif kind == "evaluate":
            runner_side.evaluate(body)
        elif kind == "epoch":
            runner_side.epoch(body)
        elif kind == "train_start" and on_train_start is not None:
            on_train_start(int(body))
        elif kind == "error":
            raise _error(body)
        elif kind == "done":
            return body


def _message(data: bytes) -> tuple[str, Any]:
    try:
        kind, body = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as err:  # anything else than a (kind, data) pair of plain data
        raise PluginError(
            f"the pruning stage's process sent something that is not plain data ({err})",
            "the method's code wrote to the suite's channel; only the suite may",
        ) from err
    if kind not in ("round", "evaluate", "epoch", "train_start", "error", "done"):
        raise PluginError(f"the pruning stage's process sent an unknown message {kind!r}", "")
    return kind, body


def _died(name: str, process: Any) -> PluginError:
    return PluginError(
        f"plugin {name!r}: the pruning stage's process died (exit code {process.exitcode}) "
        "before it sent a result",
        "the method's code crashed the interpreter (a segfault, os._exit, running out of "
        "memory); run it with smaller calibration or find the crash in the plugin",
    )


def _error(body: Mapping[str, str]) -> PruningSuiteError:
    """The child's error, rebuilt as the same suite error class (a PluginError otherwise)."""
    cls = getattr(errors, str(body.get("type")), PluginError)
    if not (isinstance(cls, type) and issubclass(cls, PruningSuiteError)):
        cls = PluginError
    return cls(str(body.get("message", "")), str(body.get("hint", "")))


def _replay(
    job: StageJob, reply: Mapping[str, Any], runner_side: _RunnerSide
) -> PruningStageResult:
    """Finish pruning ``job.model`` as the child did, from data only; return the stage's result.

    The rounds were replayed as they came (:meth:`_RunnerSide.round`); the final result must
    name the same rounds, and its log the accuracies this process measured."""
    model = job.model
    try:
        record = PruningStageRecord.model_validate(reply["record"])
        decision = PruningDecision(dict(reply["scores"]), dict(reply["ratios"]))
        removals = tuple(_removals(r) for r in reply["removals"])
        layers = [(str(n), int(b), int(a)) for n, b, a in reply["layers"]]
        masks = None if reply["masks"] is None else WeightMasks(reply["masks"])
        target_ratios = {str(k): float(v) for k, v in reply["target_ratios"].items()}
    except (KeyError, TypeError, ValueError, ValidationError, AttributeError) as err:
        raise PluginError(
            f"the pruning stage's process sent a malformed result ({type(err).__name__}: {err})",
            _TAMPERED,
        ) from err
    vals, epochs = [val for val, _ in runner_side.evaluated], runner_side.epochs
    if (
        list(removals) != runner_side.rounds
        or [row.val_top1 for row in record.log] != vals
        or record.epochs != epochs
        or len(vals) != epochs
    ):
        raise PluginError(
            f"plugin {job.method.name!r}: the pruning stage's result names other rounds or "
            "accuracies than the stage reported while it ran",
            _TAMPERED,
        )
    log = [
        row.model_copy(update={"test_top1": test})
        for row, (_, test) in zip(record.log, runner_side.evaluated, strict=True)
    ]
    record = record.model_copy(update={"log": log})
    if masks is not None:
        masks.apply(model)
    torch.set_rng_state(reply["rng"])
    if reply.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(reply["cuda_rng"], runner_side.example.device)
    model.train(bool(reply["training"]))
    outcome = PruningOutcome(layers, masks, removals[-1] if removals else {})
    return PruningStageResult(outcome, decision, record, removals, target_ratios)


_TAMPERED = "the method's code tampered with the suite's result; only the suite may write it"


def _removals(body: Any) -> dict[str, list[int]]:
    """One round's removed units as plain data (layer name -> filter indices)."""
    try:
        return {str(name): [int(i) for i in units] for name, units in body.items()}
    except (TypeError, ValueError, AttributeError) as err:
        raise PluginError(
            f"the pruning stage's process sent a malformed round ({type(err).__name__}: {err})",
            _TAMPERED,
        ) from err


def _load_trained(model: nn.Module, state: Any, name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise PluginError(
            f"plugin {name!r}: the pruning stage's weights do not fit the pruned architecture "
            f"({str(err).splitlines()[0][:300]})",
            "the method's code changed the model's structure; only the core prunes",
        ) from err


def _child(conn: Connection, parent: int) -> None:
    """The stage's process: read the job, run the stage, send back data (never raises)."""
    die_with_parent(parent)
    try:
        loaded = torch.load(io.BytesIO(conn.recv_bytes()), weights_only=False)  # the runner's
        job, settings = loaded["job"], loaded["settings"]
        torch.set_num_threads(settings["threads"])
        torch.use_deterministic_algorithms(settings["deterministic"])
        torch.set_rng_state(settings["rng"])
        if settings["cuda_rng"] is not None:
            torch.cuda.set_rng_state(settings["cuda_rng"], _device(job.model))
        _send(conn, "done", _stage(job, conn))
    except PruningSuiteError as err:
        _send(conn, "error", {"type": type(err).__name__, "message": err.message, "hint": err.hint})
    except BaseException as err:  # a bug in the suite or the method: report, never hang
        _send(
            conn,
            "error",
            {
                "type": "PluginError",
                "message": f"the pruning stage failed: {type(err).__name__}: {err}",
                "hint": "if the method's code is not to blame, report this as a bug",
            },
        )
    finally:
        conn.close()


def _stage(job: StageJob, conn: Connection) -> dict[str, Any]:
    hooks = StageHooks(
        on_epoch=lambda row: _send(conn, "epoch", row.as_dict()),
        on_train_start=lambda epochs: _send(conn, "train_start", epochs),
        on_round=lambda removals: _send(conn, "round", removals),
        evaluate_epoch=partial(_ask_runner, conn),
    )
    result = run_stage_here(job, hooks)
    model, outcome = job.model, result.outcome
    return {
        "record": result.record.model_dump(mode="json"),
        "scores": result.decision.scores,
        "ratios": result.decision.ratios,
        "removals": list(result.removals),
        "layers": [list(layer) for layer in outcome.layers],
        "masks": None if outcome.masks is None else outcome.masks.masks,
        "target_ratios": result.target_ratios,
        "training": model.training,
        "rng": torch.get_rng_state(),
        "cuda_rng": (
            torch.cuda.get_rng_state(_device(model)) if _device(model).type == "cuda" else None
        ),
    }


def _ask_runner(conn: Connection, model: nn.Module) -> tuple[float, float]:
    """The child's epoch evaluator: send the weights, get the validation top-1 back. The test
    top-1 is the runner's alone (0.0 here; the runner writes it into the log)."""
    _send(conn, "evaluate", dict(model.state_dict()))
    kind, body = torch.load(io.BytesIO(conn.recv_bytes()), weights_only=True)
    if kind != "val_top1":
        raise PluginError(f"the runner sent {kind!r} where it should send an epoch's accuracy", "")
    return float(body), 0.0


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device


def _send(conn: Connection, kind: str, body: Any) -> None:
    buffer = io.BytesIO()
    torch.save((kind, body), buffer)
    conn.send_bytes(buffer.getvalue())
