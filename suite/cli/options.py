"""Option types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import PruningSuiteError

__all__ = ["add_hidden_debug", "json_option", "seed", "toml_path"]


def add_hidden_debug(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` after the subcommand too (``pruning-suite run --debug ...``), unlisted."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )


def seed(text: str) -> int:
    """A ``--seed`` value: an integer in ``[0, 2**63)``.

    Raises:
        argparse.ArgumentTypeError: Not an integer, or out of range.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**63), got {text}")
    return value


def json_option(text: str, flag: str) -> dict[str, Any]:
    """A JSON-object option such as ``--config '{"batches": 4}'``.

    Raises:
        PruningSuiteError: Not JSON, nested too deeply, or not an object.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise PruningSuiteError(
            f"{flag} is nested too deeply", f"write e.g. {flag} '{{\"key\": 1}}'"
        ) from None
    except json.JSONDecodeError as err:
        raise PruningSuiteError(
            f"{flag} is not valid JSON: {err}", f"write e.g. {flag} '{{\"key\": 1}}'"
        ) from err
    if not isinstance(value, dict):
        raise PruningSuiteError(
            f"{flag} must be a JSON object", f"write e.g. {flag} '{{\"key\": 1}}'"
        )
    return value


def toml_path(path: str) -> str:
    """A ``--protocol FILE`` argument of validate and report: must name a .toml file.

    Raises:
        PruningSuiteError: It does not end in ``.toml`` (shipped ids need no flag).
    """
    if not path.endswith(".toml"):
        raise PruningSuiteError(
            f"--protocol {path!r} is not a .toml file",
            "shipped protocols and those of installed plugins are known already; pass your own "
            "protocol file (FILE.toml)",
        )
    return path
