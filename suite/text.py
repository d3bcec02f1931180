"""Untrusted text shown on one line: names and values from submissions, protocol files, cache
metadata, plugins' messages and file names, wherever the suite prints or reports them.

A line break or terminal escape in such text would otherwise forge lines of output (a fake
``left out:`` or ``error:`` line) or drive the terminal. Torch-free.
"""

from __future__ import annotations

import unicodedata

__all__ = ["inline", "one_line"]

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with line breaks, control and format characters escaped (``\\n``, ``\\u001b``,
    ``\\u2028``, ``\\u202e``: a right-to-left override would reorder the line on screen); every
    other character as it is."""
    return "".join(_escape_char(char) for char in text)


def inline(text: str, limit: int = 60) -> str:
    """:func:`one_line` of ``text``, cut to ``limit`` characters (the last three ``...``), for a
    value quoted inside a message.

    Raises:
        ValueError: ``limit`` < 4.
    """
    if limit < 4:
        raise ValueError(f"limit must be at least 4, got {limit}")
    shown = one_line(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
        return f"\\u{ord(char):04x}"
    return char
