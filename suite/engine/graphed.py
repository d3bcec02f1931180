"""The training step as one CUDA graph: forward, loss, backward and the SGD update of a full batch,
replayed with one launch (PyTorch's "CUDA Graphs" notes, whole-network capture).

Issue 13 measured the suite's ResNet-56 retraining loop on an H200 at 28 ms per batch-128 step,
bound by kernel launches and host work, not by the GPU: every step launches several hundred small
kernels (bf16 casts, convolutions, BatchNorm, the optimizer's updates). A CUDA graph records
them once and replays them from the GPU's side.

The recipe is unchanged: the same batches (gathered and augmented eagerly from the run's CPU
generator, then copied into the graph's input), the same kernels on the same tensors, updated in
place, so BatchNorm statistics and SGD's momentum carry over between graphed and eager steps.
Capturing needs warm-up steps; they run on a copy of the state that is put back before capture,
so no update is taken twice. The graph is captured again when the LR changes (it is baked into
the SGD update) or the batch's shape or layout does.

What stays eager: the first step of every :func:`~.train.train` call (it creates SGD's momentum
buffers), an epoch's last partial batch (another shape), and ``after_step`` (masks re-imposed
after each update). Not used with a ``before_step`` hook (a regularizer adding to the gradients
between backward and update), with ``torch.compile``, inside a ``torchrun`` world, or off CUDA.
A model with dropout would draw other random numbers than eager steps do (none of the suite's
architectures has dropout).

Opt-in until measured on a GPU: ``PRUNING_SUITE_CUDA_GRAPHS=1`` (``0`` or unset: eager), or
``train(cuda_graphs=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from ..data import fastpath
from ..errors import PruningSuiteError
from . import distributed

__all__ = ["CUDA_GRAPHS_ENV", "WARMUP_STEPS", "GraphedStep", "cuda_graphs_wanted"]

CUDA_GRAPHS_ENV = "PRUNING_SUITE_CUDA_GRAPHS"
"""``1`` turns graphed training steps on for CUDA runs, ``0`` or unset leaves them off."""

WARMUP_STEPS = 3
"""Steps run (on a copy of the state) before each capture, as PyTorch's notes advise."""

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cuda_graphs_wanted(
    requested: bool | None, device: torch.device, before_step: object | None, compiled: bool
) -> bool:
    """Whether a :func:`~.train.train` call replays its steps as CUDA graphs.

    Args:
        requested: The caller's choice; None reads :data:`CUDA_GRAPHS_ENV`.
        device: Where the training data lives.
        before_step: The call's ``before_step`` hook (graphs cannot run code mid-step).
        compiled: Whether the model is trained through ``torch.compile``.

    Returns:
        True only on CUDA, asked for, with no ``before_step`` hook, not compiled, in one process
        (not inside a ``torchrun`` world: :func:`~.distributed.world_size`).

    Raises:
        PruningSuiteError: :data:`CUDA_GRAPHS_ENV` is neither ``0``, ``1`` nor empty.
    """
    if requested is None:
        requested = _from_environment()
    return (
        requested
        and device.type == "cuda"
        and before_step is None
        and not compiled
        and distributed.world_size() == 1
    )


def _from_environment() -> bool:
    text = os.environ.get(CUDA_GRAPHS_ENV, "").strip()
    if text not in ("", "0", "1"):
        raise PruningSuiteError(
            f"{CUDA_GRAPHS_ENV}={text!r} is neither 0 nor 1",
            f"set {CUDA_GRAPHS_ENV}=1 to replay training steps as CUDA graphs, 0 or unset not to",
        )
    return text == "1"


class GraphedStep:
    """One model's training step, captured as a CUDA graph and replayed for every full batch.

    Args:
        model: The model in train mode on CUDA (its layout already set: the graph records the
            addresses of its parameters, so they must not be replaced while this step lives).
        optimizer: Its SGD optimizer.
        loss_fn: ``loss_fn(logits [B, K], labels [B])`` -> scalar.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Loss) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.captured_for: tuple[object, ...] | None = None
        self.inputs = self.labels = self.loss = torch.empty(0)
        self.kept: list[torch.Tensor] = []  # the gradients the graph writes
        self.has_state = False

    def fits(self, inputs: torch.Tensor, batch_size: int) -> bool:
        """Whether this batch is replayed: a full batch once the optimizer has its state (the
        first step of a fresh SGD with momentum creates it, eagerly)."""
        if inputs.shape[0] != batch_size:
            return False
        if not self.has_state:  # checked until true: the state, once made, stays
            momentum = any(group.get("momentum", 0) for group in self.optimizer.param_groups)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            state = self.optimizer.state
            self.has_state = not momentum or all("momentum_buffer" in state[p] for p in params)
        return self.has_state

    def __call__(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One update on ``(inputs [B, ...], labels [B])``; returns the batch loss (a tensor the
        next call overwrites: use it before then)."""
        lr = tuple(group["lr"] for group in self.optimizer.param_groups)
        shape = (tuple(inputs.shape), inputs.stride(), tuple(labels.shape), lr)
        if shape != self.captured_for:
            self._capture(inputs, labels)
            self.captured_for = shape
        self.inputs.copy_(inputs)
        self.labels.copy_(labels)
        assert self.graph is not None
        self.graph.replay()
        return self.loss

    def _state(self) -> list[torch.Tensor]:
        """Every tensor a step changes: parameters, buffers and optimizer state tensors."""
        state = [*self.model.parameters(), *self.model.buffers()]
        for per_param in self.optimizer.state.values():
            state += [value for value in per_param.values() if isinstance(value, torch.Tensor)]
        return state

    def _step(self, zero_grad: bool) -> torch.Tensor:
        if zero_grad:
            self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=fastpath.AUTOCAST_DTYPE, cache_enabled=False):
            loss = self.loss_fn(self.model(self.inputs), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _capture(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        """Warm up on a copy of the state (put back after), then record one step."""
        self.graph = None  # free the graph of the last LR first
        self.inputs, self.labels = torch.empty_like(inputs), torch.empty_like(labels)
        self.inputs.copy_(inputs)
        self.labels.copy_(labels)
        state = self._state()
        saved = [tensor.detach().clone() for tensor in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                self._step(zero_grad=True)
        torch.cuda.current_stream().wait_stream(side)
        with torch.no_grad():
            for tensor, value in zip(state, saved, strict=True):
                tensor.copy_(value)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.loss = self._step(zero_grad=False)
        self.graph = graph
        self.kept = [p.grad for p in self.model.parameters() if p.grad is not None]
