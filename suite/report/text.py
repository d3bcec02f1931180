"""Text helpers shared by the tables and their formats: one-line strings and the statistic shown."""

from __future__ import annotations

import unicodedata

__all__ = ["STATISTIC", "one_line"]

STATISTIC = "final-epoch test top-1, mean ± sample std over seeds with a 95% CI (t)"
"""What a Top-1 cell shows (every table says it in its caption)."""

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\u2028``).

    Every string taken from a submission (method names, ids, configs) goes through it, in every
    format.
    """
    return "".join(_escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return f"\\u{ord(char):04x}"
    return char
