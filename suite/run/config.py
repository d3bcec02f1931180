"""What selects one run (:class:`RunConfig`), what it returns, its budgets and its device.

The smoke budget is defined here once (:func:`smoke_recipe`): ``run --smoke``, ``base train
--smoke`` and the studies all cut a recipe with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from pydantic import BaseModel

from ..errors import PruningSuiteError
from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.submission import Submission
from ..text import inline

__all__ = [
    "CPU_THREADS",
    "SMOKE_MAX_BATCHES",
    "SMOKE_MAX_EPOCHS",
    "Regime",
    "RunConfig",
    "RunResult",
    "budget",
    "cpu_threads",
    "cpu_threads_in_force",
    "cpu_threads_set_to",
    "resolve_device",
    "smoke_recipe",
    "stage_epochs",
    "stage_recipe",
]

CPU_THREADS = 2
"""Intra-op threads of every CPU run, whatever the machine, ``OMP_NUM_THREADS`` or ``--jobs``:
float reductions split by thread, so 1 and 2 threads give other bits (issue 14 measured two base
models under one run id). Override with ``PRUNING_SUITE_CPU_THREADS`` (recorded in
``environment.num_threads`` and in the base-model cache key)."""

CPU_THREADS_ENV = "PRUNING_SUITE_CPU_THREADS"

SMOKE_MAX_BATCHES = 20
"""Batches per epoch in ``--smoke`` runs (which are never rankable)."""
SMOKE_MAX_EPOCHS = 2
"""Epochs per training phase in ``--smoke`` runs."""

Regime = Literal["prune", "scratch"]
"""How the model that is evaluated is trained: ``"prune"`` retrains the pruned base model with
the protocol's retraining recipe; ``"scratch"`` re-initializes the pruned architecture and trains
it from scratch under an SX-A / SX-B budget (Wang et al., arXiv 2301.05219, Sec. 5, M2)."""

_Recipe = TypeVar("_Recipe", bound=BaseModel)


def smoke_recipe(recipe: _Recipe) -> _Recipe:
    """The smoke budget of a recipe: at most :data:`SMOKE_MAX_EPOCHS` epochs, as ``run --smoke``.

    Args:
        recipe: A training recipe (any pydantic model with an ``epochs`` field).

    Returns:
        A copy with ``epochs`` cut to at most :data:`SMOKE_MAX_EPOCHS`.
    """
    return recipe.model_copy(update={"epochs": min(recipe.epochs, SMOKE_MAX_EPOCHS)})


def budget(recipe: _Recipe, smoke: bool) -> _Recipe:
    """``recipe`` itself, or its smoke budget (:func:`smoke_recipe`) when ``smoke``."""
    return smoke_recipe(recipe) if smoke else recipe


def cpu_threads() -> int:
    """The intra-op thread count of CPU runs: ``PRUNING_SUITE_CPU_THREADS`` or :data:`CPU_THREADS`.

    Raises:
        PruningSuiteError: The variable is not an integer in [1, 256].
    """
    text = os.environ.get(CPU_THREADS_ENV, "").strip()
    if not text:
        return CPU_THREADS
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= 256):
        raise PruningSuiteError(
            f"{CPU_THREADS_ENV}={inline(repr(text))} is not a thread count",
            f"set it to an integer from 1 to 256, or unset it for the default {CPU_THREADS}",
        )
    return int(text)


@contextmanager
def cpu_threads_set_to(threads: int) -> Iterator[None]:
    """Runs in the block train with ``threads`` CPU threads (``PRUNING_SUITE_CPU_THREADS`` set for
    it, then put back): how ``audit`` reruns a file with the count it recorded.

    Raises:
        PruningSuiteError: ``threads`` is not from 1 to 256.
    """
    if not 1 <= threads <= 256:
        raise PruningSuiteError(
            f"the file records {threads} CPU threads; a rerun takes 1 to 256",
            "the file was edited or made by other software: it cannot be rerun as it was made",
        )
    before = os.environ.get(CPU_THREADS_ENV)
    os.environ[CPU_THREADS_ENV] = str(threads)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CPU_THREADS_ENV, None)
        else:
            os.environ[CPU_THREADS_ENV] = before


@contextmanager
def cpu_threads_in_force(device: torch.device) -> Iterator[None]:
    """On the CPU, run the block with :func:`cpu_threads` intra-op threads (same bits whatever the
    machine's default, ``OMP_NUM_THREADS`` or ``--jobs``); the caller's count is restored after.
    ``run`` and ``base train`` train inside it.

    Raises:
        PruningSuiteError: ``PRUNING_SUITE_CPU_THREADS`` is not a thread count.
    """
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def max_batches(smoke: bool) -> int | None:
    """Batches per epoch: :data:`SMOKE_MAX_BATCHES` for a smoke run, else all (None)."""
    return SMOKE_MAX_BATCHES if smoke else None


@dataclass(frozen=True)
class RunConfig:
    """Everything that selects one run (the CLI's ``run`` flags).

    Attributes:
        plugin: Method name (entry-point name).
        protocol: Protocol id or ``.toml`` path; None = the zero-setup default.
        target: Target id; None = the protocol's default target.
        seed: Seeds pruning randomness and retraining.
        method_config: Options for the method's ``Config`` model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None = CUDA when present, else CPU.
        data_dir: Where datasets are looked for first.
        out: Root of the results database; files land in ``out/<protocol>/<method>/<run-id>.json``.
        smoke: Reduced budget (at most 2 epochs of 20 batches per phase), never rankable.
        save_model: Also write the retrained pruned model to ``<run-id>.pt`` beside the
            submission (:func:`pruning_suite.engine.checkpoint.save_pruned`; weight masks in its meta).
        retraining_epochs: Retrain for this many epochs instead of the protocol's (open
            division: the run is certified at most S2).
        retraining_lr_schedule: Retrain with this LR schedule (``"epoch:lr,..."``) instead of the
            protocol's (open division: at most S3.1).
        orthp: Re-initialize every Conv2d/Linear weight with OrthP right after pruning (arXiv 2301.05219;
            recorded as ``method.reinit = "orthp"``, part of the run id).
        jsv: Measure the mean JSV after pruning and after every retraining epoch; None = when
            the model is small enough (:func:`pruning_suite.engine.trainability.jsv_enabled_by_default`).
        regime: The training regime (:data:`Regime`); None = the method's (``"scratch"`` for a
            method with ``from_scratch``, as ``--plugin scratch``, else ``"prune"``). A filter
            method under ``"scratch"`` trains its pruned architecture from scratch, recorded as
            ``--plugin scratch --config arch_from=<method>`` (same file, same run id).
        scratch_setup: The scratch regime's budget: ``"SX-A"`` (same epochs) or ``"SX-B"``
            (same FLOPs).
        isolate: Run the pruning stage (the method's code) in a process of its own
            (:mod:`~.isolation`); False (``run --in-process``) runs it in this process, for
            debugging a method (breakpoints, prints, the conformance kit's recording hooks):
            the same bits, without the isolation's guarantees.
    """

    plugin: str
    protocol: str | None = None
    target: str | None = None
    seed: int = 0
    method_config: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    data_dir: Path | None = None
    out: Path = Path("submissions")
    smoke: bool = False
    save_model: bool = False
    retraining_epochs: int | None = None
    retraining_lr_schedule: str | None = None
    jsv: bool | None = None
    orthp: bool = False
    regime: Regime | None = None
    scratch_setup: Literal["SX-A", "SX-B"] = "SX-B"
    isolate: bool = True

    @property
    def retraining_override(self) -> dict[str, Any] | None:
        """The recipe fields this run changes (open division), or None."""
        override = {
            key: value
            for key, value in (
                ("epochs", self.retraining_epochs),
                ("lr_schedule", self.retraining_lr_schedule),
            )
            if value is not None
        }
        return override or None


@dataclass(frozen=True)
class RunResult:
    """A finished run: the submission and where it was written.

    ``kept_stored``: ``path`` already held a submission this run reproduced, and that file was
    kept (its ``created``, timings and latency are the first run's, not ``submission``'s);
    ``replaced``: one line when it held other results of this run id (e.g. made with other CPU
    threads), which this run's file replaced.
    """

    submission: Submission
    path: Path
    kept_stored: bool = False
    replaced: str | None = None


def resolve_device(requested: str | None) -> torch.device:
    """The device to run on: ``requested``, or CUDA when available, else the CPU.

    Raises:
        PruningSuiteError: ``requested`` names CUDA but none is available, or is not a device.
    """
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise PruningSuiteError(
            f"unknown device {requested!r}", "use 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if device.type not in ("cpu", "cuda"):
        raise PruningSuiteError(
            f"device type {device.type!r} is not supported", "use 'cpu', 'cuda' or 'cuda:N'"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PruningSuiteError(
            f"device {requested!r} asked for, but CUDA is not available here", "use --device cpu"
        )
    return device


def stage_recipe(retraining: TrainRecipe, epochs: int, lr_schedule: str | None) -> TrainRecipe:
    """The pruning stage's training recipe: retraining's batch size, optimizer, weight decay and
    augmentation, with the budget's ``epochs`` and ``lr_schedule`` (at least 1 epoch, so a
    0-epoch stage still has a valid recipe that is never trained)."""
    update: dict[str, Any] = {"epochs": max(epochs, 1)}
    if lr_schedule is not None:
        update["lr_schedule"] = lr_schedule
    return retraining.model_copy(update=update)


def stage_epochs(
    protocol: ComparisonProtocol, retraining: TrainRecipe, smoke: bool
) -> tuple[int, TrainRecipe]:
    """``E``, the stage's epochs: the protocol's ``pruning_budget.epochs`` for every method alike
    (S4.2: one-shot and training-aware methods at the same budget), cut to the smoke budget;
    and the recipe the stage trains with (:func:`stage_recipe`)."""
    epochs = protocol.pruning_budget.epochs
    recipe = budget(stage_recipe(retraining, epochs, protocol.pruning_budget.lr_schedule), smoke)
    return min(epochs, recipe.epochs), recipe
