"""One rule type, one finding type, and the tolerances every rule shares.

A :class:`Rule` is one fairness or consistency rule of RULES.md: its stable id, the comparison
setup it guards (or None), its scope (one file, a tree of files, or the runner by construction),
its default severity, a description, and its check (None for a rule the runner enforces by
construction, or the reading stages of ``validate``). Built-in rules register through
:mod:`pruning_suite.rules.builtin`; a plugin adds one by returning it from ``register_rules``.
Every check yields :class:`Finding` items; ``validate`` turns them into problems with a path and
the rule id, and certification reads the findings of the setup rules.

This module does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..contract.registry import Registry
from ..protocol.spec import ComparisonProtocol
from ..record.submission import Submission

__all__ = [
    "ABS_TOL",
    "ABS_TOL_TOP1",
    "REL_TOL_LR",
    "REL_TOL_SPEEDUP",
    "RULESET_VERSION",
    "SETUPS",
    "CheckContext",
    "Finding",
    "Rule",
    "Scope",
    "Severity",
    "TreeContext",
    "TreeEntry",
    "lr_matches",
    "number",
    "requirement_protocol",
]

RULESET_VERSION = 5
"""The version of the rule set, recorded in every new submission's certification (as MLPerf pins
its ruleset). Files without it were certified under rule set 1. Bump it whenever a rule is added,
removed or changes what it accepts. 3: R-STAGE-3 (the pruning stage's counted compute), R-EVAL-3 and R-EVID-1 (evidence).
4: R-BASE-4 (one base checkpoint, one set of dense figures); R-STAGE-3 no longer excuses a
file without the stage's counts by the rule set it claims (the claim is the file's own).
5: R-EVID-2 (a non-smoke run records its counts, digests, pruning-stage counts and code digest,
whatever rule set it claims); R-EVAL-3 judges a non-smoke file without counts on the protocol's
split sizes (``test_size``, ``val_size``); R-EVID-1 compares valid files only."""

REL_TOL_LR = 1e-9
"""Relative tolerance when an epoch's LR is compared with a schedule's."""

REL_TOL_SPEEDUP = 1e-6
"""Relative tolerance of a recorded speedup against its MACs ratio."""

ABS_TOL = 1e-9
"""Absolute tolerance of a recorded fraction or accuracy against the one recomputed."""

ABS_TOL_TOP1 = 1e-6
"""Absolute tolerance (percentage points) of a dense top-1 against a pinned one."""

COULD_NOT_RUN = " could not run: "
"""In a finding's message (and so in a certification's ``unmet`` line): the rule's check raised."""


def rule_failed(line: str) -> bool:
    """True for a finding message or ``unmet`` line saying a rule's check raised."""
    return COULD_NOT_RUN in line


Severity = Literal["error", "warning"]
Scope = Literal["file", "tree", "run", "read", "deep"]


@dataclass(frozen=True)
class Finding:
    """One thing a check found.

    Attributes:
        where: JSON path inside the file, e.g. ``$.retraining[3].lr``; ``$`` for the whole file.
        message: What is wrong, one line.
        hint: How to fix it, one line; may be empty.
        severity: ``"error"`` or ``"warning"``; None means the rule's own severity.
        file: The file a tree rule's finding belongs to (None for a file rule's).
    """

    where: str
    message: str
    hint: str = ""
    severity: Severity | None = None
    file: Path | None = None


@dataclass(frozen=True)
class CheckContext:
    """What a file rule sees.

    Attributes:
        submission: The schema- and model-valid submission.
        path: The file it was read from, or None for a submission not read from a file.
        protocol: The protocol the run claims, when the suite knows it (shipped, or given to
            ``validate --protocol FILE``) with the same content hash; else None.
        given: The protocols given to ``validate --protocol FILE`` (or by a study).
        rules: The rule registry being run (certification inside a rule uses the same rules);
            None for the default one.
    """

    submission: Submission
    path: Path | None = None
    protocol: ComparisonProtocol | None = None
    given: tuple[ComparisonProtocol, ...] = ()
    rules: Registry[Rule] | None = None


@dataclass(frozen=True)
class TreeEntry:
    """What a tree rule sees of one file.

    Attributes:
        path: The file.
        data: The parsed JSON (None when unreadable).
        submission: The model-valid submission, or None.
        ok: True when the file has no error so far (tree rules run in registration order, so a
            later one sees the errors of an earlier one).
        protocol: The known protocol of the run (as :attr:`CheckContext.protocol`), or None.
        division: The division recomputed from the file's fields (``"open"`` when unknown).
        setup: The setup recomputed from the file's fields, or None.
    """

    path: Path
    data: Any
    submission: Submission | None
    ok: bool
    protocol: ComparisonProtocol | None = None
    division: str = "open"
    setup: str | None = None


