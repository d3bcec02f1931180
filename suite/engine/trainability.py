"""Trainability of a pruned network: trainability accuracy, Jacobian singular values, OrthP.

Wang et al. (arXiv 2301.05219; arXiv 2301.05219, Sec. 4 "Trainability") explain why a larger retraining
LR "boosts" pruned accuracy: pruning damages trainability, and a larger LR recovers it faster
within a fixed epoch budget. They measure trainability two ways and repair it one way:

- **trainability accuracy (TA)**: the mean accuracy over the epochs of the first LR stage of
  retraining (:func:`trainability_accuracy`); only comparable under the same LR schedule;
- **mean Jacobian singular value (JSV)**: the singular values of ``J = d logits / d input``
  (``K x D`` per example, ``K`` classes, ``D`` flattened input size) over 10 training batches of
  100, right after pruning and once per retraining epoch (:func:`jsv_stats`). Dynamical isometry
  means all of them are near 1;
- **OrthP** (:func:`orthp_`): re-initialize every Conv/Linear weight with an orthogonal matrix,
  which for a linear MLP with non-increasing widths (such as the pruned MLP-7-Linear) makes
  every JSV exactly 1.

JSVs are dimensionless: logits per unit of the (normalized) model input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import PruningError, PruningSuiteError, did_you_mean

__all__ = [
    "JSV_BATCHES",
    "JSV_BATCH_SIZE",
    "JSV_DEFAULT_MAX_MACS",
    "JSVStats",
    "TrainabilityError",
    "jacobian_singular_values",
    "jsv_cost",
    "jsv_enabled_by_default",
    "jsv_stats",
    "orthp_",
    "trainability_accuracy",
]

JSV_BATCHES = 10
"""Training batches the mean JSV is computed on (Wang et al., arXiv 2301.05219)."""

JSV_BATCH_SIZE = 100
"""Examples per JSV batch (Wang et al., arXiv 2301.05219)."""

JSV_DEFAULT_MAX_MACS = 10**11
"""Largest :func:`jsv_cost` (MACs) for which the JSV is computed unless asked otherwise.

At the paper's 10 x 100 examples with 10 classes this admits the shipped small models
(digits_convnet on 1x8x8: 3.7e9 MACs, LeNet-5 on 1x32x32: 4.6e9, MLP-7-Linear on 1x32x32:
1.7e9) and leaves out the CIFAR ResNets (ResNet-20: 4.5e11, ResNet-56: 1.4e12) and anything
bigger (VGG-19 on CIFAR-100: 4.0e13). Measured on a shared 2-core CPU (torch 2.14, float32,
median of 5): :func:`jsv_stats` on MLP-7-Linear (1x32x32, 10 classes) at 10 x 100 examples takes
0.22 s, on LeNet-5 0.95 s, on digits_convnet 0.14 s; on ResNet-56 one batch of 100 took 13 s,
so about 2 minutes per measurement, i.e. per retraining epoch.
"""


class TrainabilityError(PruningSuiteError, ValueError):
    """A trainability measurement got input it cannot use (no batches, a log missing epochs)."""


# ----------------------------------------------------------------------------------------------
# Jacobian singular values


def jacobian_singular_values(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Singular values of each example's input-output Jacobian ``J_i = d logits_i / d input_i``.

    The model runs in eval mode (BatchNorm uses its running statistics, so examples are
    independent and ``J_i`` depends on example ``i`` alone); every module's train/eval flag is
    restored afterwards. Gradients are taken with ``torch.autograd.grad`` w.r.t. the inputs only,
    so no parameter's ``.grad`` or ``requires_grad`` changes. One forward pass and ``K`` backward
    passes (vector-Jacobian products) per call.

    Args:
        model: A classifier mapping ``[N, *input_shape]`` to logits ``[N, K]``.
        inputs: ``[N, C, H, W]`` or ``[N, D]`` model inputs (normalized as in training); cast to
            the dtype and device of the model's parameters.

    Returns:
        ``[N, min(K, D)]`` float64 on the CPU, each row in descending order; dimensionless
        (logits per unit of model input). The SVD runs in float64 on a Jacobian computed in
        the model's dtype.

    Raises:
        TrainabilityError: ``inputs`` has no batch dimension or no examples, or the model's
            output is not ``[N, K]``.
    """
    return _svdvals(_input_jacobian(model, inputs))


