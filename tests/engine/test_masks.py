"""Unstructured (weight) pruning: the count and tie rules per weight, and masks held by retraining.

Expected values are worked out by hand in the tests (the SGD arithmetic is spelled out), not
taken from the code under test.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from pruning_suite.contract.method import PrunableLayer
from pruning_suite.engine.masks import WeightMasks, select_weight_masks
from pruning_suite.engine.pruning import select_removals
from pruning_suite.engine.train import training_step
from pruning_suite.errors import CheckpointError, PluginError, PruningError


def _layer(name: str, module: nn.Module) -> PrunableLayer:
    units = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
    return PrunableLayer(name, module, units)


def _sum_loss(out: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    return out.sum()


def _small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    )


def _magnitude_masks(model: nn.Module, ratios: dict[str, float]) -> WeightMasks:
    layers = [_layer(name, model.get_submodule(name)) for name in ratios]
    scores = {layer.name: layer.module.weight.detach().abs() for layer in layers}
    return WeightMasks(select_weight_masks(scores, ratios, layers))


# ----------------------------------------------------------------------------------------------
# Selection


def test_ninety_percent_of_a_linear_keeps_the_hundred_largest() -> None:
    torch.manual_seed(0)
    fc = nn.Linear(100, 10)
    scores = {"fc": fc.weight.detach().abs()}
    mask = select_weight_masks(scores, {"fc": 0.9}, [_layer("fc", fc)])["fc"]
    assert mask.dtype == torch.bool and mask.shape == (10, 100)
    assert int(mask.sum()) == 100
    kept = fc.weight.detach().abs()[mask]
    assert float(kept.min()) >= float(fc.weight.detach().abs()[~mask].max())


def test_ties_remove_the_lowest_flat_index_first() -> None:
    fc = nn.Linear(3, 2)  # weight [2, 3], flat (row-major) indices 0..5
    scores = {"fc": torch.tensor([[5.0, 1.0, 1.0], [1.0, 0.0, 1.0]])}
    mask = select_weight_masks(scores, {"fc": 0.5}, [_layer("fc", fc)])["fc"]
    # 0.0 (flat 4) goes first, then the 1.0s in flat order 1, 2 (3 and 5 stay)
    assert mask.tolist() == [[True, False, False], [True, False, True]]


def test_all_equal_scores_remove_a_prefix() -> None:
    conv = nn.Conv2d(2, 2, 2)  # 16 weights
    mask = select_weight_masks({"c": torch.ones(2, 2, 2, 2)}, {"c": 0.3}, [_layer("c", conv)])
    assert (~mask["c"]).flatten().tolist() == [True] * 5 + [False] * 11  # ceil(4.8) = 5


def test_weight_tie_rule_matches_the_filter_tie_rule() -> None:
    fc = nn.Linear(1, 8)  # weight [8, 1]: one weight per unit
    layer = _layer("fc", fc)
    unit_scores = torch.tensor([2.0, 1.0, 1.0, 0.5, 1.0, 3.0, 0.5, 1.0])
    removed = select_removals({"fc": unit_scores}, {"fc": 0.5}, [layer])["fc"]
    mask = select_weight_masks({"fc": unit_scores[:, None]}, {"fc": 0.5}, [layer])["fc"]
    assert (~mask[:, 0]).nonzero().flatten().tolist() == removed == [1, 2, 3, 6]


def test_count_rule_is_units_to_remove_over_weights() -> None:
    fc = nn.Linear(5, 2)  # 10 weights
    layer = _layer("fc", fc)
    scores = {"fc": torch.arange(10.0).view(2, 5)}
    assert int((~select_weight_masks(scores, {"fc": 0.3}, [layer])["fc"]).sum()) == 3
    assert int((~select_weight_masks(scores, {"fc": 0.99}, [layer])["fc"]).sum()) == 9
    assert select_weight_masks(scores, {}, [layer]) == {}  # nothing to remove: omitted
    with pytest.raises(PruningError, match="would empty layer 'fc'"):
        select_weight_masks(scores, {"fc": 1.0}, [layer])


def test_selection_does_not_touch_the_model() -> None:
    model = _small_net()
    before = [p.detach().clone() for p in model.parameters()]
    _magnitude_masks(model, {"0": 0.5, "3": 0.5})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    ("scores", "match"),
    [
        ({"fc": torch.ones(2)}, r"'fc' have shape \[2\]; expected .*shape \[2, 3\]"),
        ({"fc": torch.ones(3, 2)}, r"'fc' have shape \[3, 2\]"),
        ({}, "lack layer 'fc'"),
        ({"fc": [[1.0] * 3] * 2}, "'fc' are a list"),
        ({"fc": torch.tensor([[1.0, float("nan"), 1.0], [1.0] * 3])}, "'fc' contain NaN"),
        ({"fc": torch.ones(2, 3), "head": torch.ones(1)}, "given for \\['head'\\]"),
    ],
)
def test_bad_scores_are_plugin_errors_naming_the_layer(scores: dict, match: str) -> None:
    layer = _layer("fc", nn.Linear(3, 2))
    with pytest.raises(PluginError, match=match):
        select_weight_masks(scores, {"fc": 0.5}, [layer])


def test_ratio_for_an_unknown_layer_is_a_pruning_error() -> None:
    layer = _layer("fc", nn.Linear(3, 2))
    with pytest.raises(PruningError, match="ratios given for \\['head'\\]"):
        select_weight_masks({"fc": torch.ones(2, 3)}, {"head": 0.5}, [layer])


# ----------------------------------------------------------------------------------------------
# Enforcement through retraining


def test_masked_sgd_step_gives_the_hand_computed_weights() -> None:
    model = nn.Sequential(nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.ones(1, 4), torch.zeros(1)
    # step 1 (dense): grad = x = 1, buf = 1, w = w - 0.1 * 1 = [0.9, 1.9, 2.9, 3.9]
    training_step(model, opt, x, y, loss_fn=_sum_loss)
    masks = _magnitude_masks(model, {"0": 0.5})  # removes the two smallest |w|: flat 0, 1
    masks.apply(model)
    # step 2: buf = 0.9 * 1 + 1 = 1.9, w = w - 0.1 * 1.9 -> [., ., 2.71, 3.71]; pruned re-zeroed
    training_step(model, opt, x, y, loss_fn=_sum_loss, after_step=lambda: masks.enforce(model, opt))
    weight = model[0].weight.detach()
    torch.testing.assert_close(weight, torch.tensor([[0.0, 0.0, 2.71, 3.71]]), rtol=0, atol=1e-6)
    assert weight[0, :2].tolist() == [0.0, 0.0]  # exactly zero, not merely close
    buf = opt.state[model[0].weight]["momentum_buffer"]
    assert buf[0, :2].tolist() == [0.0, 0.0]
    torch.testing.assert_close(buf[0, 2:], torch.tensor([1.9, 1.9]), rtol=0, atol=1e-6)


def test_R_PRUNE_5_masks_survive_many_sgd_steps_with_weight_decay() -> None:
    model = _small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    masks = _magnitude_masks(model, {"0": 0.5, "3": 0.8})
    masks.apply(model)
    kept_before = {
        n: model.get_submodule(n).weight.detach()[m].clone() for n, m in masks.masks.items()
    }
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        x, y = torch.randn(4, 2, 5, 5, generator=gen), torch.randint(0, 3, (4,), generator=gen)
        training_step(model, opt, x, y, after_step=lambda: masks.enforce(model, opt))
    for name, mask in masks.masks.items():
        weight = model.get_submodule(name).weight
        assert torch.count_nonzero(weight.detach()[~mask]) == 0
        assert torch.count_nonzero(opt.state[weight]["momentum_buffer"][~mask]) == 0
        assert not torch.equal(weight.detach()[mask], kept_before[name])  # the rest trains
    assert masks.sparsity(model) == pytest.approx((36 + 480) / (72 + 600))


def test_without_enforce_pruned_weights_come_back() -> None:
    model = _small_net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    masks = _magnitude_masks(model, {"3": 0.8})
    masks.apply(model)
    training_step(model, opt, torch.randn(4, 2, 5, 5), torch.tensor([0, 1, 2, 0]))
    assert masks.sparsity(model) < 0.8  # the test above is not vacuous


def test_adam_moments_of_pruned_entries_are_zeroed() -> None:
    model = _small_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    masks = _magnitude_masks(model, {"0": 0.5})
    masks.apply(model)
    for _ in range(3):
        x, y = torch.randn(4, 2, 5, 5), torch.tensor([0, 1, 2, 0])
        training_step(model, opt, x, y, after_step=lambda: masks.enforce(model, opt))
    weight, pruned = model[0].weight, ~masks.masks["0"]
    state = opt.state[weight]
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        assert torch.count_nonzero(state[key][pruned]) == 0, key
        assert torch.count_nonzero(state[key][~pruned]) > 0, key
    assert torch.count_nonzero(weight.detach()[pruned]) == 0
    assert float(state["step"]) == 3.0  # scalar state untouched


def test_apply_zeroes_exactly_and_leaves_biases_alone() -> None:
    model = _small_net()
    bias = model[0].bias.detach().clone()
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = float("nan")
    masks = WeightMasks({"0": torch.arange(72).view(4, 2, 3, 3) % 2 == 1})  # flat 0 is pruned
    masks.apply(model)
    assert torch.count_nonzero(model[0].weight.detach().flatten()[0::2]) == 0
    assert torch.equal(model[0].bias.detach(), bias)
    assert masks.sparsity(model) == 0.5
    assert "1 layers, 36 of 72 weights pruned" in repr(masks)


def test_masks_checked_against_the_model() -> None:
    model = _small_net()
    with pytest.raises(PruningError, match=r"mask of '3' has shape \[6, 10\].*\[6, 100\]"):
        WeightMasks({"3": torch.ones(6, 10, dtype=torch.bool)}).apply(model)
    with pytest.raises(PruningError, match="'1'.*is a ReLU"):
        WeightMasks({"1": torch.ones(6, dtype=torch.bool)}).apply(model)
    with pytest.raises(PruningError, match="'9'.*is no module"):
        WeightMasks({"9": torch.ones(6, dtype=torch.bool)}).apply(model)


def test_masks_must_be_bool_and_keep_a_weight() -> None:
    with pytest.raises(PruningError, match="mask of 'fc' is a torch.float32 tensor"):
        WeightMasks({"fc": torch.ones(2, 3)})
    with pytest.raises(PruningError, match="prunes all 6 weights"):
        WeightMasks({"fc": torch.zeros(2, 3, dtype=torch.bool)})


# ----------------------------------------------------------------------------------------------
# Saving


def test_state_dict_round_trips_with_weights_only() -> None:
    model = _small_net()
    masks = _magnitude_masks(model, {"0": 0.5, "3": 0.9})
    buffer = io.BytesIO()
    torch.save(masks.state_dict(), buffer)
    buffer.seek(0)
    loaded = WeightMasks.from_state_dict(torch.load(buffer, weights_only=True))
    assert loaded.masks.keys() == masks.masks.keys()
    assert all(torch.equal(loaded.masks[n], m) for n, m in masks.masks.items())
    assert all(m.dtype == torch.bool for m in loaded.state_dict().values())


def test_state_dict_is_a_copy() -> None:
    masks = WeightMasks({"fc": torch.tensor([[True, False]])})
    masks.state_dict()["fc"][0, 1] = True
    assert masks.masks["fc"].tolist() == [[True, False]]


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ([torch.ones(2, dtype=torch.bool)], "not a list"),
        ({"fc": torch.ones(2)}, "invalid: the weight mask of 'fc' is a torch.float32"),
        ({"fc": torch.zeros(2, dtype=torch.bool)}, "invalid: .*prunes all 2"),
    ],
)
def test_bad_stored_masks_are_checkpoint_errors(state: object, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        WeightMasks.from_state_dict(state)
