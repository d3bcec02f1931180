"""``pruning-suite validate`` (check submission files) and ``report`` (rank them). Torch-free."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import PruningSuiteError
from ..text import one_line
from .options import add_hidden_debug, toml_path

__all__ = ["add_report_command", "add_validate_command"]

OWN_PROTOCOL_HELP = "a protocol of your own {verb} (repeatable); shipped ones are known"


def _add_own_protocols(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FILE.toml",
        help=OWN_PROTOCOL_HELP.format(verb=verb),
    )


def _own_protocols(paths: Sequence[str]) -> list[Any]:
    from ..protocol.catalogue import load_protocol

    return [load_protocol(toml_path(path)) for path in paths]


def add_validate_command(commands: Any) -> None:
    """``pruning-suite validate PATH...``: schema and fairness rules, every problem listed."""
    validate = commands.add_parser("validate", help="check submission files or folders")
    validate.add_argument("paths", nargs="+", type=str, help="submission files or folders")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (e.g. a run certified below the closed division, missing seeds) as errors",
    )
    validate.add_argument(
        "--deep",
        action="store_true",
        help="also rebuild each run's model and recount params, MACs and widths, and check a "
        "saved .pt against the claims (R-DEEP-1/2; imports torch)",
    )
    _add_own_protocols(validate, "to check runs against")
    add_hidden_debug(validate)
    validate.set_defaults(handler=_cmd_validate)


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..validate import (
        format_problems,
        has_errors,
        results_to_json,
        strict_results,
        validate_paths,
    )

    results = validate_paths(args.paths, _own_protocols(args.protocol), deep=args.deep)
    if args.strict:
        results = strict_results(results)
    if args.json:
        print(json.dumps(results_to_json(results), indent=2))
    else:
        print(format_problems(results))
    return 1 if has_errors(results) else 0


def add_report_command(commands: Any) -> None:
    """``pruning-suite report [ROOT...]``: ranking tables in a registered format, optional figures."""
    from ..report.formats import FORMATS

    report = commands.add_parser("report", help="rank submissions per protocol and target")
    report.add_argument(
        "roots",
        nargs="*",
        type=str,
        default=["submissions"],
        metavar="ROOT",
        help="results folders or files, read together (default ./submissions)",
    )
    report.add_argument(
        "--format",
        default="github",
        metavar="FORMAT",
        help=f"{', '.join(FORMATS)} (default github), or a format a plugin registers",
    )
    report.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write accuracy-vs-sparsity figures (PNG and PDF), one per protocol version and "
        "certification, with 95%% CI error bars and the dense model's line",
    )
    report.add_argument(
        "--warnings",
        action="store_true",
        help="list every warning on stderr (default: one summary line; errors are always listed)",
    )
    _add_own_protocols(report, "that runs follow")
    add_hidden_debug(report)
    report.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report.formats import find_format, render
    from ..report.tables import build_tables, load_submissions, plot_tables

    fmt = find_format(args.format)  # an unknown format is refused before any file is read
    for root in args.roots:
        if not root.strip() or not Path(root).exists():
            raise PruningSuiteError(
                f"no results folder {root!r}",
                "run 'pruning-suite run --plugin l1norm' first, or name the folder",
            )
    protocols = _own_protocols(args.protocol)
    submissions, problems = load_submissions([Path(r) for r in args.roots], protocols)
    tables = build_tables(submissions, protocols)
    print(render(tables, fmt), end="")
    if args.plots is not None:
        for path in plot_tables(tables, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    print_problems(problems, args.warnings)
    if any(table.rows or table.incomplete for table in tables):
        return 0
    return _nothing_ranked(" ".join(args.roots), submissions)


def print_problems(problems: Sequence[Any], every_warning: bool = False) -> None:
    """Every error on stderr (its file is not ranked); the warnings in one summary line by rule,
    or each on its own line with ``every_warning``."""
    warnings = [p for p in problems if p.severity != "error"]
    for problem in problems:
        if problem.severity == "error" or every_warning:
            print(problem.report_line(), file=sys.stderr)
    if warnings and not every_warning:
        rules = Counter(p.rule or "other" for p in warnings)
        files = len({p.path for p in warnings})
        by_rule = ", ".join(f"{rule} x{n}" for rule, n in sorted(rules.items()))
        print(
            f"note: {_count(len(warnings), 'warning')} in {_count(files, 'file')} ({by_rule}) "
            "keep no file out of "
            "the ranking: open-division and incomplete runs are tabled apart; "
            "'--warnings' or 'pruning-suite validate ROOT' lists each",
            file=sys.stderr,
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _nothing_ranked(root: str, submissions: Sequence[Any]) -> int:
    """An empty ranking is a failure a script must see: nothing found, every file refused, or
    nothing rankable (smoke runs only). Says which, and returns exit code 1."""
    what = (
        f"{len(submissions)} valid submissions, none rankable (smoke runs are never ranked)"
        if submissions
        else f"no valid submission under {root}"
    )
    print(one_line(f"error: nothing to rank: {what}"), file=sys.stderr)
    print(
        "hint: make the runs with 'pruning-suite run' without --smoke, or fix the files listed "
        "above ('pruning-suite validate FOLDER' says how)",
        file=sys.stderr,
    )
    return 1
