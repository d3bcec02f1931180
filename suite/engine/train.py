"""The suite's own training loop: base-model training and retraining share it.

Methods never run this loop themselves, so in the closed division every method is retrained with
exactly the protocol's recipe (Wang et al., arXiv 2301.05219, setups S3.1/S3.2). SGD with the
protocol's momentum, weight decay and piecewise-constant LR schedule; cross-entropy loss; data
shuffled by a generator seeded from the run's seed, so the same seed gives the same numbers on
the CPU.

The data stays on its device: each batch is gathered, normalized and augmented there
(:meth:`Split.batch`, :func:`augment`). On CUDA the forward passes run under bf16 autocast in
channels_last format, and the loop does not wait for the GPU between steps (a diverged loss is
reported at the end of its epoch), and can replay each full batch's step as one CUDA graph
(:mod:`pruning_suite.engine.graphed`, opt-in); on the CPU it is fp32 and checks every step
(:mod:`pruning_suite.data.fastpath`). Inside :func:`~.distributed.joined` (``torchrun``) the
training is data-parallel, with the update of one process (:mod:`pruning_suite.engine.distributed`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..data import fastpath
from ..data.datasets import DataSplits, Split, augment
from ..errors import TrainingError
from ..protocol.spec import TrainRecipe
from . import distributed
from .graphed import GraphedStep, cuda_graphs_wanted
from .resume import EpochCheckpoint, fingerprint

__all__ = [
    "BATCH_REPORT_S",
    "EpochEvaluator",
    "EpochObserver",
    "EpochStats",
    "evaluate",
    "train",
    "training_step",
]

EVAL_BATCH_SIZE = 1000

Normalization = tuple[tuple[float, ...], tuple[float, ...]]

BATCH_REPORT_S = 1.0
"""Within an epoch, progress is reported at most once per this many seconds of wall time."""


@dataclass(frozen=True)
class EpochObserver:
    """An ``on_epoch`` callback of :func:`train` that also hears progress within an epoch.

    Attributes:
        on_epoch: Called with each epoch's row.
        on_batches: Called with ``(batches done, batches per epoch)`` of the running epoch, at
            most once per :data:`BATCH_REPORT_S` seconds (a long epoch's bar moves; no GPU sync).
    """

    on_epoch: Callable[[EpochStats], None]
    on_batches: Callable[[int, int], None] | None = None

    def __call__(self, row: EpochStats) -> None:
        self.on_epoch(row)


EpochEvaluator = Callable[[nn.Module], tuple[float, float]]
"""Gives a trained epoch's ``(val_top1, test_top1)`` in percent; the pruning stage's process uses
one that asks the runner (it holds no val or test examples)."""


@dataclass(frozen=True)
class EpochStats:
    """One epoch's log row. Accuracies are top-1 in percent; ``epoch`` is 0-based in its phase."""

    epoch: int
    lr: float
    train_loss: float
    val_top1: float
    test_top1: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Top-1 accuracy of ``model`` on ``split``, in percent, in eval mode.

    On CUDA the forward passes run under bf16 autocast in channels_last format.

    Args:
        model: Any classifier mapping ``[B, C, H, W]`` to logits ``[B, K]``.
        split: Images and labels on the model's device: a :class:`Split`, or an image-folder
            split with ``eval_batches(batch_size)`` (``pruning_suite.data.imagefolder.FolderSplit``).
        batch_size: Examples per forward pass.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.device)
    with fastpath.device_layout(model, split.device), fastpath.autocast(split.device):
        for inputs, labels in _eval_batches(split, batch_size):
            logits = model(fastpath.with_device_layout(inputs))
            correct += (logits.argmax(dim=1) == labels).sum()
    model.train(was_training)
    return 100.0 * int(correct) / max(len(split), 1)


def _eval_batches(split: Split, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, labels)`` of every example in stored order, on the split's device."""
    if hasattr(split, "eval_batches"):  # an image folder: decoded by DataLoader workers
        yield from split.eval_batches(batch_size)
        return
    for start in range(0, len(split), batch_size):
        window = slice(start, start + batch_size)
        yield split.batch(window), split.labels[window]


