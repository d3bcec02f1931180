"""Effective (non-zero) counts of weight-masked models, next to the dense counts.

Effective MACs are checked against hand counts: ``nnz(W) x output positions`` per layer.
"""

from __future__ import annotations

import torch
from torch import nn

from pruning_suite.contract.method import PrunableLayer
from pruning_suite.engine.masks import WeightMasks, select_weight_masks
from pruning_suite.engine.measure import (
    Counts,
    count_macs,
    count_nonzero_params,
    effective_macs,
    measure,
    measure_effective,
)


def test_linear_at_ninety_percent_sparsity() -> None:
    torch.manual_seed(0)
    fc = nn.Linear(100, 10)
    with torch.no_grad():
        fc.bias.fill_(1.0)
    scores = {"": fc.weight.detach().abs()}
    masks = WeightMasks(select_weight_masks(scores, {"": 0.9}, [PrunableLayer("", fc, 10)]))
    masks.apply(fc)
    assert measure(fc, (100,)) == Counts(params=1_010, macs=1_000, flops=2_000)
    assert measure_effective(fc, (100,)) == Counts(params=110, macs=100, flops=200)
    assert count_nonzero_params(fc) == 110  # 100 weights + 10 biases
    assert effective_macs(fc, (100,)) == 100


def test_conv_effective_macs_are_nonzero_weights_times_output_pixels() -> None:
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)  # 7x7 -> 4x4 = 16 pixels
    with torch.no_grad():
        conv.weight.copy_(torch.arange(54.0).view(3, 2, 3, 3) % 3)  # 18 of 54 are zero
    assert count_macs(conv, (2, 7, 7)) == 54 * 16
    assert effective_macs(conv, (2, 7, 7)) == 36 * 16
    assert count_nonzero_params(conv) == 36


def test_grouped_conv_and_linear_on_rows() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)  # weight [4, 2, 3, 3], 8x8 out
    fc = nn.Linear(8, 5, bias=False)  # applied to 4 * 8 rows of width 8
    model = nn.Sequential(conv, fc)
    with torch.no_grad():
        conv.weight[0] = 0  # 18 zeros
        fc.weight[:, :3] = 0  # 15 zeros
    dense = 72 * 64 + 40 * 32
    assert count_macs(model, (4, 8, 8)) == dense
    assert effective_macs(model, (4, 8, 8)) == (72 - 18) * 64 + (40 - 15) * 32


class _MatmulOutsideLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) @ torch.zeros(8, 3)  # 8*3 MACs outside any Linear, zero or not


def test_matmuls_outside_layers_stay_dense() -> None:
    model = _MatmulOutsideLayers()
    with torch.no_grad():
        model.fc.weight[:4] = 0
    assert count_macs(model, (8,)) == 64 + 24
    assert effective_macs(model, (8,)) == 32 + 24


def test_layer_called_twice_counts_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.relu(self.fc(x)))

    model = Twice()
    with torch.no_grad():
        model.fc.weight[0] = 0
    assert count_macs(model, (4,)) == 32
    assert effective_macs(model, (4,)) == 24


def test_dense_model_effective_equals_dense_and_mode_is_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
    model.train()
    dense, effective = measure(model, (3, 8, 8)), measure_effective(model, (3, 8, 8))
    assert effective == Counts(dense.params - 4, dense.macs, dense.flops)  # BN beta starts at 0
    with torch.no_grad():
        model[1].bias.fill_(0.1)
    assert measure_effective(model, (3, 8, 8)) == measure(model, (3, 8, 8))
    assert model.training and model[1].training
    assert int(model[1].num_batches_tracked) == 0


def test_nonzero_params_counts_shared_tensors_once() -> None:
    fc = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.eye(3))
    assert count_nonzero_params(nn.Sequential(fc, fc)) == 3
