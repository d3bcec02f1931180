"""Untrusted text on one line (pruning_suite.text): what every printed name goes through."""

from __future__ import annotations

import pytest

from pruning_suite.text import inline, one_line


def test_line_breaks_and_terminal_escapes_are_shown_escaped_the_rest_as_is() -> None:
    assert one_line("a\nb\r\tc\x1b[2J\u2028d\u2029é\"'\\") == (
        "a\\nb\\r\\tc\\u001b[2J\\u2028d\\u2029é\"'\\"
    )


def test_format_characters_that_reorder_a_line_are_escaped() -> None:
    assert one_line("ab\u202ecd\u200b") == "ab\\u202ecd\\u200b"


def test_every_printed_line_escapes_what_files_and_names_hold(capsys) -> None:
    from pruning_suite.record.safefiles import note
    from pruning_suite.validate.problems import Problem

    note("other base models (k\nerror: forged\x1b[2J)")
    assert (
        capsys.readouterr().err
        == "pruning-suite: other base models (k\\nerror: forged\\u001b[2J)\n"
    )
    problem = Problem("a\nerror: x.json", "$.seed", "bad\x1b[31m", "warning", "fix\nit", "R-1")
    assert problem.format().splitlines() == [
        "a\\nerror: x.json: $.seed: warning [R-1]: bad\\u001b[31m",
        "  hint: fix\\nit",
    ]
    assert problem.report_line() == "warning: a\\nerror: x.json: $.seed: bad\\u001b[31m"


def test_the_run_summary_is_one_line_per_item_whatever_the_path_holds(capsys) -> None:
    from pathlib import Path

    from pruning_suite.cli.progress import print_summary
    from pruning_suite.record.jsonio import read_json
    from pruning_suite.record.submission import Submission

    committed = Path(__file__).parents[1] / "submissions/digits-convnet/l1norm/ad7659633c9f.json"
    submission = Submission.model_validate(read_json(committed))
    print_summary(submission, Path("out\nerror: forged\x1b[2J.json"))
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9 and out[-1] == "  written to     out\\nerror: forged\\u001b[2J.json"


def test_inline_cuts_to_its_limit_after_escaping() -> None:
    assert inline("x" * 60) == "x" * 60
    assert inline("x" * 61) == "x" * 57 + "..."
    assert inline("\n" * 3, limit=5) == "\\n..."
    with pytest.raises(ValueError, match="at least 4"):
        inline("abc", limit=3)