def training_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    after_step: Callable[[], None] | None = None,
) -> float:
    """One optimizer step: forward, loss, backward, ``optimizer.step()``, then ``after_step``.

    ``after_step`` is where constraints that must survive every update are re-imposed (e.g.
    unstructured pruning masks re-applied, momentum of pruned weights zeroed). On CUDA the
    forward pass and loss run under bf16 autocast.

    Args:
        model: The model in train mode.
        optimizer: Its optimizer, LR already set.
        inputs: A batch, e.g. ``[B, C, H, W]``.
        labels: ``[B]`` class indices (or whatever ``loss_fn`` takes).
        loss_fn: ``loss_fn(outputs, labels)`` -> scalar; cross-entropy by default.
        after_step: Called right after ``optimizer.step()``.

    Returns:
        The batch loss.

    Raises:
        TrainingError: The loss is not finite (training diverged).
    """
    return float(_update(model, optimizer, inputs, labels, loss_fn, after_step, check=True))


def _update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    after_step: Callable[[], None] | None,
    check: bool,
    before_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """:func:`training_step` returning the detached loss; ``check=False`` skips the finite check.

    ``before_step`` runs after ``loss.backward()`` and before ``optimizer.step()`` (a
    pruning-stage regularizer adds to the gradients there)."""
    with fastpath.autocast(inputs.device):
        loss = loss_fn(model(inputs), labels)
    if check:
        _check_finite(loss, optimizer)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if before_step is not None:
        before_step()
    optimizer.step()
    if after_step is not None:
        after_step()
    return loss.detach()


def _check_finite(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    if not torch.isfinite(loss):
        raise TrainingError(
            f"training diverged: the loss is {float(loss.detach())} "
            f"(LR {optimizer.param_groups[0]['lr']:g})",
            "the recipe's learning rate is too large for this model, or the inputs are broken; "
            "nothing was cached or written",
        )


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    recipe: TrainRecipe,
    generator: torch.Generator,
    max_batches: int | None,
    normalization: Normalization,
    after_step: Callable[[], None] | None = None,
    before_step: Callable[[], None] | None = None,
    on_batches: Callable[[int, int], None] | None = None,
    graphed: GraphedStep | None = None,
) -> tuple[float, int]:
    """One epoch; returns the mean training loss over the examples seen, and their number.

    The loss is summed on the device in float64 (bit-identical to summing Python floats), so
    on CUDA no step waits for the GPU; the CPU checks each step's loss, CUDA the epoch's sum.
    A full batch goes through ``graphed`` when given (then ``after_step`` follows it).
    """
    model.train()
    check_each_step = split.device.type != "cuda"
    total = torch.zeros((), dtype=torch.float64, device=split.device)
    seen, report = 0, _BatchReport(on_batches, split, recipe.batch_size, max_batches)
    for inputs, labels in _training_batches(split, recipe, generator, max_batches, normalization):
        report.batch()
        inputs = fastpath.with_device_layout(inputs)
        if graphed is not None and graphed.fits(inputs, recipe.batch_size):
            loss = graphed(inputs, labels)
            if after_step is not None:
                after_step()
        else:
            loss = _update(
                model, optimizer, inputs, labels, F.cross_entropy, after_step, check_each_step,
                before_step,
            )  # fmt: skip
        total += loss.double() * len(labels)
        seen += len(labels)
    total, seen = distributed.summed(total, seen)
    _check_finite(total, optimizer)
    return float(total) / max(seen, 1), seen


