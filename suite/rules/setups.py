"""The paper's comparison setups as executable rules: their requirements and certification.

Wang et al. (arXiv 2301.05219, Table 2) order comparison setups from weakest to strictest, each
adding one thing held equal to the previous:

====== =====================================================================================
S1     same dataset, network, and total sparsity or speedup (within the protocol's tolerance)
S2     same base model (the protocol's pinned checkpoint, or one the suite built from its recipe)
S3.1   same retraining epochs
S3.2   same whole retraining recipe: LR schedule, optimizer hyper-parameters, batch size,
       augmentation (the paper's recommended minimum)
S4.1   pruning-stage epochs within the protocol's pruning budget (0 for one-shot methods)
S4.2   the same pruning-stage LR schedule as the budget (strictest)
====== =====================================================================================

A submission is *certified* with the strictest setup whose requirements, and those of every
weaker setup, it meets (:func:`certify`). Its *division* is **closed** when that is S3.2 or
stricter, i.e. it was retrained with the protocol's own recipe; anything else is **open**,
ranked apart and disclosed. Smoke runs are never certified.

Every requirement is one registered :class:`~pruning_suite.rules.rule.Rule` whose ``setup`` names
the setup; :func:`certify` runs every registered setup rule (a plugin's included). ``pruning-suite
validate`` reports unmet requirements as warnings (a run may legitimately be open-division) and
reports an error only when a file's recorded certification claims more than its fields support
(R-CERT-1). This module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from ..contract.registry import Registry
from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.submission import Certification, Submission
from .registry import load_rules
from .rule import (
    ABS_TOL_TOP1,
    RULESET_VERSION,
    SETUPS,
    CheckContext,
    Finding,
    Rule,
    lr_matches,
)
from .scratch import ScratchBudget, scratch_epochs
from .targets import achieved_speedup, check_target_tolerance
from .targets import judged_by as _judged_by

__all__ = [
    "CLOSED_SETUPS",
    "SETUPS",
    "achieved_speedup",
    "certify",
    "not_stricter",
    "recheck",
    "is_suite_rule",
    "check_base_model",
    "check_dataset_checksum",
    "check_pruning_stage_epochs",
    "check_pruning_stage_lr",
    "check_retraining_epochs",
    "check_retraining_recipe",
    "check_target_tolerance",
    "division_of",
    "setup_rules",
    "unmet_requirements",
]

CLOSED_SETUPS = frozenset({"S3.2", "S4.1", "S4.2"})
"""Setups of the closed division: the protocol's own whole retraining recipe, or stricter."""


# achieved_speedup and the rule R-TARGET-1 live in .targets (re-exported here).


# ----------------------------------------------------------------------------------- S1


def check_dataset_checksum(ctx: CheckContext) -> Iterator[Finding]:
    """R-DATA-2 (S1): the data loaded has the protocol's checksum (unless it is 'unpinned')."""
    sub, protocol = ctx.submission, _judged_by(ctx)
    pinned = protocol.dataset.sha256
    if pinned != "unpinned" and sub.protocol.dataset_sha256 != pinned:
        yield Finding(
            "$.protocol.dataset_sha256",
            f"dataset sha256 {sub.protocol.dataset_sha256[:12]}... is not the protocol's "
            f"{pinned[:12]}...; the run used other data",
            "use the dataset files the protocol pins (see 'pruning-suite protocols show')",
        )


# ----------------------------------------------------------------------------------- S2


def check_base_model(ctx: CheckContext) -> Iterator[Finding]:
    """R-BASE-2 (S2): the run starts from the protocol's base model.

    When the protocol pins its base model (``base_reference``), the checkpoint sha256 and the
    dense test top-1 (absolute tolerance 1e-6 pp) must equal the pinned ones. Otherwise the base
    model must be one the suite built from the protocol's own recipe and seed, or its published
    pretrained weights (source ``trained``, ``cached`` or ``pretrained``), not an imported one.
    """
    sub, protocol = ctx.submission, _judged_by(ctx)
    base, ref = sub.base_model, protocol.base_reference
    if ref is not None and ref.checkpoint_sha256 is not None:
        if base.checkpoint_sha256 != ref.checkpoint_sha256:
            yield Finding(
                "$.base_model.checkpoint_sha256",
                f"base checkpoint {base.checkpoint_sha256[:12]}... is not the protocol's pinned "
                f"{ref.checkpoint_sha256[:12]}...",
                "start from the protocol's base model ('pruning-suite base import FILE --protocol ID')",
            )
    elif base.source not in ("trained", "cached", "pretrained"):
        yield Finding(
            "$.base_model.source",
            f"base model source {base.source!r}: not built from the protocol's recipe",
            "let the suite train the base model from the protocol's recipe (drop the import)",
        )
    if ref is not None and ref.dense_test_top1 is not None:
        if abs(base.dense_test_top1 - ref.dense_test_top1) > ABS_TOL_TOP1:
            yield Finding(
                "$.base_model.dense_test_top1",
                f"base dense test top-1 {base.dense_test_top1:.2f} is not the protocol's "
                f"{ref.dense_test_top1:.2f}",
                "start from the protocol's base model",
            )


