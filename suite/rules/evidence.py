"""Rules on the evidence a submission carries (tamper evidence, issue 14).

R-EVAL-3 (file): the reported accuracies agree with the counts behind them, and every accuracy in
the file is possible on its split (a multiple of ``100 / N`` for an ``N``-example split: 99.5%
is impossible on 360 test images). R-EVID-2 (file): a run that is not a smoke run records that
evidence, its pruning stage's counts and its method's code digest. R-EVID-1 (tree): two seeds of one ranking row never share the
final model's weight digest (a copied seed). The evidence itself is computed by
:mod:`pruning_suite.engine.evidence`; this module does not import torch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

from ..record.identity import ranking_key
from ..record.submission import Submission
from .rule import CheckContext, Finding, TreeContext, TreeEntry

__all__ = [
    "check_accuracy_counts",
    "check_copied_seeds",
    "check_evidence_recorded",
    "impossible_accuracy",
]

_COUNT_TOL = 1e-6
"""How far ``accuracy * N / 100`` may lie from an integer (float rounding of a percentage)."""


def impossible_accuracy(percent: float, examples: int) -> bool:
    """True when ``percent`` cannot be a top-1 accuracy on ``examples`` examples."""
    count = percent * examples / 100.0
    return abs(count - round(count)) > _COUNT_TOL


def check_accuracy_counts(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVAL-3: final accuracies equal ``100 * correct / N``; every logged test and validation
    accuracy is a multiple of ``100 / N``; a non-smoke run evaluated the protocol's whole test
    split (``dataset.test_size`` when the protocol fixes it). A file without counts (written
    before rule set 3, or with its counts removed) is checked against the protocol's split sizes
    (``test_size``, ``val_size``) when it is not a smoke run; its final accuracies are left to
    ``pruning-suite audit``, which re-executes it."""
    sub, final = ctx.submission, ctx.submission.final
    test_n, val_n = final.test_examples, final.val_examples
    spec = ctx.protocol.dataset if ctx.protocol is not None else None
    if test_n is not None and spec is not None and spec.test_size and not sub.smoke:
        if test_n != spec.test_size:
            yield Finding(
                "$.final.test_examples",
                f"evaluated on {test_n} test examples; the protocol's test split has "
                f"{spec.test_size}",
                "evaluate on the protocol's whole test split",
            )
    for name, correct, examples in (
        ("test", final.test_correct, final.test_examples),
        ("val", final.val_correct, final.val_examples),
    ):
        reported = getattr(final, f"{name}_top1")
        if (
            correct is not None
            and examples
            and not math.isclose(reported, 100.0 * correct / examples, rel_tol=0, abs_tol=1e-9)
        ):
            yield Finding(
                f"$.final.{name}_top1",
                f"final.{name}_top1 is {reported!r} but {correct} of {examples} examples right "
                f"is {100.0 * correct / examples!r}",
                "report the accuracy the model achieved; a submission's numbers are not edited",
            )
    if spec is not None and not sub.smoke:  # counts dropped: the protocol still fixes N
        test_n = test_n if test_n is not None else (spec.test_size or None)
        val_n = val_n if val_n is not None else spec.val_size
    yield from _impossible(sub, test_n, val_n)


def _impossible(sub: object, test_n: int | None, val_n: int | None) -> Iterator[Finding]:
    rows = [(f"$.retraining[{i}]", row) for i, row in enumerate(sub.retraining)]  # type: ignore[attr-defined]
    stage = sub.pruning_stage  # type: ignore[attr-defined]
    if stage is not None:
        rows += [(f"$.pruning_stage.log[{i}]", row) for i, row in enumerate(stage.log)]
    values = [(f"{where}.test_top1", row.test_top1, test_n) for where, row in rows]
    values += [(f"{where}.val_top1", row.val_top1, val_n) for where, row in rows]
    final = sub.final  # type: ignore[attr-defined]
    values += [
        ("$.final.test_top1", final.test_top1, test_n),
        ("$.final.val_top1", final.val_top1, val_n),
        (
            "$.final.pruned_test_top1_before_retraining",
            final.pruned_test_top1_before_retraining,
            test_n,
        ),
    ]
    for where, percent, examples in values:
        if examples and impossible_accuracy(percent, examples):
            yield Finding(
                where,
                f"{percent!r}% is not a possible accuracy on {examples} examples "
                f"(not a multiple of 100/{examples})",
                "report the accuracy the model achieved; a submission's numbers are not edited",
            )
            return  # one is enough: the file was edited


def check_evidence_recorded(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVID-2: a run that is not a smoke run records what binds its result to what ran: the
    counts of right test and validation predictions (``final.*_correct``, ``final.*_examples``),
    the final model's digests (``evidence``), the pruning stage's counts
    (``pruning_stage.calibration_samples``, ``method_grad_samples``, ``method_optimizer_steps``)
    and the method's code digest (``method.code_sha256``). Without them an edited accuracy
    (R-EVAL-3), a copied seed (R-EVID-1), a method that trained in its own code (R-STAGE-3) or
    edited code (``pruning-suite audit``) goes unseen, so a file lacking any is refused, whatever
    rule set it claims (files written before rule set 3 lack them: rerun those)."""
    sub = ctx.submission
    if sub.smoke:
        return
    missing = [(where, what) for where, what, absent in _evidence_fields(sub) if absent]
    if missing:
        yield Finding(
            missing[0][0],
            f"the run's {', '.join(what for _, what in missing)} are not recorded: its result "
            "cannot be checked against what ran",
            "rerun it with this suite, which records them (`pruning-suite run` with the file's "
            "configuration, or `pruning-suite audit FILE`); a method whose source cannot be read "
            "(defined interactively) has no code digest: install it as a package",
        )


def _evidence_fields(sub: Submission) -> list[tuple[str, str, bool]]:
    """``(where, what, absent)`` for each piece of evidence R-EVID-2 asks of ``sub``."""
    final, stage = sub.final, sub.pruning_stage
    counts = (final.test_correct, final.test_examples, final.val_correct, final.val_examples)
    stage_counts = (
        None
        if stage is None
        else (stage.calibration_samples, stage.method_grad_samples, stage.method_optimizer_steps)
    )
    return [
        ("$.final", "test and validation counts", None in counts),
        ("$.evidence", "weight and prediction digests", sub.evidence is None),
        ("$.pruning_stage", "pruning-stage counts", stage_counts is None or None in stage_counts),
        ("$.method.code_sha256", "method code digest", sub.method.code_sha256 is None),
    ]


def check_copied_seeds(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-EVID-1: no two valid runs of one ranking row end with the same weights (a copied seed:
    the seed and run id can be rewritten, the final model's weight digest cannot). An invalid
    copy is refused by a file rule already and leaves its original valid (as R-SEED-1)."""
    groups: dict[object, list[TreeEntry]] = defaultdict(list)
    for entry in entries:
        sub = entry.submission
        if sub is not None and entry.ok and sub.evidence is not None and not sub.smoke:
            key = (ranking_key(sub, entry.division, entry.setup), sub.evidence.weights_sha256)
            groups[key].append(entry)
    for same in groups.values():
        for entry in same if len(same) > 1 else ():
            others = ", ".join(str(o.path) for o in same if o is not entry)
            yield Finding(
                "$.evidence.weights_sha256",
                f"the final weights are identical to those of {others}: a copied run, "
                "not another seed",
                "`pruning-suite audit` both files: the copy does not reproduce its weights from "
                "its own seed; delete it and run the missing seed",
                file=entry.path,
            )
