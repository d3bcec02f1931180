"""taylor meets the pruning-suite method contract (the conformance kit, pruning_suite.testing),
and its scores are the first-order Taylor estimate computed by hand.

Run from the repository root after ``pip install -e plugins/example_taylor``:
``pytest plugins/example_taylor/tests``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pruning_suite.testing import MethodConformance, tiny_context, tiny_model

from pruning_suite_taylor import Taylor, TaylorConfig


class TestTaylor(MethodConformance):
    """Config, determinism for a seed, no mutation of the model, score shapes, layer ratios,
    schedule, hook order and a smoke run of the real runner."""

    method = Taylor
    config = {"batches": 2}


def _by_hand(batches: int) -> dict[str, torch.Tensor]:
    """Sum over batches of |sum_j w_ij dL/dw_ij + b_i dL/db_i| per unit, via autograd.grad."""
    model = tiny_model()
    names = ["conv1", "conv2", "fc1"]
    total = {name: torch.zeros(model.get_submodule(name).weight.shape[0]) for name in names}
    for inputs, labels in tiny_context(tiny_model()).calibration_batches(batches):
        loss = F.cross_entropy(model(inputs), labels)
        for name in names:
            module = model.get_submodule(name)
            gw, gb = torch.autograd.grad(loss, [module.weight, module.bias], retain_graph=True)
            unit = (module.weight * gw).flatten(1).sum(1) + module.bias * gb
            total[name] += unit.detach().abs()
    return total


def test_scores_are_the_taylor_estimate_summed_over_the_calibration_batches() -> None:
    scores = Taylor(TaylorConfig(batches=3)).score(tiny_context(tiny_model()))
    expected = _by_hand(3)
    for name, value in expected.items():
        torch.testing.assert_close(scores[name], value, rtol=1e-5, atol=1e-6)


def test_only_the_configured_batches_are_drawn() -> None:
    ctx = tiny_context(tiny_model())
    Taylor(TaylorConfig(batches=2)).score(ctx)
    assert ctx.calibration_batches.samples == 20  # 2 batches of the kit's 10 examples
