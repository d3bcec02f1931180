"""Untrusted text on one line (pruning_suite.text): what every printed name goes through."""

from __future__ import annotations

import pytest

from pruning_suite.text import inline, one_line


def test_line_breaks_and_terminal_escapes_are_shown_escaped_the_rest_as_is() -> None:
    assert one_line("a\nb\r\tc\x1b[2J\u2028d\u2029é\"'\\") == (
        "a\\nb\\r\\tc\\u001b[2J\\u2028d\\u2029é\"'\\"
    )


def test_inline_cuts_to_its_limit_after_escaping() -> None:
    assert inline("x" * 60) == "x" * 60
    assert inline("x" * 61) == "x" * 57 + "..."
    assert inline("\n" * 3, limit=5) == "\\n..."
    with pytest.raises(ValueError, match="at least 4"):
        inline("abc", limit=3)