@dataclass(frozen=True)
class TreeContext:
    """What a tree rule sees besides the files.

    Attributes:
        given: Protocols to look runs up in besides the shipped ones.
    """

    given: tuple[ComparisonProtocol, ...] = ()


SETUPS: tuple[str, ...] = ("S1", "S2", "S3.1", "S3.2", "S4.1", "S4.2")
"""The comparison setups, weakest to strictest (Wang et al., arXiv 2301.05219, Table 2)."""

FileCheck = Callable[[CheckContext], Iterable[Finding]]
TreeCheck = Callable[[Sequence[TreeEntry], TreeContext], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """One rule of RULES.md.

    Attributes:
        id: The stable id, ``R-<FAMILY>-<N>`` (e.g. ``"R-RETRAIN-2"``).
        check: For scope ``"file"`` a :data:`FileCheck`, for ``"tree"`` a :data:`TreeCheck`; None
            for scope ``"run"`` (enforced by construction in the runner, nothing to check) and
            ``"read"`` (checked by ``validate``'s reading stages, before any rule runs).
        setup: The comparison setup the rule is a requirement of (one of :data:`SETUPS`, e.g.
            ``"S3.1"``), or None. A setup rule's findings lower the certification instead of
            invalidating the file.
        scope: ``"file"`` (one submission), ``"tree"`` (the files of a folder), ``"run"``,
            ``"read"``, or ``"deep"`` (a file rule that rebuilds models: ``validate --deep``).
        severity: The default severity of its findings.
        description: What the rule requires, in prose (the check's docstring when not given).

    Raises:
        ValueError: ``setup`` is none of :data:`SETUPS` (a plugin registering such a rule is
            listed as broken by ``pruning-suite plugins``).
    """

    id: str
    check: FileCheck | TreeCheck | None
    setup: str | None = None
    scope: Scope = "file"
    severity: Severity = "error"
    description: str = ""

    def __post_init__(self) -> None:
        if self.setup is not None and self.setup not in SETUPS:
            raise ValueError(
                f"rule {self.id}: setup {self.setup!r} is none of {', '.join(SETUPS)} (or None)"
            )
        if not self.description and self.check is not None:
            object.__setattr__(self, "description", (self.check.__doc__ or "").strip())

    def findings(self, *args: Any) -> list[Finding]:
        """Run the check on ``args`` (a :class:`CheckContext`, or the tree's entries and a
        :class:`TreeContext`). A check that raises, a plugin's or the suite's, gives one error
        finding at ``$`` naming the rule, never a traceback: the file is not certified by a rule
        that could not run. A number out of range for a check (a 400-digit count) is one too.

        Raises:
            TypeError: The rule has no check (scope ``"run"`` or ``"read"``).
        """
        if self.check is None:
            raise TypeError(f"rule {self.id} has no check (scope {self.scope!r})")
        try:
            return list(self.check(*args))  # type: ignore[arg-type]
        except (OverflowError, ZeroDivisionError, ValueError) as err:
            message = f"a number is out of range for this check ({err})"
            return [Finding("$", message, "use real values", severity="error")]
        except Exception as err:  # someone's rule code: a finding, never a traceback
            return [
                Finding(
                    "$",
                    f"rule {self.id}{COULD_NOT_RUN}{type(err).__name__}: {err}",
                    "a bug in the rule's code; 'pruning-suite plugins' names the plugin that "
                    "registers it (uninstall it, or report the bug to its authors)",
                    severity="error",
                )
            ]

    def severity_of(self, finding: Finding) -> Severity:
        """The finding's own severity, else the rule's."""
        return finding.severity or self.severity


def requirement_protocol(ctx: CheckContext, setup: str) -> ComparisonProtocol | None:
    """The protocol a setup requirement is judged against, or None when it does not apply.

    A requirement applies to a run under a known protocol that is not a smoke run (never
    certified); a scratch baseline is judged by S1 and its SX budget (R-SX-1) only.
    """
    sub = ctx.submission
    if ctx.protocol is None or sub.smoke or (sub.scratch is not None and setup != "S1"):
        return None
    return ctx.protocol


def lr_matches(logged: float, scheduled: float) -> bool:
    """True when a logged epoch's LR is the schedule's (relative :data:`REL_TOL_LR`)."""
    return math.isclose(logged, scheduled, rel_tol=REL_TOL_LR)


def number(value: float) -> str:
    """A number in a message: 10 significant digits."""
    return f"{value:.10g}"
