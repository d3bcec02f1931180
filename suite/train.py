"""The suite's own training loop: base-model training and retraining share it.

Methods never run this loop themselves, so in the closed division every method is retrained with
exactly the protocol's recipe (Wang et al., arXiv 2301.05219, setups S3.1/S3.2). SGD with the
protocol's momentum, weight decay and piecewise-constant LR schedule; cross-entropy loss; data
shuffled by a generator seeded from the run's seed, so the same seed gives the same numbers on
the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import DataSplits, Split, augment
from .errors import TrainingError
from .protocol import TrainRecipe

__all__ = ["EpochStats", "evaluate", "train", "training_step"]

EVAL_BATCH_SIZE = 1000


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

    Args:
        model: Any classifier mapping ``[B, C, H, W]`` to logits ``[B, K]``.
        split: Inputs and labels on the model's device.
        batch_size: Examples per forward pass.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = model(split.inputs[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == split.labels[start : start + batch_size]).sum())
    model.train(was_training)
    return 100.0 * correct / max(len(split), 1)


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
    unstructured pruning masks re-applied, momentum of pruned weights zeroed).

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
    loss = loss_fn(model(inputs), labels)
    if not torch.isfinite(loss):
        raise TrainingError(
            f"training diverged: the loss is {float(loss.detach())} "
            f"(LR {optimizer.param_groups[0]['lr']:g})",
            "the recipe's learning rate is too large for this model, or the inputs are broken; "
            "nothing was cached or written",
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if after_step is not None:
        after_step()
    return float(loss.detach())


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    recipe: TrainRecipe,
    generator: torch.Generator,
    max_batches: int | None,
    normalization: tuple[tuple[float, ...], tuple[float, ...]],
    after_step: Callable[[], None] | None = None,
) -> float:
    model.train()
    mean, std = normalization
    order = torch.randperm(len(split), generator=generator).to(split.inputs.device)
    total_loss, seen = 0.0, 0
    for batch_index, start in enumerate(range(0, len(split), recipe.batch_size)):
        if max_batches is not None and batch_index >= max_batches:
            break
        idx = order[start : start + recipe.batch_size]
        inputs = augment(split.inputs[idx], recipe.augmentation, generator, mean=mean, std=std)
        total_loss += training_step(
            model, optimizer, inputs, split.labels[idx], after_step=after_step
        ) * len(idx)
        seen += len(idx)
    return total_loss / max(seen, 1)


def train(
    model: nn.Module,
    data: DataSplits,
    recipe: TrainRecipe,
    seed: int,
    on_epoch: Callable[[EpochStats], None] | None = None,
    max_batches: int | None = None,
    normalization: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0,), (1.0,)),
    after_step: Callable[[torch.optim.Optimizer], None] | None = None,
) -> list[EpochStats]:
    """Train ``model`` in place with ``recipe`` and log every epoch.

    Args:
        model: The model, already on the data's device.
        data: Train, validation and test splits; only ``train`` is trained on.
        recipe: Epochs, batch size, SGD hyper-parameters, LR schedule, augmentation.
        seed: Seeds the shuffling and augmentation generator (CPU ``torch.Generator``).
        on_epoch: Called with each epoch's row after the epoch is evaluated.
        max_batches: Stop each epoch after this many batches (smoke runs only).
        normalization: The dataset's per-channel ``(mean, std)``; random-crop padding fills with
            the normalized value of a zero pixel, ``(0 - mean) / std``, as torchvision pads raw images.
        after_step: Called with the optimizer after every optimizer step (e.g.
            ``lambda opt: masks.enforce(model, opt)`` keeps unstructured pruning masks and the
            momentum of pruned weights at zero through retraining).

    Returns:
        One :class:`EpochStats` per epoch; the last one is the reported result.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr_at(0),
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    step_hook = None if after_step is None else (lambda: after_step(optimizer))
    log: list[EpochStats] = []
    for epoch in range(recipe.epochs):
        lr = recipe.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = _train_epoch(
            model, optimizer, data.train, recipe, generator, max_batches, normalization, step_hook
        )
        row = EpochStats(epoch, lr, loss, evaluate(model, data.val), evaluate(model, data.test))
        log.append(row)
        if on_epoch is not None:
            on_epoch(row)
    model.eval()
    return log