# ----------------------------------------------------------------------------------- S3.x


def check_retraining_epochs(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-2 (S3.1): exactly the protocol's retraining epochs are logged.

    A rankable run with other epochs is certified at most S2 (open division); a smoke run logging
    more epochs than the protocol's is an error.
    """
    sub, protocol = ctx.submission, _judged_by(ctx)
    logged, epochs = len(sub.retraining), protocol.retraining.epochs
    if sub.smoke and logged > epochs:
        yield Finding(
            "$.retraining",
            f"{logged} retraining epochs are logged but protocol {sub.protocol.id}@"
            f"{sub.protocol.version} retrains for {epochs}; a smoke run logs at most that many",
            severity="error",
        )
    elif logged != epochs:
        yield Finding(
            "$.retraining",
            f"{logged} retraining epochs logged; protocol {protocol.id}@{protocol.version} "
            f"retrains for {epochs}",
            "retrain with the protocol's epochs (drop --retrain-epochs) for S3.1 or stricter",
        )


def check_retraining_recipe(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-3 (S3.2): the whole retraining recipe is the protocol's.

    Every logged epoch's LR equals the protocol's schedule at that epoch (relative 1e-9), and the
    recorded recipe (optimizer, momentum, weight decay, Nesterov, batch size, augmentation, LR
    schedule, epochs) equals the protocol's field by field. A file that records no recipe cannot
    be certified S3.2.
    """
    sub, protocol = ctx.submission, _judged_by(ctx)
    recipe = protocol.retraining
    for i, row in enumerate(sub.retraining):
        expected = recipe.lr_at(i)
        if not lr_matches(row.lr, expected):
            yield Finding(
                f"$.retraining[{i}].lr",
                f"epoch {i} ran at LR {row.lr:.10g}; the protocol's schedule "
                f"({recipe.lr_schedule}) says {expected:.10g}",
                "retrain with the protocol's LR schedule (drop --retrain-lr-schedule)",
            )
            break
    if sub.retraining_recipe is None:
        yield Finding(
            "$.retraining_recipe",
            "the retraining recipe is not recorded",
            "rerun with this suite, which records it",
        )
        return
    for name, used, wanted in _recipe_differences(sub.retraining_recipe, recipe):
        yield Finding(
            f"$.retraining_recipe.{name}",
            f"retraining {name} is {used!r}; the protocol's is {wanted!r}",
            "retrain with the protocol's whole recipe for S3.2 or stricter",
        )


def _recipe_differences(recorded: object, recipe: TrainRecipe) -> list[tuple[str, object, object]]:
    wanted = recipe.model_dump(mode="json")
    used = recorded.model_dump(mode="json")  # type: ignore[attr-defined]
    return [
        (name, used.get(name), value) for name, value in wanted.items() if used.get(name) != value
    ]


# ----------------------------------------------------------------------------------- S4.x


def check_pruning_stage_epochs(ctx: CheckContext) -> Iterator[Finding]:
    """R-STAGE-1 (S4.1): pruning-stage epochs within the protocol's pruning budget (0 = one-shot)."""
    sub, protocol = ctx.submission, _judged_by(ctx)
    stage, budget = sub.pruning_stage, protocol.pruning_budget
    if stage is None:
        yield Finding(
            "$.pruning_stage",
            "the pruning stage is not recorded",
            "rerun with this suite, which records it",
        )
    elif stage.epochs > budget.epochs:
        yield Finding(
            "$.pruning_stage.epochs",
            f"the pruning stage trained {stage.epochs} epochs; the protocol's budget is "
            f"{budget.epochs}",
            "fit the method's pruning-stage training into the protocol's pruning budget",
        )


def check_pruning_stage_lr(ctx: CheckContext) -> Iterator[Finding]:
    """R-STAGE-2 (S4.2): the pruning stage's LR schedule is the budget's (both none when one-shot)."""
    sub, protocol = ctx.submission, _judged_by(ctx)
    stage, budget = sub.pruning_stage, protocol.pruning_budget
    if stage is not None and stage.lr_schedule != budget.lr_schedule:
        yield Finding(
            "$.pruning_stage.lr_schedule",
            f"pruning-stage LR schedule {stage.lr_schedule!r}; the budget's is "
            f"{budget.lr_schedule!r}",
            "use the protocol's pruning-stage LR schedule",
        )


def check_pruning_stage_compute(ctx: CheckContext) -> Iterator[Finding]:
    """R-STAGE-3 (S4.1): the method's own data and compute stay within the pruning budget.

    The examples it drew through ``ctx.calibration_batches`` and the examples its code passed
    forward with gradients (scoring, hooks; :mod:`pruning_suite.engine.meter`) are each at most
    the budget's ``calibration_samples``, and its code took no optimizer step: training belongs
    to the suite's pruning-stage loop, whose epochs R-STAGE-1 counts. A file without these counts
    (written under rule sets 1-2, or with them removed; its recorded rule set is the file's own
    claim) does not meet S4.1.
    """
    sub, protocol = ctx.submission, _judged_by(ctx)
    stage, allowed = sub.pruning_stage, protocol.pruning_budget.calibration_samples
    if stage is None:
        return
    counts = (stage.calibration_samples, stage.method_grad_samples, stage.method_optimizer_steps)
    if None in counts:  # never recorded (rule sets 1-2) or removed: the compute is not shown
        yield Finding(
            "$.pruning_stage",
            "the pruning stage's samples and optimizer steps are not recorded",
            "rerun with this suite, which counts them",
        )
        return
    drawn, grad, steps = counts
    for path, what, value in (
        ("calibration_samples", "drew", drawn),
        ("method_grad_samples", "passed forward with gradients", grad),
    ):
        if value > allowed:  # type: ignore[operator]
            yield Finding(
                f"$.pruning_stage.{path}",
                f"the method {what} {value} training examples in its own code; the budget "
                f"allows {allowed} (pruning_budget.calibration_samples)",
                "draw fewer calibration batches, or train in the suite's pruning-stage loop "
                "(schedule(trains=True), regularize()) under a protocol with a pruning budget",
            )
    if steps:
        yield Finding(
            "$.pruning_stage.method_optimizer_steps",
            f"the method took {steps} optimizer steps in its own code",
            "a method does not train inside score(): use the suite's pruning-stage loop "
            "(schedule(trains=True), regularize())",
        )


def unmet_requirements(
    sub: Submission,
    protocol: ComparisonProtocol,
    rules: Registry[Rule] | None = None,
    setups: Iterable[str] = SETUPS,
) -> list[tuple[Rule, Finding]]:
    """Every requirement of the given ``setups`` that ``sub`` does not meet under ``protocol``.

    Args:
        sub: A submission.
        protocol: The protocol it ran under.
        rules: The rule registry (default: :func:`~pruning_suite.rules.registry.load_rules`).
        setups: Which setups' requirements to check (default: all, weakest first).

    Returns:
        ``(rule, finding)`` for each unmet requirement, in registration order.
    """
    wanted = set(setups)
    ctx = CheckContext(sub, protocol=protocol)
    return [
        (rule, finding)
        for rule in setup_rules(rules)
        if rule.setup in wanted
        for finding in rule.findings(ctx)
    ]


def setup_rules(rules: Registry[Rule] | None = None) -> list[Rule]:
    """The registered rules that are requirements of a comparison setup, in registration order."""
    registry = load_rules() if rules is None else rules
    return [rule for _, rule in registry.items() if rule.setup is not None and rule.scope == "file"]


def certify(
    sub: Submission, protocol: ComparisonProtocol, rules: Registry[Rule] | None = None
) -> Certification:
    """The strictest comparison setup ``sub`` satisfies under ``protocol``, and its division.

    Setups are cumulative: S3.2 also needs S1, S2 and S3.1. Smoke runs are never certified. The
    certification records the rule set it was made under (:data:`RULESET_VERSION`).

    Args:
        sub: A submission (its ``certification`` field is ignored).
        protocol: The protocol it ran under (same id, version and content).
        rules: The rule registry (default: :func:`~pruning_suite.rules.registry.load_rules`).

    Returns:
        ``setup`` (None when even S1 fails, or for a smoke run), ``division``, the one-line
        reasons the next stricter setup is not met (``unmet``) and ``ruleset``.
    """
    registry = load_rules() if rules is None else rules
    if sub.smoke:
        return _certification(None, "open", ["smoke run: reduced budget"])
    plugin_rules = [rule.id for rule in setup_rules(registry) if not is_suite_rule(rule)]
    if sub.scratch is not None:
        return _certify_scratch(sub, protocol, registry, plugin_rules)
    unmet = unmet_requirements(sub, protocol, registry)
    failed = {rule.setup for rule, _ in unmet}
    setup = None
    for candidate in SETUPS:
        if candidate in failed:
            break
        setup = candidate
    return _certification(setup, division_of(setup), _reasons(unmet), plugin_rules)


def recheck(
    sub: Submission, protocol: ComparisonProtocol, rules: Registry[Rule] | None = None
) -> Certification:
    """The certification a reader recomputes for ``sub``: :func:`certify` under the suite's own
    rules and those plugin setup rules the file was certified under
    (``certification.plugin_rules``) that are installed here.

    A plugin rule installed here but not in force when the file was certified does not change
    its certification (it would make other people's files disagree with themselves); it still
    reports its findings in ``validate``. R-CERT-1, ``report`` and the leaderboard use this.
    """
    registry = load_rules() if rules is None else rules
    recorded = set(sub.certification.plugin_rules) if sub.certification else set()
    judging: Registry[Rule] = Registry("rule")
    for name, rule in registry.items():
        if is_suite_rule(rule) or name in recorded:
            judging.add(name, rule)
    return certify(sub, protocol, judging)


def is_suite_rule(rule: Rule) -> bool:
    """True for a rule of the suite's own (RULES.md): its check is code of this package, not a
    plugin's."""
    module = getattr(rule.check, "__module__", None) or ""
    return module.startswith(f"{__package__}.")


def _reasons(unmet: list[tuple[Rule, Finding]]) -> list[str]:
    return [f"{rule.setup} {rule.id}: {finding.message}" for rule, finding in unmet]


def _certification(
    setup: str | None, division: str, unmet: list[str], plugin_rules: Iterable[str] = ()
) -> Certification:
    return Certification.model_validate(
        {
            "setup": setup,
            "division": division,
            "unmet": unmet,
            "ruleset": RULESET_VERSION,
            "plugin_rules": sorted(plugin_rules),
        }
    )


def _certify_scratch(
    sub: Submission, protocol: ComparisonProtocol, rules: Registry[Rule], plugin_rules: list[str]
) -> Certification:
    """A scratch baseline: its SX setup when S1 holds and it trained exactly its budget (R-SX-1)
    under the protocol's K1, K2, P; open division (it is compared with pruning in studies, not
    ranked among pruning methods)."""
    info = sub.scratch
    assert info is not None
    reasons = _reasons(unmet_requirements(sub, protocol, rules, setups=("S1",)))
    budget = scratch_epochs(
        ScratchBudget.under(protocol, info.setup, sub.pruning.flops_dense, sub.pruning.flops_pruned)
    )
    if len(sub.retraining) != budget:
        reasons.append(
            f"{info.setup} R-SX-1: {len(sub.retraining)} scratch epochs logged, budget {budget}"
        )
    return _certification(None if reasons else info.setup, "open", reasons, plugin_rules)


def not_stricter(setup: str | None, than: str | None) -> bool:
    """True when ``setup`` is ``than`` or a weaker setup (None, no setup, is the weakest; the
    scratch setups SX-A / SX-B compare with nothing but themselves and None)."""
    order = (None, *SETUPS)
    if setup in order and than in order:
        return order.index(setup) <= order.index(than)
    return setup is None or setup == than


def division_of(setup: str | None) -> Literal["closed", "open"]:
    """``closed`` for S3.2 or stricter (the protocol's own retraining recipe), else ``open``."""
    return "closed" if setup in CLOSED_SETUPS else "open"
