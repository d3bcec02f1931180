"""The paper's piecewise-constant LR-schedule notation, ``epoch:lr,epoch:lr,...``.

Epochs are counted from the start of the phase (retraining, base training), as in Wang et al.
(arXiv 2301.05219) and arXiv 2301.05219: ``0:0.01,30:0.001,60:0.0001`` means LR 0.01 for epochs 0-29,
0.001 for 30-59 and 0.0001 from epoch 60 on.
"""

from __future__ import annotations

import math

__all__ = ["MAX_EPOCHS", "format_schedule", "lr_at", "parse_schedule", "stage_ranges"]

MAX_EPOCHS = 100_000
"""The largest epoch count (and LR-stage epoch) any phase may name: more is a typo or an attack
(10**26 epochs would train forever), never a recipe."""


def parse_schedule(text: str) -> tuple[tuple[int, float], ...]:
    """Parse ``epoch:lr,...`` into ``((epoch, lr), ...)``.

    Args:
        text: The schedule, e.g. ``"0:0.01,60:0.001"``.

    Returns:
        The stages, first epoch 0, epochs strictly increasing, every LR finite and > 0.

    Raises:
        ValueError: On any other form; the message quotes the offending part.
    """
    stages: list[tuple[int, float]] = []
    for part in text.replace(" ", "").split(","):
        epoch_text, sep, lr_text = part.partition(":")
        if not sep:
            raise ValueError(
                f"LR stage {part!r} is not of the form 'epoch:lr' (e.g. '0:0.01,30:0.001')"
            )
        try:
            epoch, lr = int(epoch_text), float(lr_text)
        except ValueError as err:
            raise ValueError(
                f"LR stage {part!r}: epoch must be an integer and lr a number"
            ) from err
        if not 0 <= epoch <= MAX_EPOCHS:
            raise ValueError(f"LR stage {part!r}: the epoch must lie in [0, {MAX_EPOCHS:,}]")
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"LR stage {part!r}: the learning rate must be a finite number > 0")
        if stages and epoch <= stages[-1][0]:
            raise ValueError(f"LR stage {part!r}: epochs must strictly increase")
        stages.append((epoch, lr))
    if not stages or stages[0][0] != 0:
        raise ValueError(f"LR schedule {text!r} must start at epoch 0, e.g. '0:0.01,30:0.001'")
    return tuple(stages)


def format_schedule(stages: tuple[tuple[int, float], ...]) -> str:
    """Write stages back in the paper's notation (``0:0.01,30:0.001``)."""
    return ",".join(f"{epoch}:{lr:g}" for epoch, lr in stages)


def lr_at(stages: tuple[tuple[int, float], ...], epoch: int) -> float:
    """The LR in force during ``epoch`` (0-based, counted from the start of the phase)."""
    lr = stages[0][1]
    for start, stage_lr in stages:
        if epoch >= start:
            lr = stage_lr
    return lr


def stage_ranges(stages: tuple[tuple[int, float], ...], epochs: int) -> list[range]:
    """The epochs of each LR stage that falls inside a phase of ``epochs`` epochs.

    The first range is the "first LR stage" over which the paper averages trainability accuracy.
    """
    bounds = [start for start, _ in stages if start < epochs] + [epochs]
    return [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
