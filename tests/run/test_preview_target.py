"""``pruning-suite prune`` warns in one line when the method's allocation would miss R-TARGET-1
(issue 12: a global-L1 run at uniform-50 was certified nothing after the full run, sparsity 70.29%
vs 74.33%, with no warning from ``prune``), and resolves budget targets."""

from __future__ import annotations

import pytest

from pruning_suite.cli import main
from pruning_suite.engine.measure import Counts
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run.preview import PrunePreview, preview_pruning, target_warning

DIGITS, BUDGET = load_protocol("digits-convnet"), load_protocol("digits-convnet-budget")
DENSE = Counts(params=38_378, macs=337_536, flops=675_072)
REFERENCE = {"sparsity": 0.7433, "speedup": 3.8865}  # uniform-50 on the digits ConvNet


def _preview(protocol, target: str, params: int, macs: int) -> PrunePreview:
    pruned = Counts(params=params, macs=macs, flops=2 * macs)
    return PrunePreview(
        protocol, target, "l1-global", "random init (seed 0)", "training split", [],
        DENSE, pruned, pruned, "global",
    )  # fmt: skip


def test_a_miss_of_the_ratio_target_is_one_line_naming_a_budget_protocol() -> None:
    preview = _preview(DIGITS, "uniform-50", params=11_402, macs=134_478)  # 70.29%, 2.51x
    warning = target_warning(preview, DIGITS.target("uniform-50"), REFERENCE, "global allocation")
    assert warning == (
        "global allocation removes 70.29% of params vs the target's 74.33% and gives a 2.51x MACs "
        "speedup vs the target's 3.89x: this run would not certify S1; use a budget target "
        "(digits-convnet-budget)"
    )


def test_within_the_tolerance_there_is_no_warning() -> None:
    preview = _preview(DIGITS, "uniform-50", params=9_850, macs=86_848)  # uniform-50 itself
    assert target_warning(preview, DIGITS.target("uniform-50"), REFERENCE, "this pruning") is None


def test_a_budget_target_warns_only_below_its_speedup() -> None:
    target = BUDGET.target("macs-2x")
    below = _preview(BUDGET, "macs-2x", params=20_000, macs=175_000)  # 1.93x
    assert target_warning(
        below, target, {"sparsity": 0.5, "speedup": 2.08}, "global allocation"
    ) == (
        "global allocation gives a 1.93x MACs speedup, below the target's 2x: this run would not "
        "certify S1"
    )
    above = _preview(BUDGET, "macs-2x", params=5_000, macs=160_000)  # any sparsity, 2.11x
    assert target_warning(above, target, {"sparsity": 0.5, "speedup": 2.08}, "x") is None


def test_prune_previews_a_budget_target_at_its_uniform_ratio() -> None:
    preview = preview_pruning("digits-convnet-budget", "l1norm", "macs-2x")
    assert [(name, after, ratio) for name, _, after, ratio in preview.layers] == [
        ("conv1", 11, 19 / 64), ("conv2", 22, 19 / 64), ("fc1", 45, 19 / 64),
    ]  # fmt: skip
    assert preview.speedup == pytest.approx(337_536 / 162_018) and preview.warning is None


def test_prune_warns_on_stderr_when_global_allocation_misses_a_ratio_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = '{"scope": "global"}'
    assert (
        main(["prune", "--plugin", "group-norm", "--config", config, "--target", "uniform-50"]) == 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: global allocation ")
    assert err[0].endswith(
        "this run would not certify S1; use a budget target (digits-convnet-budget)"
    )
    budget = [
        "prune",
        "--plugin",
        "group-norm",
        "--config",
        config,
        "--protocol",
        "digits-convnet-budget",
    ]
    assert main(budget) == 0
    assert capsys.readouterr().err == ""
