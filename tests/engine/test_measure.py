"""Counting: MACs (per example) and FLOPs (= 2 x MACs), cross-checked by two counters."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pruning_suite.engine.measure import Counts, count_macs, measure
from pruning_suite.engine.pruning import apply_structured_pruning
from pruning_suite.errors import VerificationError

from .test_pruning import _three_conv


def test_linear_macs_and_flops() -> None:
    assert measure(nn.Linear(128, 64, bias=False), (128,)) == Counts(8_192, 8_192, 16_384)


def test_conv_macs() -> None:
    assert count_macs(nn.Conv2d(1, 6, 5, padding=0, bias=False), (1, 28, 28)) == 86_400


def test_depthwise_conv_macs() -> None:
    conv = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)
    assert count_macs(conv, (32, 16, 16)) == 73_728


def test_resnet18_macs() -> None:
    assert count_macs(torchvision.models.resnet18(), (3, 224, 224)) == 1_814_073_344


def test_pruning_reduces_macs_exactly() -> None:
    model = _three_conv()
    dense = measure(model, (3, 32, 32))
    apply_structured_pruning(model, {"features.6": [0, 5]}, torch.randn(1, 3, 32, 32))
    pruned = measure(model, (3, 32, 32))
    # conv1 442,368 + conv2 1,179,648 + conv3 8*8*64*288 + fc1 1024*64 + fc2 640
    assert dense == Counts(89_834, 2_867_840, 5_735_680)
    # conv3 keeps 62 filters, fc1 keeps 992 input columns
    assert pruned == Counts(87_208, 2_828_928, 5_657_856)
    assert pruned.flops == 2 * pruned.macs


def test_counting_restores_mode_and_leaves_bn_statistics_alone() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    count_macs(model, (3, 8, 8))
    assert model.training and model[1].training
    assert int(model[1].num_batches_tracked) == 0


class _MatmulOutsideLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) @ torch.ones(8, 3)  # 8*3 MACs outside any Linear


def test_matmuls_outside_conv_linear_are_counted_too() -> None:
    assert count_macs(_MatmulOutsideLayers(), (8,)) == 64 + 24


class _SneakyLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(super().forward(x))  # twice the MACs its shapes suggest


def test_counters_disagreeing_on_a_layer_raise() -> None:
    with pytest.raises(VerificationError, match="disagree on layer ''.*16.*32"):
        count_macs(_SneakyLinear(4, 4, bias=False), (4,))
