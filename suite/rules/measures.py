"""Rules of the numbers a submission records: each derived number is recomputed from the raw ones.

Measurement (R-MEAS-1..7), evaluation (R-EVAL-1, R-EVAL-2), the epoch log (R-LOG-1) and
rankability (R-RANK-1). Every check takes a :class:`~pruning_suite.rules.rule.CheckContext` and
yields :class:`~pruning_suite.rules.rule.Finding` items; its docstring starts with its rule id.
This module does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from .rule import ABS_TOL, REL_TOL_SPEEDUP, CheckContext, Finding, number

__all__ = [
    "check_base_params",
    "check_delta_top1",
    "check_effective_counts",
    "check_epoch_numbers",
    "check_final_is_last_epoch",
    "check_flops_are_twice_macs",
    "check_layer_ratios",
    "check_pruned_not_larger",
    "check_rankable",
    "check_sparsity",
    "check_speedup",
]


def check_flops_are_twice_macs(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-1: FLOPs = 2 x MACs, dense and pruned (MACs are multiply-accumulates)."""
    m = ctx.submission.pruning
    for kind, macs, flops in (
        ("dense", m.macs_dense, m.flops_dense),
        ("pruned", m.macs_pruned, m.flops_pruned),
    ):
        if flops != 2 * macs:
            yield Finding(
                f"$.pruning.flops_{kind}",
                f"flops_{kind} is {flops} but 2 x macs_{kind} is {2 * macs}; FLOPs = 2 x MACs",
            )


