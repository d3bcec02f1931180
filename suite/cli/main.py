"""The ``pruning-suite`` command line. torch is imported only by the commands that need it.

Each command group lives in its own module (:mod:`.runs`, :mod:`.catalog`, :mod:`.checks`,
:mod:`.study`, :mod:`.zoo`, :mod:`.scaffold`) as an ``add_*`` function; the ``study``
subcommands come from the study registry, which is loaded only when ``study`` is the command
(loading plugins imports them).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..contract.registry import broken_note
from ..errors import PruningSuiteError
from ..text import one_line
from .audit import add_audit_command
from .catalog import add_plugins_command, add_protocols_command, broken_plugins
from .checks import add_report_command, add_validate_command
from .leaderboard import add_leaderboard_command
from .runs import add_prune_command, add_run_command
from .scaffold import add_new_method_command
from .study import add_study_command
from .zoo import add_base_command

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pruning-suite`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except PruningSuiteError as err:  # a study plugin whose options cannot be added
        if "--debug" in argv:
            raise
        return _report(err)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["pruning-suite", *argv])
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except PruningSuiteError as err:
        if args.debug:
            raise
        return _report(err)
    except BrokenPipeError:  # e.g. `pruning-suite validate --json DIR | head`
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written for the unfinished run", file=sys.stderr)
        return 130


def _report(err: PruningSuiteError) -> int:
    """Print ``error:`` and ``hint:`` lines; an unknown name also names the plugins that failed
    to load (one of them may have provided it). Returns the exit code. Each is one line: control
    characters (from a file name or a plugin's message) are escaped."""
    print(f"error: {one_line(err.message)}", file=sys.stderr)
    hint = err.hint
    if err.message.startswith("unknown ") and "failed to load" not in hint:
        hint += broken_note(broken_plugins())
    if hint:
        print(f"hint: {one_line(hint.removeprefix('; '))}", file=sys.stderr)
    return err.exit_code


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser, with every command.

    Args:
        argv: The command line to be parsed; when its command is ``study``, the study registry is
            loaded and each registered study becomes a subcommand.
    """
    parser = argparse.ArgumentParser(
        prog="pruning-suite",
        description="Fair, reproducible pruning benchmarks (Wang et al., arXiv 2301.05219).",
    )
    parser.add_argument("--version", action="version", version=f"pruning-suite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_run_command(commands)
    add_prune_command(commands)
    add_protocols_command(commands)
    add_plugins_command(commands)
    add_validate_command(commands)
    add_report_command(commands)
    add_leaderboard_command(commands)
    add_audit_command(commands)
    add_study_command(commands, _studies() if _command(argv) == "study" else None)
    add_base_command(commands)
    add_new_method_command(commands)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (global options take no value, so it is the first word)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _studies() -> Any:
    from ..contract import plugins

    return plugins.load_registry().studies


if __name__ == "__main__":
    raise SystemExit(main())
