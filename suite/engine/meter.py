"""Counting the compute a method's own code spends: examples passed forward with gradients, and
optimizer steps.

The suite hands a method its data (calibration batches) and runs the pruning stage's training
itself, so it can count both. A method could still train on its own inside ``score()`` (the
network-slimming-style plugin of issue 12 ran 300 SGD steps there and was certified S4.2 with a
0-epoch pruning stage). :class:`ComputeMeter` watches every module and optimizer of the process
while method code runs, through torch's GLOBAL hooks, which also see deep copies of the model and
models the method builds itself:

- ``grad_samples``: examples of every OUTERMOST module call made with gradients enabled (a call
  of ``model(x)`` or ``model(x=x)`` counts ``x.shape[0]`` once, not once per layer);
- ``optimizer_steps``: ``optimizer.step()`` calls of any ``torch.optim.Optimizer``.

R-STAGE-3 certifies both against the protocol's ``pruning_budget`` (Wang et al., arXiv
2301.05219, setups S4.1 / S4.2: the pruning stage's compute is part of what is held equal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.optim import optimizer as optimizer_hooks

__all__ = ["ComputeMeter"]


@dataclass
class ComputeMeter:
    """Running totals of compute spent in method code (counted only inside :meth:`watch`).

    Attributes:
        grad_samples: Examples passed through an outermost module call with gradients enabled.
        forward_samples: Examples passed through an outermost module call, with or without.
        optimizer_steps: ``step()`` calls of any torch optimizer.
    """

    grad_samples: int = 0
    forward_samples: int = 0
    optimizer_steps: int = 0

    @contextmanager
    def watch(self) -> Iterator[ComputeMeter]:
        """Count while the block runs (global hooks, removed on exit even on error).

        Not thread-safe: a method that trains in another thread escapes the count.
        """
        depth, batch = [0], [0]

        def pre(module: nn.Module, args: tuple[Any, ...]) -> None:
            # an outermost call's batch: its first positional tensor, else (``model(x=...)``)
            # that of the first module inside it that gets one
            if batch[0] == 0:
                batch[0] = _batch_size(args)
            depth[0] += 1

        def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            depth[0] = max(depth[0] - 1, 0)
            if depth[0] == 0:
                self.forward_samples += batch[0]
                if torch.is_grad_enabled():
                    self.grad_samples += batch[0]
                batch[0] = 0

        def step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            self.optimizer_steps += 1

        handles = (
            module_hooks.register_module_forward_pre_hook(pre),
            module_hooks.register_module_forward_hook(post, always_call=True),
            optimizer_hooks.register_optimizer_step_pre_hook(step),
        )
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def _batch_size(args: tuple[Any, ...]) -> int:
    """Leading dimension of the first tensor argument (0 when there is none)."""
    for arg in args:
        if isinstance(arg, torch.Tensor):
            return int(arg.shape[0]) if arg.dim() else 1
    return 0
