"""Budget targets in protocol files: exactly one form, a speedup above 1, no skip patterns, and
no layer ratios of their own (the core resolves them on the model)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pruning_suite.errors import ProtocolError
from pruning_suite.protocol.spec import PruningTarget, load_protocol


def test_a_budget_target_fixes_only_the_speedup() -> None:
    target = PruningTarget(id="macs-2x", speedup=2.0)
    assert target.is_budget and target.speedup == 2.0
    with pytest.raises(ProtocolError, match="fixes only a MACs speedup") as info:
        target.resolve(["conv1"])
    assert "target_ratios" in info.value.hint
    assert not PruningTarget(id="u", layer_ratios={"*": 0.5}).is_budget


@pytest.mark.parametrize(
    "fields",
    [
        {"speedup": 2.0, "layer_ratios": {"*": 0.5}},
        {"speedup": 2.0, "stage_ratios": (0.0, 0.5, 0.0)},
        {},
    ],
)
def test_exactly_one_form(fields: dict) -> None:
    with pytest.raises(ValidationError, match="exactly one of layer_ratios .* or speedup"):
        PruningTarget(id="t", **fields)


@pytest.mark.parametrize("speedup", [1.0, 0.5, -2.0])
def test_a_speedup_must_exceed_one(speedup: float) -> None:
    with pytest.raises(ValidationError, match="greater than 1"):
        PruningTarget(id="t", speedup=speedup)


def test_skip_is_refused_with_a_speedup() -> None:
    with pytest.raises(ValidationError, match="narrow the protocol's prunable_layers"):
        PruningTarget(id="t", speedup=2.0, skip=("fc1",))


def test_the_shipped_budget_protocol_shares_digits_convnets_recipes() -> None:
    budget, uniform = load_protocol("digits-convnet-budget"), load_protocol("digits-convnet")
    assert [(t.id, t.speedup) for t in budget.targets] == [("macs-2x", 2.0), ("macs-3x", 3.0)]
    for field in ("dataset", "architecture", "base_model", "retraining", "prunable_layers"):
        assert getattr(budget, field) == getattr(uniform, field), field
