"""Trainability metrics: Jacobian singular values, OrthP, trainability accuracy (Wang et al., arXiv 2301.05219)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from pruning_suite.engine.measure import count_macs
from pruning_suite.engine.models import build_model
from pruning_suite.engine.train import EpochStats
from pruning_suite.engine.trainability import (
    JSV_BATCH_SIZE,
    JSV_BATCHES,
    JSV_DEFAULT_MAX_MACS,
    TrainabilityError,
    jacobian_singular_values,
    jsv_cost,
    jsv_enabled_by_default,
    jsv_stats,
    orthp_,
    trainability_accuracy,
)
from pruning_suite.errors import PruningError, PruningSuiteError
from pruning_suite.protocol.spec import ArchitectureSpec, TrainRecipe


def _linear_with_singular_values(values: list[float], in_features: int = 4) -> nn.Linear:
    """``Linear(in_features, len(values))`` whose weight is ``U diag(values) V^T`` (float64)."""
    torch.manual_seed(0)
    k = len(values)
    u, _ = torch.linalg.qr(torch.randn(k, k, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(in_features, k, dtype=torch.float64))
    layer = nn.Linear(in_features, k, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(u @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v.T)
    return layer


def _mlp(widths: list[int], double: bool = False) -> nn.Module:
    torch.manual_seed(0)
    arch = ArchitectureSpec(
        name="mlp", kwargs={"widths": widths, "activation": "none", "bias": True}
    )
    model = build_model(arch, (1, 32, 32), 10)
    return model.double() if double else model


def _digits_convnet() -> nn.Module:
    """digits_convnet with non-trivial BatchNorm running statistics (so eval mode matters)."""
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(name="digits_convnet"), (1, 8, 8), 10)
    for bn in (model.bn1, model.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return model


# ----------------------------------------------------------------------------------------------
# jacobian_singular_values


def test_linear_layer_has_the_constructed_singular_values():
    layer = _linear_with_singular_values([3.0, 2.0, 0.5])
    values = jacobian_singular_values(layer, torch.randn(5, 4, dtype=torch.float64))
    assert values.shape == (5, 3) and values.dtype == torch.float64
    expected = torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64).expand(5, 3)
    torch.testing.assert_close(values, expected, rtol=0, atol=1e-12)


def test_convnet_matches_a_brute_force_jacobian():
    model = _digits_convnet().eval()
    inputs = torch.randn(2, 1, 8, 8)
    values = jacobian_singular_values(model, inputs)
    assert values.shape == (2, 10)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda x: model(x.unsqueeze(0))[0], inputs[i])
        expected = torch.linalg.svdvals(jac.reshape(10, -1).double())
        torch.testing.assert_close(values[i], expected, rtol=1e-5, atol=1e-7)


def test_batchnorm_runs_in_eval_mode_so_examples_are_independent():
    model = _digits_convnet().train()
    inputs = torch.randn(6, 1, 8, 8)
    together = jacobian_singular_values(model, inputs)
    alone = torch.cat([jacobian_singular_values(model, inputs[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-7)


def test_model_state_is_unchanged():
    model = _digits_convnet().train()
    model.fc.eval()
    model.conv1.bias.requires_grad_(False)
    model.fc.weight.grad = torch.full_like(model.fc.weight, 7.0)
    flags = {name: m.training for name, m in model.named_modules()}
    requires = {name: p.requires_grad for name, p in model.named_parameters()}
    state = {name: t.clone() for name, t in model.state_dict().items()}

    with torch.no_grad():  # the caller's no_grad must not stop the Jacobian
        jsv_stats(model, [torch.randn(4, 1, 8, 8)])

    assert {name: m.training for name, m in model.named_modules()} == flags
    assert {name: p.requires_grad for name, p in model.named_parameters()} == requires
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 7.0))
    assert all(p.grad is None for name, p in model.named_parameters() if name != "fc.weight")
    for name, tensor in model.state_dict().items():  # BatchNorm statistics included
        assert torch.equal(tensor, state[name]), name


@pytest.mark.parametrize("shape", [(4,), (0, 4)])
def test_malformed_inputs_raise(shape):
    with pytest.raises(TrainabilityError, match="need") as err:
        jacobian_singular_values(nn.Linear(4, 3), torch.zeros(shape))
    assert err.value.hint


def test_a_model_without_logits_rows_raises():
    with pytest.raises(TrainabilityError, match="logits"):
        jacobian_singular_values(nn.Flatten(0), torch.zeros(2, 4))


# ----------------------------------------------------------------------------------------------
# jsv_stats


def test_jsv_stats_of_known_singular_values():
    layer = _linear_with_singular_values([3.0, 2.0, 0.5])
    batches = [torch.randn(4, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)]
    stats = jsv_stats(layer, batches)
    values = [3.0, 2.0, 0.5]
    mean = sum(values) / 3
    assert stats.mean == pytest.approx(mean, abs=1e-12)
    assert stats.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 3))
    assert (stats.max, stats.min) == (pytest.approx(3.0), pytest.approx(0.5))
    assert stats.cond_mean == pytest.approx(6.0)
    assert (stats.examples, stats.rank_deficient) == (7, 0)


def test_condition_number_skips_zero_singular_values_and_counts_them():
    layer = _linear_with_singular_values([2.0, 1.0, 0.0])
    stats = jsv_stats(layer, [torch.randn(5, 4, dtype=torch.float64)])
    assert stats.cond_mean == pytest.approx(2.0)
    assert stats.rank_deficient == 5
    assert stats.min == pytest.approx(0.0, abs=1e-12)


def test_zero_jacobian_has_no_condition_number_and_stays_json():
    layer = nn.Linear(4, 3, bias=False)
    nn.init.zeros_(layer.weight)
    stats = jsv_stats(layer, [torch.randn(2, 4)])
    assert stats.cond_mean is None and stats.rank_deficient == 2 and stats.mean == 0.0
    assert json.loads(json.dumps(stats.as_dict(), allow_nan=False))["cond_mean"] is None


def test_jsv_stats_without_batches_raises():
    with pytest.raises(TrainabilityError, match="no batches"):
        jsv_stats(nn.Linear(4, 3), [])


# ----------------------------------------------------------------------------------------------
# cost and default


@pytest.mark.parametrize(
    ("name", "kwargs", "shape", "classes", "enabled"),
    [
        ("digits_convnet", {}, (1, 8, 8), 10, True),
        ("lenet5", {}, (1, 32, 32), 10, True),
        ("lenet5", {}, (1, 28, 28), 10, True),
        ("mlp", {"widths": [100] * 6, "activation": "none"}, (1, 32, 32), 10, True),
        ("mlp", {"widths": [100] * 6, "activation": "none"}, (1, 28, 28), 10, True),
        ("resnet56", {}, (3, 32, 32), 10, False),
    ],
)
def test_jsv_default_is_on_for_small_models_only(name, kwargs, shape, classes, enabled):
    model = build_model(ArchitectureSpec(name=name, kwargs=kwargs), shape, classes)
    assert jsv_enabled_by_default(model, shape, classes) is enabled


def test_jsv_cost_is_forward_macs_times_one_plus_classes_times_examples():
    model = build_model(ArchitectureSpec(name="lenet5"), (1, 32, 32), 10)
    examples = JSV_BATCHES * JSV_BATCH_SIZE
    cost = jsv_cost(model, (1, 32, 32), 10, examples)
    assert cost == count_macs(model, (1, 32, 32)) * 11 * examples
    assert cost <= JSV_DEFAULT_MAX_MACS


# ----------------------------------------------------------------------------------------------
# OrthP


@pytest.mark.parametrize("widths", [[100] * 6, [20] * 6])
def test_orthp_makes_every_jsv_of_a_linear_mlp_one(widths):
    model = _mlp(widths, double=True)
    inputs = torch.randn(8, 1, 32, 32, dtype=torch.float64)
    before = jacobian_singular_values(model, inputs)
    assert (before - 1).abs().max() > 0.5  # default init is far from isometry

    names = orthp_(model, activation_gain=1.0)

    assert names == [f"layers.{i}" for i in range(7)]
    after = jacobian_singular_values(model, inputs)
    assert after.shape == (8, 10)
    assert (after - 1).abs().max() < 1e-6


def test_orthp_in_float32_is_isometric_to_float32_precision():
    model = _mlp([100] * 6)
    orthp_(model)
    stats = jsv_stats(model, [torch.randn(16, 1, 32, 32)])
    assert abs(stats.max - 1) < 1e-5 and abs(stats.min - 1) < 1e-5


def test_orthp_gain_scales_every_layer():
    model = _mlp([20] * 6, double=True)
    orthp_(model, activation_gain=math.sqrt(2))
    values = jacobian_singular_values(model, torch.randn(3, 1, 32, 32, dtype=torch.float64))
    torch.testing.assert_close(values, torch.full_like(values, math.sqrt(2) ** 7))


def test_orthp_weight_is_the_sign_fixed_q_of_the_old_weight():
    model = _digits_convnet()
    old = {
        name: model.get_submodule(name).weight.detach().double().clone()
        for name in ("conv1", "conv2", "fc1", "fc")
    }
    biases = {name: model.get_submodule(name).bias.detach().clone() for name in old}

    assert orthp_(model, ["conv1", "conv2", "fc1", "fc"]) == ["conv1", "conv2", "fc1", "fc"]

    for name, before in old.items():
        module = model.get_submodule(name)
        assert module.weight.shape == before.shape and module.weight.dtype == torch.float32
        assert torch.equal(module.bias, biases[name])
        new = module.weight.detach().double().reshape(before.shape[0], -1)
        was = before.reshape(before.shape[0], -1)
        if new.shape[0] < new.shape[1]:  # wide: transposed before the QR
            new, was = new.T, was.T
        eye = torch.eye(new.shape[1], dtype=torch.float64)
        torch.testing.assert_close(new.T @ new, eye, rtol=0, atol=1e-6)  # orthonormal columns
        r = new.T @ was  # = R of the old weight's QR: upper triangular, positive diagonal
        assert torch.diagonal(r).min() > 0
        assert r.tril(-1).abs().max() < 1e-4 * r.abs().max()


def test_orthp_touches_only_the_named_layers():
    model = _mlp([20] * 6)
    untouched = model.layers[1].weight.detach().clone()
    assert orthp_(model, ["layers.0"]) == ["layers.0"]
    assert torch.equal(model.layers[1].weight, untouched)
    w = model.layers[0].weight.detach().double()
    torch.testing.assert_close(w @ w.T, torch.eye(20, dtype=torch.float64), rtol=0, atol=1e-6)


def test_orthp_rejects_unknown_and_non_conv_linear_names():
    model = _digits_convnet()
    with pytest.raises(PruningError, match="no module 'conv3'") as err:
        orthp_(model, ["conv3"])
    assert "did you mean" in err.value.hint
    with pytest.raises(PruningError, match="BatchNorm2d"):
        orthp_(model, ["bn1"])
    with pytest.raises(PruningError, match="activation_gain"):
        orthp_(model, activation_gain=0.0)


# ----------------------------------------------------------------------------------------------
# trainability accuracy


def _log(val: list[float], test: list[float]) -> list[EpochStats]:
    return [
        EpochStats(epoch=i, lr=0.01, train_loss=1.0, val_top1=v, test_top1=t)
        for i, (v, t) in enumerate(zip(val, test, strict=True))
    ]


def test_trainability_accuracy_is_the_mean_over_the_first_lr_stage():
    recipe = TrainRecipe(epochs=5, batch_size=10, lr_schedule="0:0.01,3:0.001")
    rows = _log([10.0, 20.0, 30.0, 90.0, 95.0], [11.0, 21.0, 40.0, 80.0, 85.0])
    assert recipe.first_stage_epochs() == range(0, 3)
    assert trainability_accuracy(rows, recipe.first_stage_epochs()) == (20.0, 24.0)
    as_dicts = [row.as_dict() for row in reversed(rows)]  # order does not matter
    assert trainability_accuracy(as_dicts, range(3)) == (20.0, 24.0)


def test_smoke_recipe_first_stage_is_covered_by_its_log():
    recipe = TrainRecipe(epochs=90, batch_size=10, lr_schedule="0:0.01,30:0.001")
    smoke = recipe.model_copy(update={"epochs": 2})
    rows = _log([40.0, 60.0], [45.0, 65.0])
    assert trainability_accuracy(rows, smoke.first_stage_epochs()) == (50.0, 55.0)
    with pytest.raises(TrainabilityError, match=r"lacks epochs \[2, 3"):
        trainability_accuracy(rows, recipe.first_stage_epochs())


def test_trainability_accuracy_rejects_bad_logs():
    rows = _log([10.0, 20.0], [10.0, 20.0])
    with pytest.raises(TrainabilityError, match="twice"):
        trainability_accuracy(rows + rows[:1], range(2))
    with pytest.raises(TrainabilityError, match="no epochs"):
        trainability_accuracy(rows, range(0))
    with pytest.raises(TrainabilityError, match="val_top1"):
        trainability_accuracy([{"epoch": 0, "test_top1": 1.0}], range(1))
    assert issubclass(TrainabilityError, PruningSuiteError)
    assert issubclass(TrainabilityError, ValueError)
