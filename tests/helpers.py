"""Small helpers shared by the pruning tests (not fixtures)."""

from __future__ import annotations

import torch
from torch import nn


def zero_units(module: nn.Module, idxs: list[int]) -> None:
    """Zero output units of a Conv/Linear (weight rows, bias) or a BatchNorm (gamma, beta)."""
    with torch.no_grad():
        module.weight[idxs] = 0
        if module.bias is not None:
            module.bias[idxs] = 0


def eval_out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` in eval mode without gradients."""
    with torch.no_grad():
        return model.eval()(x)