class _BatchReport:
    """Calls ``on_batches(done, per_epoch)`` at most once per :data:`BATCH_REPORT_S` seconds."""

    def __init__(
        self,
        on_batches: Callable[[int, int], None] | None,
        split: Split,
        size: int,
        cap: int | None,
    ) -> None:
        self.on_batches, self.done, self.last = on_batches, 0, time.monotonic()
        self.total = min(-(-len(split) // size), cap or sys.maxsize)

    def batch(self) -> None:
        if self.on_batches is None:
            return
        self.done, now = self.done + 1, time.monotonic()
        if now - self.last >= BATCH_REPORT_S:
            self.last = now
            self.on_batches(self.done - 1, self.total)  # batches finished before this one


def _training_batches(
    split: Split,
    recipe: TrainRecipe,
    generator: torch.Generator,
    max_batches: int | None,
    normalization: Normalization,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled epoch of augmented ``(inputs, labels)`` batches on the split's device.

    A :class:`Split` is gathered, normalized and augmented on its device; draws from
    ``generator``: ``randperm(N)``, then each batch's :func:`augment` draws. An image-folder
    split (``train_batches``, ``pruning_suite.data.imagefolder.FolderSplit``) decodes and augments
    in DataLoader workers and draws as it documents.
    """
    if hasattr(split, "train_batches"):
        flip = recipe.augmentation.horizontal_flip
        shard = distributed.batch_shard()
        yield from split.train_batches(recipe.batch_size, generator, flip, max_batches, **shard)
        return
    mean, std = (split.mean, split.std) if split.mean else normalization
    order = fastpath.to_device(torch.randperm(len(split), generator=generator), split.device)
    for batch_index, start in enumerate(range(0, len(split), recipe.batch_size)):
        if max_batches is not None and batch_index >= max_batches:
            return
        idx = order[start : start + recipe.batch_size]
        inputs = augment(split.batch(idx), recipe.augmentation, generator, mean=mean, std=std)
        yield distributed.local_part(inputs, split.labels[idx])


def train(
    model: nn.Module,
    data: DataSplits,
    recipe: TrainRecipe,
    seed: int,
    on_epoch: Callable[[EpochStats], None] | None = None,
    max_batches: int | None = None,
    normalization: Normalization = ((0.0,), (1.0,)),
    after_step: Callable[[torch.optim.Optimizer], None] | None = None,
    compile_model: bool = False,
    before_step: Callable[[], None] | None = None,
    epochs: range | None = None,
    seen: list[int] | None = None,
    checkpoint: EpochCheckpoint | None = None,
    evaluate_epoch: EpochEvaluator | None = None,
    cuda_graphs: bool | None = None,
) -> list[EpochStats]:
    """Train ``model`` in place with ``recipe`` and log every epoch.

    Args:
        model: The model, already on the data's device.
        data: Train, validation and test splits; only ``train`` is trained on.
        recipe: Epochs, batch size, SGD hyper-parameters, LR schedule, augmentation.
        seed: Seeds the shuffling and augmentation generator (CPU ``torch.Generator``).
        on_epoch: Called with each epoch's row after the epoch is evaluated; an
            :class:`EpochObserver` also hears the batches done within an epoch.
        max_batches: Stop each epoch after this many batches (smoke runs only).
        normalization: Per-channel ``(mean, std)`` of a split of ready (normalized) inputs (one
            that stores pixels brings its own); crops pad with ``(0 - mean) / std``.
        after_step: Called with the optimizer after every step (weight masks re-imposed).
        compile_model: Train and evaluate through ``torch.compile(model)`` (same parameters).
        before_step: Called after every ``loss.backward()``, before ``optimizer.step()``.
        epochs: Train only these 0-based epochs of the recipe (fresh optimizer); default all.
        seen: When given, each epoch's number of training examples is appended to it.
        checkpoint: Save every epoch's end there, and first resume from it when it holds epochs
            of this very start (:mod:`pruning_suite.engine.resume`; bit-identical on the CPU).
        evaluate_epoch: Gives each epoch's (val, test) top-1; default :func:`evaluate` of both.
        cuda_graphs: Replay full batches' steps as CUDA graphs (:mod:`~.graphed`; None: its env).

    Returns:
        One :class:`EpochStats` per epoch; the last one is the reported result.

    Raises:
        TrainingError: The loss is not finite (on CUDA: at the end of the epoch it diverged in).
    """
    seen = [] if seen is None else seen
    generator, optimizer = torch.Generator().manual_seed(seed), _optimizer(model, recipe)
    run = _Epochs(model, data, recipe, generator, optimizer, seen, len(seen), checkpoint)
    todo = run.todo(seed, epochs, max_batches, normalization)
    run.evaluate_epoch, step_hook = evaluate_epoch, after_step and (lambda: after_step(optimizer))
    run.on_batches = on_epoch.on_batches if isinstance(on_epoch, EpochObserver) else None
    graphs = cuda_graphs_wanted(cuda_graphs, data.train.device, before_step, compile_model)
    with run.training(compile_model, graphs) as runner:
        for epoch in todo:
            row = run.epoch(runner, epoch, max_batches, normalization, step_hook, before_step)
            if on_epoch is not None:
                on_epoch(row)
            run.save()
    model.eval()
    return run.log


@dataclass
class _Epochs:
    """One :func:`train` call's state between epochs, and its checkpoint."""

    model: nn.Module
    data: DataSplits
    recipe: TrainRecipe
    generator: torch.Generator
    optimizer: torch.optim.Optimizer
    seen: list[int]
    first: int  # this call's epochs start at seen[first]
    checkpoint: EpochCheckpoint | None
    stamp: str = ""
    log: list[EpochStats] = field(default_factory=list)
    evaluate_epoch: EpochEvaluator | None = None
    on_batches: Callable[[int, int], None] | None = None
    graphed: GraphedStep | None = None

    def epoch(
        self,
        runner: nn.Module,
        epoch: int,
        max_batches: int | None,
        normalization: Normalization,
        step_hook: Callable[[], None] | None,
        before_step: Callable[[], None] | None,
    ) -> EpochStats:
        """Train and evaluate one epoch; log its row."""
        optimizer, data = self.optimizer, self.data
        lr = _set_lr(optimizer, self.recipe.lr_at(epoch))
        loss, examples = _train_epoch(
            runner, optimizer, data.train, self.recipe, self.generator, max_batches,
            normalization, step_hook, before_step, self.on_batches, self.graphed,
        )  # fmt: skip
        self.seen.append(examples)
        evaluator = self.evaluate_epoch or distributed.epoch_evaluator(data, evaluate)
        if evaluator is None:
            val, test = evaluate(runner, data.val), evaluate(runner, data.test)
        else:
            val, test = evaluator(self.model)
        self.log.append(EpochStats(epoch, lr, loss, val, test))
        return self.log[-1]

    def todo(
        self, seed: int, epochs: range | None, max_batches: int | None, normalization: Normalization
    ) -> list[int]:
        """The epochs to train: ``epochs`` (default all) less those the checkpoint restores (the
        same number on every rank of a torchrun world)."""
        todo = list(range(self.recipe.epochs) if epochs is None else epochs)
        if self.checkpoint is None:
            return todo
        return todo[distributed.agreed(self.resume(seed, todo, max_batches, normalization)) :]

    @contextmanager
    def training(self, compile_model: bool, graphs: bool) -> Iterator[nn.Module]:
        """The module to train through: channels_last on CUDA, compiled when asked, and
        data-parallel in a torchrun world (:func:`~.distributed.data_parallel`); with ``graphs``,
        its steps replayed as CUDA graphs in the block (:class:`~.graphed.GraphedStep`)."""
        with (
            fastpath.device_layout(self.model, self.data.train.device),
            distributed.data_parallel(fastpath.compiled(self.model, compile_model)) as runner,
        ):
            self.graphed = GraphedStep(runner, self.optimizer, F.cross_entropy) if graphs else None
            try:
                yield runner
            finally:
                self.graphed = None  # its graph holds the layout's parameter addresses

    def resume(
        self, seed: int, todo: list[int], max_batches: int | None, normalization: Normalization
    ) -> int:
        """Fingerprint this start and restore from the checkpoint; returns how many epochs it
        holds (0: none, or another start's)."""
        assert self.checkpoint is not None
        where = (getattr(self.data, "sha256", None), self.data.train.device.type)
        recipe = self.recipe.model_dump_json()
        self.stamp = fingerprint(self.model, recipe, seed, todo, max_batches, normalization, where)
        resumed = self.checkpoint.resume(self.stamp, self.model, self.optimizer, self.generator)
        if resumed is None:
            return 0
        self.log = [EpochStats(**row) for row in resumed.log]
        self.seen.extend(resumed.seen)
        return len(self.log)

    def save(self) -> None:
        """Write the checkpoint after the epoch just logged (nothing without one)."""
        if self.checkpoint is None or not distributed.is_main():
            return
        rows, seen = [row.as_dict() for row in self.log], self.seen[self.first :]
        self.checkpoint.save(self.stamp, self.model, self.optimizer, self.generator, rows, seen)


def _optimizer(model: nn.Module, recipe: TrainRecipe) -> torch.optim.SGD:
    """SGD with the recipe's momentum, weight decay and Nesterov flag, at the first epoch's LR."""
    return torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr_at(0),
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float:
    """Set every parameter group's learning rate to ``lr``; returns it."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
