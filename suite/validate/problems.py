"""What ``validate`` reports: one :class:`Problem` per thing wrong, and each file's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..record.submission import Submission
from ..rules.rule import Severity
from ..text import one_line

__all__ = ["SCHEMA_RULE", "FileResult", "Problem"]

SCHEMA_RULE = "R-SCHEMA-1"
"""The rule of every problem of reading and format (stages 1-3 of ``validate``)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file.

    Attributes:
        path: The file, as given or found (``str`` so that it serializes as is).
        where: JSON path inside the file, e.g. ``$.final.test_top1`` or ``$.retraining[3].lr``;
            ``$`` for the file as a whole.
        message: What is wrong, one line.
        severity: ``"error"`` (the file is invalid) or ``"warning"`` (reported, not fatal).
        hint: How to fix it, one line; may be empty.
        rule: The rule id (RULES.md) the problem violates, e.g. ``"R-RETRAIN-2"``;
            ``"R-SCHEMA-1"`` for problems of reading and format; empty for a path that is not a
            submission file (a skipped symlink, a folder without files).
    """

    path: str
    where: str
    message: str
    severity: Severity = "error"
    hint: str = ""
    rule: str = ""

    def format(self) -> str:
        """``path: where: severity [rule]: message`` (and the hint on an indented second line),
        each line escaped (:func:`~pruning_suite.text.one_line`): a file name forges no line."""
        rule = f" [{self.rule}]" if self.rule else ""
        line = one_line(f"{self.path}: {self.where}: {self.severity}{rule}: {self.message}")
        return f"{line}\n  hint: {one_line(self.hint)}" if self.hint else line

    def report_line(self) -> str:
        """The one line ``pruning-suite report`` prints on stderr for this problem.

        An error keeps its file out of the ranking (``not ranked: path: where: message``); a
        warning does not (``warning: path: where: message``).
        """
        prefix = "not ranked" if self.severity == "error" else "warning"
        return one_line(f"{prefix}: {self.path}: {self.where}: {self.message}")


@dataclass
class FileResult:
    """The outcome of validating one file.

    Attributes:
        path: The file.
        problems: Every problem found, errors and warnings.
        data: The parsed JSON when the file could be read, else None.
        submission: The validated model when stages 1-3 passed (consistency errors may remain).
    """

    path: Path
    problems: list[Problem] = field(default_factory=list)
    data: Any = None
    submission: Submission | None = None

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)