def check_speedup(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-2: speedup = macs_dense / macs_pruned (relative tolerance 1e-6)."""
    m = ctx.submission.pruning
    expected = m.macs_dense / m.macs_pruned
    if not math.isclose(m.speedup, expected, rel_tol=REL_TOL_SPEEDUP):
        yield Finding(
            "$.pruning.speedup",
            f"speedup is {number(m.speedup)} but macs_dense / macs_pruned is {number(expected)}",
        )


def check_sparsity(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-3: sparsity = 1 - params_pruned / params_dense (filter granularity) or
    1 - params_nonzero / params_dense (weight granularity), absolute tolerance 1e-9."""
    m = ctx.submission.pruning
    if m.granularity == "weight":
        if m.params_nonzero is None:
            return  # R-MEAS-7 reports the missing count
        expected, formula = (
            1 - m.params_nonzero / m.params_dense,
            "1 - params_nonzero / params_dense",
        )
    else:
        expected, formula = 1 - m.params_pruned / m.params_dense, "1 - params_pruned / params_dense"
    if not math.isclose(m.sparsity, expected, rel_tol=0, abs_tol=ABS_TOL):
        yield Finding(
            "$.pruning.sparsity",
            f"sparsity is {number(m.sparsity)} but {formula} is {number(expected)}",
        )


def check_effective_counts(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-7: masked zeros are not dense compute: weight granularity records effective counts.

    For weight granularity, ``params_nonzero``, ``macs_effective``, ``flops_effective`` and
    ``effective_speedup`` are present, the dense shapes are kept (``params_pruned ==
    params_dense``, ``macs_pruned == macs_dense``), and the method's granularity is the
    protocol's. Whenever present: ``flops_effective = 2 x macs_effective``, ``effective_speedup =
    macs_dense / macs_effective`` (relative 1e-6), effective figures <= the pruned ones.
    """
    sub = ctx.submission
    m = sub.pruning
    if sub.method.granularity != m.granularity:
        yield Finding(
            "$.method.granularity",
            f"method granularity is {sub.method.granularity!r} but pruning.granularity is "
            f"{m.granularity!r}",
        )
    fields = ("params_nonzero", "macs_effective", "flops_effective", "effective_speedup")
    missing = [name for name in fields if getattr(m, name) is None]
    if m.granularity == "weight":
        for name in missing:
            yield Finding(
                f"$.pruning.{name}",
                f"{name} is missing; weight granularity records effective counts",
            )
        for kind in ("params", "macs"):
            if getattr(m, f"{kind}_pruned") != getattr(m, f"{kind}_dense"):
                yield Finding(
                    f"$.pruning.{kind}_pruned",
                    f"{kind}_pruned differs from {kind}_dense; weight granularity keeps dense "
                    "shapes (the removed weights are counted by the effective figures)",
                )
    if m.macs_effective is not None and m.flops_effective is not None:
        if m.flops_effective != 2 * m.macs_effective:
            yield Finding(
                "$.pruning.flops_effective",
                f"flops_effective is {m.flops_effective} but 2 x macs_effective is "
                f"{2 * m.macs_effective}; FLOPs = 2 x MACs",
            )
    if m.macs_effective is not None and m.effective_speedup is not None:
        expected = m.macs_dense / m.macs_effective
        if not math.isclose(m.effective_speedup, expected, rel_tol=REL_TOL_SPEEDUP):
            yield Finding(
                "$.pruning.effective_speedup",
                f"effective_speedup is {number(m.effective_speedup)} but macs_dense / "
                f"macs_effective is {number(expected)}",
            )
    for kind, effective, pruned in (
        ("params_nonzero", m.params_nonzero, m.params_pruned),
        ("macs_effective", m.macs_effective, m.macs_pruned),
    ):
        if effective is not None and effective > pruned:
            yield Finding(
                f"$.pruning.{kind}",
                f"{kind} is {effective} but the pruned model has {pruned}; non-zero counts "
                "cannot exceed the model's",
            )


def check_base_params(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-4: the base model's parameter count is the dense count the pruning stage measured."""
    sub = ctx.submission
    if sub.base_model.params != sub.pruning.params_dense:
        yield Finding(
            "$.base_model.params",
            f"base_model.params is {sub.base_model.params} but pruning.params_dense is "
            f"{sub.pruning.params_dense}; both count the same dense model",
        )


def check_layer_ratios(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-5: each layer's achieved_ratio = (before - after) / before (abs. tolerance 1e-9)."""
    for i, layer in enumerate(ctx.submission.pruning.layers):
        expected = (layer.before - layer.after) / layer.before
        if not math.isclose(layer.achieved_ratio, expected, rel_tol=0, abs_tol=ABS_TOL):
            yield Finding(
                f"$.pruning.layers[{i}].achieved_ratio",
                f"layer {layer.name!r}: achieved_ratio is {number(layer.achieved_ratio)} but "
                f"(before - after) / before is ({layer.before} - {layer.after}) / {layer.before}"
                f" = {number(expected)}",
            )


def check_pruned_not_larger(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-6: pruning never adds: macs_pruned <= macs_dense, params_pruned <= params_dense."""
    m = ctx.submission.pruning
    for kind, dense, pruned in (
        ("macs", m.macs_dense, m.macs_pruned),
        ("params", m.params_dense, m.params_pruned),
    ):
        if pruned > dense:
            yield Finding(
                f"$.pruning.{kind}_pruned",
                f"{kind}_pruned is {pruned} but {kind}_dense is {dense}; a pruned model is not "
                "larger than its dense model",
            )


def check_final_is_last_epoch(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVAL-1: the reported accuracy is the final retraining epoch's, or (``selection:
    best-val``) that of the retraining epoch with the best validation top-1, earliest on ties;
    never a best test epoch, and never an epoch before the last pruning step (the pruning stage's
    rows are not retraining rows)."""
    sub = ctx.submission
    rows = sub.retraining
    if sub.final.selection == "best-val":
        best = max(row.val_top1 for row in rows)
        chosen = next(i for i, row in enumerate(rows) if row.val_top1 == best)
        how = "the retraining epoch with the best validation top-1"
    else:
        chosen = len(rows) - 1
        how = "the last retraining epoch"
    if sub.final.selected_epoch is not None and sub.final.selected_epoch != chosen:
        yield Finding(
            "$.final.selected_epoch",
            f"selected_epoch is {sub.final.selected_epoch} but {how} is {chosen}",
        )
    for name in ("test_top1", "val_top1"):
        final, logged = getattr(sub.final, name), getattr(rows[chosen], name)
        if not math.isclose(final, logged, rel_tol=0, abs_tol=ABS_TOL):
            yield Finding(
                f"$.final.{name}",
                f"final.{name} is {number(final)} but {how} ($.retraining[{chosen}]) has "
                f"{number(logged)}; report the final epoch (or the best-validation one), never the "
                "best test epoch",
            )


def check_delta_top1(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVAL-2: final.delta_top1 = final.test_top1 - base_model.dense_test_top1 (abs. 1e-9)."""
    sub = ctx.submission
    expected = sub.final.test_top1 - sub.base_model.dense_test_top1
    if not math.isclose(sub.final.delta_top1, expected, rel_tol=0, abs_tol=ABS_TOL):
        yield Finding(
            "$.final.delta_top1",
            f"delta_top1 is {number(sub.final.delta_top1)} but final.test_top1 - "
            f"base_model.dense_test_top1 is {number(expected)}",
        )


def check_epoch_numbers(ctx: CheckContext) -> Iterator[Finding]:
    """R-LOG-1: retraining epochs are numbered 0, 1, ..., n-1 in order."""
    for i, row in enumerate(ctx.submission.retraining):
        if row.epoch != i:
            yield Finding(
                f"$.retraining[{i}].epoch",
                f"epoch is {row.epoch} but row {i} must be epoch {i}; epochs are numbered 0..n-1",
            )


def check_rankable(ctx: CheckContext) -> Iterator[Finding]:
    """R-RANK-1: rankable == not smoke: smoke runs are never ranked, every other run is."""
    sub = ctx.submission
    if sub.rankable != (not sub.smoke):
        yield Finding(
            "$.rankable",
            f"rankable is {str(sub.rankable).lower()} but smoke is {str(sub.smoke).lower()}; "
            "rankable must equal not smoke",
        )
