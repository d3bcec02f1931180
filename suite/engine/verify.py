"""Pruning a merged dependency group and proving the result: the pruned model must equal the
dense model with the same units zeroed (see :mod:`pruning_suite.engine.surgery`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning import Group

from ..errors import PruningError, VerificationError
from .grouped import is_grouped_conv, prune_grouped_in_channels

__all__ = ["VERIFY_RTOL", "masked_reference", "prune_verified"]

#: Relative tolerance of the check that a pruned model equals its masked reference. Both run in
#: float64, where summing a layer's surviving terms in another order than the reference (which
#: adds exact zeros for the removed units) moves an output by about 1e-16 of its magnitude per
#: layer; a unit removed inconsistently moves it by a sizeable fraction. A fixed float32 atol of
#: 1e-5 failed on sound surgery: ResNet-56 on an H200 (1.84e-5), a random-init ResNet-34 whose
#: logits reach ~150 (3.05e-5; one float32 step there is already 1.8e-5) (issue 13).
VERIFY_RTOL = 1e-9

_BOOKKEEPING = {
    tp.ops.OPTYPE.CONCAT,
    tp.ops.OPTYPE.SPLIT,
    tp.ops.OPTYPE.ELEMENTWISE,
    tp.ops.OPTYPE.RESHAPE,
    tp.ops.OPTYPE.UNBIND,
    tp.ops.OPTYPE.EXPAND,
    tp.ops.OPTYPE.SLICE,
    tp.ops.OPTYPE.OUTPUT,
}
# Parameterised nodes whose pruning equals zeroing (weight rows / gamma, beta): verifiable.
_VERIFIABLE = {
    tp.ops.OPTYPE.CONV,
    tp.ops.OPTYPE.DEPTHWISE_CONV,
    tp.ops.OPTYPE.LINEAR,
    tp.ops.OPTYPE.BN,
}


# ----------------------------------------------------------------------------------------------
# 4. Removing them


def prune_verified(
    graph: tp.DependencyGraph,
    group: Group,
    model: nn.Module,
    reference: nn.Module,
    example_input: torch.Tensor,
    rtol: float = VERIFY_RTOL,
) -> None:
    """Prune ``group`` and verify against ``reference``; on any failure restore, then raise."""
    saved = _snapshot(group)
    try:
        _prune(graph, group)
        _verify(model, reference, example_input, rtol)
    except VerificationError:
        _restore(saved)
        raise
    except Exception as err:  # torch-pruning's surgery fails with assorted errors
        _restore(saved)
        raise VerificationError(
            f"torch-pruning failed while pruning (the model was restored): {err}",
            "a layer in a dependency group cannot be pruned this way; report a bug",
        ) from err


def _prune(graph: tp.DependencyGraph, group: Group) -> None:
    """``group.prune()``, except grouped convs' input channels, which are pruned per group."""
    for dep, idxs in group:
        module = dep.target.module
        if graph.is_in_channel_pruning_fn(dep.handler) and is_grouped_conv(module):
            prune_grouped_in_channels(module, idxs)
        else:
            dep(idxs)


def _snapshot(group: Group) -> list[tuple[nn.Module, dict[str, Any]]]:
    """Enough of every module ``group`` can modify to put it back (pruning replaces tensors)."""
    modules = {dep.target.module for dep, _ in group}
    return [
        (m, {**vars(m), "_parameters": dict(m._parameters), "_buffers": dict(m._buffers)})
        for m in modules
        if isinstance(m, nn.Module)
    ]


def _restore(saved: Sequence[tuple[nn.Module, dict[str, Any]]]) -> None:
    for module, state in saved:
        vars(module).clear()
        vars(module).update(state)


def masked_reference(model: nn.Module, graph: tp.DependencyGraph, group: Group) -> nn.Module:
    """A deep copy of ``model`` in which every unit ``group`` removes is zeroed instead."""
    names = {module: name for name, module in model.named_modules()}
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for dep, idxs in group:
            node = dep.target
            if node.type in _BOOKKEEPING:
                continue
            if (
                node.type not in _VERIFIABLE
                or getattr(node.module, "transposed", False)
                or (node.type == tp.ops.OPTYPE.BN and not node.module.affine)
            ):
                raise PruningError(
                    f"the dependency group reaches {names.get(node.module, node.name)!r} "
                    f"({type(node.module).__name__}), whose pruning the suite cannot verify yet",
                    "supported: Conv/Linear layers, affine BatchNorm, adds, concats and reshapes",
                )
            if graph.is_out_channel_pruning_fn(dep.handler):
                copied = reference.get_submodule(names[node.module])
                if idxs and max(idxs) >= copied.weight.shape[0]:
                    raise PruningError(
                        f"the dependency group asks to remove unit {max(idxs)} of "
                        f"{names[node.module]!r}, which has only {copied.weight.shape[0]}; "
                        "torch-pruning cannot follow this coupling (e.g. a zero-padding shortcut)",
                        "prune only layers whose outputs are not coupled through such a shortcut",
                    )
                index = torch.tensor(sorted(idxs), dtype=torch.long, device=copied.weight.device)
                copied.weight[index] = 0
                if copied.bias is not None:
                    copied.bias[index] = 0
    return reference


def _verify(
    model: nn.Module, reference: nn.Module, example_input: torch.Tensor, rtol: float
) -> None:
    """Raise VerificationError unless ``model`` and ``reference`` give the same eval outputs.

    Both models are copied to float64 and run on a float64 copy of ``example_input``; outputs
    must agree within ``rtol * max(1, max |reference output|)`` (see :data:`VERIFY_RTOL`), so the
    check holds at any depth and logit scale, on the CPU and on CUDA.
    """
    expected, actual = _outputs_in_float64(model, reference, example_input)
    shapes = ([list(t.shape) for t in actual], [list(t.shape) for t in expected])
    if shapes[0] != shapes[1]:
        raise VerificationError(
            f"pruned output shapes {shapes[0]} differ from the masked reference's {shapes[1]}"
        )
    pairs = list(zip(actual, expected, strict=True))
    diff = max((float((a - e).abs().max()) for a, e in pairs if a.numel()), default=0.0)
    scale = max((float(e.abs().max()) for _, e in pairs if e.numel()), default=0.0)
    tolerance = rtol * max(1.0, scale)
    if not diff <= tolerance:  # also catches NaN
        raise VerificationError(
            f"pruned model's output differs from the masked reference by {diff:.3g} (max abs, in "
            f"float64; tolerance {tolerance:.3g} = {rtol:g} x max(1, largest output {scale:.3g}))",
            "a layer in a dependency group is not pruned consistently; report a bug",
        )


def _outputs_in_float64(
    model: nn.Module, reference: nn.Module, example_input: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(reference outputs, pruned outputs) of float64 copies of both models."""
    x = example_input.double() if example_input.is_floating_point() else example_input
    with torch.no_grad():
        expected = _tensors(copy.deepcopy(reference).double()(x))
        try:
            actual = _tensors(copy.deepcopy(model).double()(x))
        except RuntimeError as err:
            raise VerificationError(
                f"the pruned model no longer runs on example_input: {err}"
            ) from err
    return [t.double() for t in expected], [t.double() for t in actual]


def _tensors(output: Any) -> list[torch.Tensor]:
    """The tensors of a model output (a tensor, or nested tuples/lists/dicts of tensors)."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors(item)]
    raise VerificationError(f"cannot compare a model output of type {type(output).__name__}")
