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

from ..errors import VerificationError
from .pruning import count_params

__all__ = [
    "Counts",
    "count_macs",
    "count_nonzero_params",
    "effective_macs",
    "measure",
    "measure_effective",
    "sparsity",
]


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


# ----------------------------------------------------------------------------------------------
# Effective (non-zero) figures, for weight-masked (unstructured) models


def measure_effective(model: nn.Module, input_shape: Sequence[int]) -> Counts:
    """EFFECTIVE parameters, MACs and FLOPs: only non-zero weights count.

    The companion of :func:`measure` for unstructured (weight-masked) models, whose tensors keep
    their dense shapes: :func:`measure` gives the dense figures, this the effective ones, and a
    submission records both. For a model without zero weights the two are equal.

    Args:
        model: The model; its train/eval mode is restored afterwards.
        input_shape: One example's shape without the batch dimension, e.g. ``(C, H, W)``.

    Returns:
        :class:`Counts` of :func:`count_nonzero_params` and :func:`effective_macs`, with
        ``flops == 2 * macs`` (effective FLOPs).

    Raises:
        VerificationError: The two dense MAC counters disagree (see :func:`count_macs`).
    """
    macs = effective_macs(model, input_shape)
    return Counts(params=count_nonzero_params(model), macs=macs, flops=2 * macs)


def count_nonzero_params(model: nn.Module) -> int:
    """EFFECTIVE parameter count: entries of the parameters that are not exactly zero.

    Distinct from the dense count (:func:`~pruning_suite.engine.pruning.count_params`, every entry of
    every parameter). Every parameter counts, biases and BatchNorm included; shared tensors once;
    buffers never. NaN and inf count as non-zero. Any exact zero is left out, pruned or not (e.g.
    an untrained BatchNorm's ``beta``, initialised to 0).

    Args:
        model: Any model.

    Returns:
        ``sum(count_nonzero(p) for p in model.parameters())``.
    """
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


def effective_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """EFFECTIVE multiply-accumulates per example: only MACs with a non-zero weight count.

    Distinct from the dense MACs of :func:`count_macs` (every weight, zero or not); effective
    FLOPs are ``2 * effective MACs``. Each Conv (not transposed) and Linear layer's dense MACs are
    replaced by the MACs of its non-zero weights; everything else :func:`count_macs` counts
    (matrix products outside those layers) is unchanged.

    Derivation (batch of 1). Each weight entry takes part in exactly one multiply-accumulate per
    output position it is applied at, so a layer's MACs are ``weight entries x positions`` and
    its effective MACs ``non-zero weight entries x positions``:

    - Linear, ``y[r, o] = sum_i W[o, i] * x[r, i]``: ``W[o, i]`` is used once per output row
      ``r``, so effective MACs ``= nnz(W) * rows`` with ``rows = output.numel() / out_features``
      (1 for a ``[1, in]`` input). Dense: ``out * in * rows``, as in :func:`count_macs`.
    - Conv2d, ``y[o, p, q] = sum_{c, i, j} W[o, c, i, j] * x[g(o) + c, s*p + i, s*q + j]``:
      ``W[o, c, i, j]`` is used once per output pixel ``(p, q)``, so effective MACs
      ``= nnz(W) * out_h * out_w``. Dense: ``out * (in / groups) * kh * kw * out_h * out_w``, as
      in :func:`count_macs` (products with zero padding count in both). The same holds for
      Conv1d/3d with the output's spatial size.

    Positions are read from :func:`count_macs`'s per-layer counts (dense layer MACs divided by
    the weight's entries), so layers called several times are handled. The dense total is
    verified by :func:`count_macs` first; this runs two forward passes on one example.

    Args:
        model: The model (dense, masked, or structurally pruned); its train/eval mode (per
            module) is restored afterwards.
        input_shape: One example's shape without the batch dimension, e.g. ``(C, H, W)``.

    Returns:
        Effective MACs per example; equal to :func:`count_macs` when no weight is zero.

    Raises:
        VerificationError: The two dense MAC counters disagree (see :func:`count_macs`).
    """
    dense = count_macs(model, input_shape)
    per_module, _ = _count(model, input_shape)
    saved = 0
    for name, (layer_macs, _) in per_module.items():
        weight = model.get_submodule(name).weight
        positions, rest = divmod(layer_macs, weight.numel())
        if rest:  # cannot happen for Conv/Linear: their MACs are weight entries x positions
            raise VerificationError(
                f"layer {name!r}: {layer_macs:,} MACs are not a multiple of its "
                f"{weight.numel():,} weights",
                "report a bug with the model definition",
            )
        saved += (weight.numel() - int(torch.count_nonzero(weight.detach()))) * positions
    return dense - saved


def sparsity(granularity: str, params_dense: int, params_pruned: int, params_nonzero: int) -> float:
    """Sparsity: the removed fraction (not percent) of the dense model's parameters.

    The paper's "sparsity" (Wang et al., arXiv 2301.05219, Table 6 headers) for filter pruning is
    ``1 - params_pruned / params_dense`` (parameters physically removed). For weight
    (unstructured) pruning the tensors keep their shapes, so it is ``1 - params_nonzero /
    params_dense`` (parameters zeroed), every parameter counted (biases and BatchNorm included).

    Args:
        granularity: ``"filter"`` or ``"weight"``.
        params_dense: Parameters of the dense model.
        params_pruned: Parameters of the pruned model (its tensors' entries).
        params_nonzero: Non-zero parameters of the pruned model.

    Raises:
        ValueError: Unknown granularity.
    """
    if granularity == "filter":
        return 1 - params_pruned / params_dense
    if granularity == "weight":
        return 1 - params_nonzero / params_dense
    raise ValueError(f"unknown granularity {granularity!r}; use 'filter' or 'weight'")
