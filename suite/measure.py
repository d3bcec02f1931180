"""Counting a model's size and cost: parameters, MACs and FLOPs, cross-checked two ways.

Units, used everywhere in pruning-suite (Wang et al., arXiv 2301.05219, Sec. 4 ask papers to say
which one they report):

- **MACs**: multiply-accumulate operations for ONE example (batch of 1) in eval mode;
- **FLOPs**: ``2 * MACs`` (one multiply plus one add per MAC). Never call one by the other's name.

Only multiply-accumulates of convolutions and matrix products count (what
``torch.utils.flop_counter.FlopCounterMode`` counts); BatchNorm, activations, pooling, adds and
biases are free. MACs are ``FlopCounterMode``'s total // 2, and are checked against a second,
independent counter that reads the real output shapes of every Conv and Linear module:

- per layer: for every ``nn.Conv1d/2d/3d`` (not transposed) and ``nn.Linear``, the MACs from
  its output shape and the MACs ``FlopCounterMode`` counted during its forward must agree EXACTLY
  (relative tolerance 0);
- in total: ``FlopCounterMode`` may only count MORE than the module counter, the excess being
  matrix products outside Conv/Linear modules (e.g. attention's ``bmm``); for a pure conv/linear
  net the two totals are equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import VerificationError
from .pruning import count_params

__all__ = ["Counts", "count_macs", "measure"]


@dataclass(frozen=True)
class Counts:
    """A model's size and cost for one example.

    Attributes:
        params: Parameters (shared tensors once; buffers excluded).
        macs: Multiply-accumulates per example (batch of 1).
        flops: Floating-point operations per example, ``2 * macs``.
    """

    params: int
    macs: int
    flops: int


def measure(model: nn.Module, input_shape: Sequence[int]) -> Counts:
    """Parameters, MACs and FLOPs of ``model`` for one example of ``input_shape``.

    Args:
        model: The model (dense or pruned); its train/eval mode is restored afterwards.
        input_shape: One example's shape without the batch dimension, e.g. ``(C, H, W)``.

    Returns:
        :class:`Counts` with ``flops == 2 * macs``.

    Raises:
        VerificationError: The two MAC counters disagree (see :func:`count_macs`).
    """
    macs = count_macs(model, input_shape)
    return Counts(params=count_params(model), macs=macs, flops=2 * macs)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass on one example, cross-checked per layer.

    Runs ``model`` once in eval mode without gradients on zeros of shape ``[1, *input_shape]``
    (on the model's device and dtype) under ``FlopCounterMode``, with forward hooks on every
    Conv and Linear module counting MACs from the real output shapes:

    - Conv (not transposed): ``out_channels * out_h * out_w * (in_channels / groups) * kh * kw``
      (generalised to any number of spatial dimensions);
    - Linear: ``in_features * out_features`` per output row.

    Args:
        model: The model; its train/eval mode (per module) is restored afterwards.
        input_shape: One example's shape without the batch dimension, e.g. ``(C, H, W)``.

    Returns:
        MACs per example (``FlopCounterMode`` total FLOPs // 2).

    Raises:
        VerificationError: For some Conv/Linear module the two counters differ at all, or
            ``FlopCounterMode``'s total is below the module counter's.
    """
    per_module, total_flops = _count(model, input_shape)
    for name, (from_shapes, from_counter) in per_module.items():
        if from_shapes != from_counter:
            raise VerificationError(
                f"MAC counters disagree on layer {name!r}: output shapes give {from_shapes:,}, "
                f"FlopCounterMode {from_counter:,}",
                "report a bug with the model definition",
            )
    layers_total = sum(from_shapes for from_shapes, _ in per_module.values())
    if total_flops // 2 < layers_total:
        raise VerificationError(
            f"FlopCounterMode counts {total_flops // 2:,} MACs in all, fewer than the Conv/Linear "
            f"layers' {layers_total:,}",
            "report a bug with the model definition",
        )
    return total_flops // 2


def _count(model: nn.Module, input_shape: Sequence[int]) -> tuple[dict[str, list[int]], int]:
    """One eval forward pass under ``FlopCounterMode`` with hooks on every Conv/Linear module.

    Returns:
        Module name -> ``[MACs from output shapes, MACs FlopCounterMode counted inside it]``, and
        ``FlopCounterMode``'s total FLOPs.
    """
    counter = FlopCounterMode(display=False)
    per_module: dict[str, list[int]] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (
            isinstance(module, nn.modules.conv._ConvNd) and not module.transposed
        ):
            pre, post = _hooks(name, counter, per_module)
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    modes = {module: module.training for module in model.modules()}
    param = next(model.parameters(), None)
    floating = param is not None and param.is_floating_point()
    example = torch.zeros(
        1,
        *input_shape,
        device=param.device if param is not None else None,
        dtype=param.dtype if floating else None,
    )
    try:
        model.eval()
        with torch.no_grad(), counter:
            model(example)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.train(training)
    return per_module, counter.get_total_flops()


def _hooks(name: str, counter: FlopCounterMode, per_module: dict[str, list[int]]):
    """Forward pre-/post-hooks adding one call's MACs, both ways, to ``per_module[name]``.

    The counter's share is the growth of its running total during the module's forward.
    """
    started: list[int] = []

    def pre(module: nn.Module, inputs: tuple) -> None:
        started.append(counter.get_total_flops())

    def post(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features
        else:
            kernel = math.prod(module.kernel_size)
            macs = output.numel() * (module.in_channels // module.groups) * kernel
        counts = per_module.setdefault(name, [0, 0])
        counts[0] += macs
        counts[1] += (counter.get_total_flops() - started.pop()) // 2

    return pre, post
