"""The one exception hierarchy of pruning-suite.

Every error a user can cause derives from :class:`PruningSuiteError` and carries a ``hint`` that
says how to fix it. The CLI prints ``error: <message>`` and ``hint: <hint>`` and exits non-zero,
without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

__all__ = [
    "CheckpointError",
    "DatasetError",
    "OutputError",
    "PluginError",
    "ProtocolError",
    "PruningError",
    "PruningSuiteError",
    "SubmissionError",
    "TrainingError",
    "VerificationError",
    "did_you_mean",
]


class PruningSuiteError(Exception):
    """Base class of every error pruning-suite raises on bad input.

    Args:
        message: What happened and where.
        hint: How the user fixes it (a command, a flag, a file to edit).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\nhint: {self.hint}" if self.hint else self.message


class ProtocolError(PruningSuiteError):
    """A comparison protocol is unknown, malformed, or asked for something it does not define."""


class PluginError(PruningSuiteError):
    """A pruning-method plugin is unknown, broken, or returned something the core refuses."""


class DatasetError(PruningSuiteError):
    """A dataset is missing, incomplete, or does not match the protocol's checksum."""


class PruningError(PruningSuiteError):
    """A pruning request cannot be applied (it would empty a layer, touch the classifier, ...)."""


class VerificationError(PruningError):
    """The physically pruned model does not equal the masked reference, or counters disagree."""


class CheckpointError(PruningSuiteError):
    """A pruned checkpoint cannot be read, is not in the suite's format, or does not fit."""


class TrainingError(PruningSuiteError):
    """Training diverged (a non-finite loss); nothing is cached or written."""


class SubmissionError(PruningSuiteError):
    """A submission file cannot be read, written, or does not validate."""


class OutputError(PruningSuiteError):
    """An output folder cannot be created or written."""


def did_you_mean(name: str, known: Iterable[str], cutoff: float = 0.6, prefix: str = "") -> str:
    """The start of a hint for an unknown ``name``: ``"did you mean 'a', 'b'? "``, or ``""``.

    Args:
        name: The unknown name as given.
        known: The names it may be a misspelling of.
        cutoff: :func:`difflib.get_close_matches`'s similarity cutoff in ``[0, 1]``.
        prefix: Put before every suggested name (``"torchvision:"``).

    Returns:
        Up to three close matches, quoted, or ``""`` when none is close.
    """
    close = get_close_matches(name, list(known), n=3, cutoff=cutoff)
    return f"did you mean {', '.join(repr(prefix + c) for c in close)}? " if close else ""