def _input_jacobian(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``[N, K, D]`` Jacobians of the logits w.r.t. the flattened inputs, in the model's dtype."""
    if inputs.dim() < 2 or inputs.shape[0] == 0:
        raise TrainabilityError(
            f"JSV inputs have shape {list(inputs.shape)}; need [N, C, H, W] or [N, D], N >= 1",
            "pass a batch of inputs, e.g. the first JSV_BATCH_SIZE training examples",
        )
    param = next(model.parameters(), None)
    x = inputs.detach()
    if param is not None and param.is_floating_point():
        x = x.to(device=param.device, dtype=param.dtype)
    x.requires_grad_(True)
    with _eval_mode(model), torch.enable_grad():
        logits = model(x)
        _check_logits(logits, x.shape[0])
        classes = logits.shape[1]
        rows = [
            torch.autograd.grad(logits[:, k].sum(), x, retain_graph=k < classes - 1)[0]
            for k in range(classes)
        ]
    return torch.stack([row.reshape(x.shape[0], -1) for row in rows], dim=1)


def _check_logits(logits: Any, examples: int) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != examples:
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TrainabilityError(
            f"the model returned {shape} for {examples} examples; the JSV needs logits [N, K]",
            "compute the JSV on a classifier whose forward returns one logit row per example",
        )


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode, restoring each module's own flag afterwards."""
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        yield
    finally:
        for module, training in modes.items():
            module.train(training)


@dataclass(frozen=True)
class JSVStats:
    """Summary of the Jacobian singular values of many examples (all dimensionless).

    Attributes:
        mean: Mean of all singular values, pooled over examples (the paper's "mean JSV").
        std: Population standard deviation (ddof 0) of the same pooled values.
        max: Largest singular value of any example.
        min: Smallest singular value of any example (0 for a rank-deficient Jacobian).
        cond_mean: Mean over examples of the condition number ``s_max / s_min``, where
            ``s_min`` is the smallest NON-ZERO singular value of the example: singular values
            ``<= s_max * max(K, D) * eps`` count as zero (numpy's ``matrix_rank`` tolerance,
            ``eps`` of the dtype the Jacobian was computed in). This keeps the number finite
            (JSON has no inf); ``rank_deficient`` says how many examples it applied to.
            ``None`` when every example's Jacobian is exactly zero (no condition number exists).
        examples: Examples measured.
        rank_deficient: Examples with at least one singular value counted as zero.
    """

    mean: float
    std: float
    max: float
    min: float
    cond_mean: float | None
    examples: int
    rank_deficient: int

    def as_dict(self) -> dict[str, float | int | None]:
        """The fields as a JSON-ready dict (every number finite, or ``None``)."""
        return asdict(self)


def jsv_stats(model: nn.Module, batches: Iterable[torch.Tensor]) -> JSVStats:
    """Mean JSV and its companions over batches of inputs (Wang et al., arXiv 2301.05219).

    The paper uses :data:`JSV_BATCHES` training batches of :data:`JSV_BATCH_SIZE` examples,
    right after pruning and after every retraining epoch.

    Args:
        model: A classifier mapping ``[N, *input_shape]`` to logits ``[N, K]``; its state is not
            changed (see :func:`jacobian_singular_values`).
        batches: Input tensors ``[N_b, C, H, W]`` or ``[N_b, D]`` (inputs only, no labels).

    Returns:
        :class:`JSVStats` over every example of every batch.

    Raises:
        TrainabilityError: ``batches`` is empty, or a batch is malformed.
    """
    values, relative_tol = [], 0.0
    for batch in batches:
        jacobian = _input_jacobian(model, batch)
        relative_tol = torch.finfo(jacobian.dtype).eps * max(jacobian.shape[1:])
        values.append(_svdvals(jacobian))
    if not values:
        raise TrainabilityError(
            "jsv_stats got no batches",
            f"pass an iterable of input tensors, e.g. {JSV_BATCHES} training batches of "
            f"{JSV_BATCH_SIZE}",
        )
    return _summarize(torch.cat(values), relative_tol)


def _svdvals(jacobian: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(jacobian.to(device="cpu", dtype=torch.float64))


def _summarize(singular: torch.Tensor, relative_tol: float) -> JSVStats:
    """:class:`JSVStats` of ``[M, r]`` descending singular values; zero means ``<= s_max * tol``."""
    top = singular[:, 0]
    nonzero = singular > (top * relative_tol).unsqueeze(1)
    smallest = torch.where(nonzero, singular, torch.inf).amin(dim=1)
    defined = nonzero.any(dim=1)
    cond = top[defined] / smallest[defined]
    return JSVStats(
        mean=singular.mean().item(),
        std=singular.std(correction=0).item(),
        max=singular.max().item(),
        min=singular.min().item(),
        cond_mean=cond.mean().item() if cond.numel() else None,
        examples=singular.shape[0],
        rank_deficient=int((~nonzero.all(dim=1)).sum()),
    )


# ----------------------------------------------------------------------------------------------
# Cost and default


def jsv_cost(model: nn.Module, input_shape: Sequence[int], num_classes: int, examples: int) -> int:
    """Estimated MACs of computing the JSV on ``examples`` examples.

    ``forward MACs x (1 + K) x examples``: one forward pass and ``K = num_classes`` backward
    passes (vector-Jacobian products w.r.t. the input, each about one forward pass of MACs).
    The SVDs (``O(N K^2 D)``) are not counted; they are negligible for the models the default
    admits.

    Args:
        model: The (pruned) model; MACs per example come from
            :func:`pruning_suite.engine.measure.count_macs`.
        input_shape: One example's shape, e.g. ``(C, H, W)``.
        num_classes: ``K``, the number of logits.
        examples: Examples the JSV is computed on.

    Returns:
        MACs (not FLOPs; FLOPs are twice this).

    Raises:
        VerificationError: The two MAC counters disagree (see ``count_macs``).
    """
    from .measure import count_macs

    return count_macs(model, input_shape) * (1 + num_classes) * examples


def jsv_enabled_by_default(model: nn.Module, input_shape: Sequence[int], num_classes: int) -> bool:
    """Whether the JSV at the paper's default size fits :data:`JSV_DEFAULT_MAX_MACS`.

    Args:
        model: The (pruned) model.
        input_shape: One example's shape, e.g. ``(C, H, W)``.
        num_classes: ``K``, the number of logits.

    Returns:
        ``jsv_cost(model, input_shape, num_classes, JSV_BATCHES * JSV_BATCH_SIZE)
        <= JSV_DEFAULT_MAX_MACS``.
    """
    examples = JSV_BATCHES * JSV_BATCH_SIZE
    return jsv_cost(model, input_shape, num_classes, examples) <= JSV_DEFAULT_MAX_MACS


# ----------------------------------------------------------------------------------------------
# OrthP


@torch.no_grad()
def orthp_(
    model: nn.Module, layers: Sequence[str] | None = None, activation_gain: float = 1.0
) -> list[str]:
    """OrthP: re-initialize Conv2d/Linear weights with orthogonal matrices, in place.

    Wang et al. (arXiv 2301.05219; arXiv 2301.05219, Sec. 4 "Trainability"): each weight, reshaped to
    ``out x (in * kh * kw)`` and transposed if ``out < in * kh * kw`` (so it is tall), is replaced
    by the ``Q`` of its QR decomposition with the columns' signs fixed by ``sign(diag(R))``
    (a zero diagonal entry counts as ``+1``), transposed back and times ``activation_gain``.
    Every weight then has orthonormal rows or columns (times the gain). With gain 1, a linear MLP
    whose widths do not increase from input to output has orthonormal-row weights only, so its
    Jacobian ``W_L ... W_1`` has orthonormal rows and every JSV is exactly 1 (a layer wider than
    its input breaks the chain). Grouped convolutions are treated the same (their weight is
    ``out x (in / groups * kh * kw)``). The QR runs in float64; shapes, dtypes and devices are
    unchanged. Biases are left as they are: they do not enter the input-output Jacobian.
    Apply it to a physically pruned model; on a masked model, re-apply the masks afterwards.

    Args:
        model: The model, changed in place.
        layers: Module names to re-initialize; ``None`` means every ``nn.Conv2d`` and
            ``nn.Linear`` in ``named_modules()`` order.
        activation_gain: 1 for linear networks, ``sqrt(2)`` for ReLU
            (``torch.nn.init.calculate_gain``).

    Returns:
        The names re-initialized, in the order done.

    Raises:
        PruningError: A name is not a module of ``model``, or names a module that is not a
            Conv2d/Linear, or ``activation_gain`` is not finite and > 0.
    """
    if not (math.isfinite(activation_gain) and activation_gain > 0):
        raise PruningError(
            f"OrthP activation_gain must be finite and > 0, got {activation_gain}",
            "use 1.0 for a linear network and math.sqrt(2) for ReLU",
        )
    names = _orthp_layers(model, layers)
    modules = dict(model.named_modules())
    for name in names:
        weight = modules[name].weight
        weight.copy_(_orthogonal_like(weight) * activation_gain)
    return names


def _orthp_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    modules = dict(model.named_modules())
    if layers is None:
        return [name for name, module in modules.items() if isinstance(module, _ORTHP_TYPES)]
    for name in layers:
        if name not in modules:
            guess = did_you_mean(name, modules)
            raise PruningError(
                f"OrthP: the model has no module {name!r}",
                f"{guess}pass names from model.named_modules(), or None for every Conv2d/Linear",
            )
        if not isinstance(modules[name], _ORTHP_TYPES):
            raise PruningError(
                f"OrthP: module {name!r} is a {type(modules[name]).__name__}, not a Conv2d/Linear",
                "pass only Conv2d/Linear module names, or None for all of them",
            )
    return list(layers)


_ORTHP_TYPES = (nn.Conv2d, nn.Linear)


def _orthogonal_like(weight: torch.Tensor) -> torch.Tensor:
    """Sign-fixed QR ``Q`` of ``weight`` as a matrix ``out x rest``, in its shape and dtype."""
    matrix = weight.detach().reshape(weight.shape[0], -1).to(torch.float64)
    wide = matrix.shape[0] < matrix.shape[1]
    q, r = torch.linalg.qr(matrix.T if wide else matrix)
    signs = torch.sign(torch.diagonal(r))
    q = q * torch.where(signs == 0, 1.0, signs)
    return (q.T if wide else q).reshape(weight.shape).to(weight.dtype)


# ----------------------------------------------------------------------------------------------
# Trainability accuracy


def trainability_accuracy(
    rows: Iterable[Mapping[str, Any] | Any], first_stage_epochs: range
) -> tuple[float, float]:
    """Trainability accuracy: mean top-1 over the epochs of the first LR stage of retraining.

    ``TA = (1/N) sum_i Acc_i`` over the ``N`` epochs of the first LR stage (Wang et al., arXiv
    2301.05219); comparable only between runs with the same LR schedule.

    Every epoch of ``first_stage_epochs`` must be in the log; nothing is averaged over a partial
    stage. A smoke run passes the recipe it actually ran (its epochs capped), whose
    ``TrainRecipe.first_stage_epochs()`` is already cut to the epochs run, so its log covers it.

    Args:
        rows: The retraining log, one row per epoch: dicts or objects with ``epoch`` (0-based),
            ``val_top1`` and ``test_top1`` (percent), e.g. ``EpochStats`` or ``EpochRow``.
        first_stage_epochs: The 0-based epochs of the first LR stage, e.g.
            ``recipe.first_stage_epochs()``.

    Returns:
        ``(TA on the validation split, TA on the test split)``, percent.

    Raises:
        TrainabilityError: The range is empty, an epoch appears twice in the log, or an epoch of
            the range is missing from it.
    """
    if len(first_stage_epochs) == 0:
        raise TrainabilityError(
            "the first LR stage has no epochs", "pass recipe.first_stage_epochs() of the recipe run"
        )
    by_epoch = _rows_by_epoch(rows)
    missing = [epoch for epoch in first_stage_epochs if epoch not in by_epoch]
    if missing:
        raise TrainabilityError(
            f"the retraining log lacks epochs {missing} of the first LR stage "
            f"{first_stage_epochs.start}..{first_stage_epochs.stop - 1}",
            "pass the first_stage_epochs() of the recipe actually run (smoke runs cap epochs)",
        )
    stage = [by_epoch[epoch] for epoch in first_stage_epochs]
    val = math.fsum(_field(row, "val_top1") for row in stage) / len(stage)
    test = math.fsum(_field(row, "test_top1") for row in stage) / len(stage)
    return val, test


def _rows_by_epoch(rows: Iterable[Mapping[str, Any] | Any]) -> dict[int, Any]:
    by_epoch: dict[int, Any] = {}
    for row in rows:
        epoch = int(_field(row, "epoch"))
        if epoch in by_epoch:
            raise TrainabilityError(
                f"epoch {epoch} appears twice in the retraining log",
                "pass one run's log, one row per epoch",
            )
        by_epoch[epoch] = row
    return by_epoch


def _field(row: Mapping[str, Any] | Any, name: str) -> Any:
    try:
        return row[name] if isinstance(row, Mapping) else getattr(row, name)
    except (KeyError, AttributeError) as err:
        raise TrainabilityError(
            f"a retraining log row has no {name!r}: {row!r}",
            "rows need epoch, val_top1 and test_top1 (percent)",
        ) from err
