"""The scratch baseline of the paper's pruning-vs-scratch comparisons (SX-A / SX-B).

Wang et al. (arXiv 2301.05219, Sec. 5, M2) compare a pruned-and-retrained model with the same
small architecture trained from scratch. This method borrows the architecture another method
produces at the target (``arch_from``: its scores and layer ratios), and the core then
re-initializes that small dense model with PyTorch's default init and trains it with the
protocol's base recipe, its LR milestones scaled to the budget: SX-A the same total epochs as
pretrain + prune + retrain, SX-B the same total FLOPs, ``K1 x F1 / F2 (+ K2)``
(:func:`pruning_suite.rules.scratch.scratch_epochs`).

Scratch is a training regime of the run (``RunConfig(plugin="l1norm", regime="scratch")``); this
method is the name it is recorded under, so ``--plugin scratch --config arch_from=l1norm`` and
the regime land on the same submission and run id, and the committed files keep validating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from pruning_suite import PruningContext, PruningMethod, hookimpl
from pruning_suite.contract.method import MethodConfig
from pruning_suite.errors import PluginError

if TYPE_CHECKING:
    import torch  # imported in score(): listing plugins stays torch-free


class ScratchConfig(MethodConfig):
    """Options of the scratch baseline."""

    arch_from: str = "l1norm"
    """The method whose pruned architecture is trained from scratch."""
    setup: Literal["SX-A", "SX-B"] = "SX-B"
    """The training budget: same total epochs (SX-A) or same total FLOPs (SX-B)."""

    @field_validator("arch_from")
    @classmethod
    def _a_filter_method(cls, value: str) -> str:
        """Checked when the method is configured, so a bad ``arch_from`` costs no run."""
        from pruning_suite.contract.plugins import load_registry

        if value == "scratch":
            raise ValueError(
                "scratch cannot take its architecture from itself; name a filter method, "
                "e.g. l1norm"
            )
        try:
            method = load_registry().method(value)
        except PluginError as err:
            raise ValueError(f"arch_from: {err.message}") from err
        if method.granularity != "filter":
            raise ValueError(
                f"scratch needs a filter-granularity method, not {value!r} ({method.granularity}):"
                " it trains a smaller dense network"
            )
        return value


class Scratch(PruningMethod):
    """The architecture ``arch_from`` prunes to, trained from scratch under an SX budget."""

    name = "scratch"
    version = "1"
    description = (
        "scratch baseline: another method's pruned architecture trained from scratch (SX-A/SX-B)"
    )
    Config = ScratchConfig
    from_scratch = True

    def _architect(self) -> PruningMethod:
        from pruning_suite.contract.plugins import load_registry

        return load_registry().method(self.config.arch_from)  # checked by ScratchConfig

    def code_delegates(self) -> tuple[type[PruningMethod], ...]:
        """``arch_from``'s class: its code decides the architecture, so it is in the digest."""
        return (type(self._architect()),)

    def score(self, ctx: PruningContext) -> Mapping[str, torch.Tensor]:
        """The scores of ``arch_from`` (which filters go does not matter after re-init; how many does)."""
        return self._architect().score(ctx)

    def layer_ratios(self, ctx: PruningContext) -> Mapping[str, float]:
        """The layer-wise ratios of ``arch_from``."""
        return self._architect().layer_ratios(ctx)


@hookimpl
def register_methods() -> list[type[PruningMethod]]:
    return [Scratch]
