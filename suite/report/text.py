"""Text shared by the tables and their formats: the statistic shown (one-line strings:
:mod:`pruning_suite.text`)."""

from __future__ import annotations

__all__ = ["STATISTIC"]

STATISTIC = "final-epoch test top-1, mean ± sample std over seeds with a 95% CI (t)"
"""What a Top-1 cell shows (every table says it in its caption)."""
