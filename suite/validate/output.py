"""The output of ``pruning-suite validate``: lines for people, JSON for machines, ``--strict``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .discovery import NOT_FILES
from .problems import Problem

__all__ = ["format_problems", "has_errors", "results_to_json", "strict_results"]


def strict_results(results: Mapping[Path, list[Problem]]) -> dict[Path, list[Problem]]:
    """``validate --strict``: every warning becomes an error (a skipped symlink included)."""
    return {
        path: [dataclasses.replace(p, severity="error") for p in problems]
        for path, problems in results.items()
    }


def has_errors(results: Mapping[Path, list[Problem]]) -> bool:
    """True when any problem is an error (the ``validate`` command then exits non-zero)."""
    return any(p.severity == "error" for problems in results.values() for p in problems)


def format_problems(results: Mapping[Path, list[Problem]]) -> str:
    """Human-readable output of ``pruning-suite validate``.

    Args:
        results: What :func:`validate_paths` returned.

    Returns:
        One line per problem (``file: $.path: error: message``, hint indented below), then a
        summary line, e.g. ``3 files checked: 2 valid, 1 invalid (2 errors, 0 warnings)``.
    """
    lines = [p.format() for problems in results.values() for p in problems]
    n_errors = sum(p.severity == "error" for ps in results.values() for p in ps)
    n_warnings = sum(p.severity == "warning" for ps in results.values() for p in ps)
    checked = [ps for ps in results.values() if not _only_skipped(ps)]
    invalid = sum(any(p.severity == "error" for p in ps) for ps in checked)
    valid = len(checked) - invalid
    lines.append(
        f"{_plural(len(checked), 'file')} checked: {valid} valid, {invalid} invalid"
        f" ({_plural(n_errors, 'error')}, {_plural(n_warnings, 'warning')})"
    )
    return "\n".join(lines)


def results_to_json(results: Mapping[Path, list[Problem]]) -> dict[str, Any]:
    """Machine-readable output of ``pruning-suite validate --json``.

    Args:
        results: What :func:`validate_paths` returned.

    Returns:
        ``{"valid": bool, "files": [{"path", "valid", "problems": [Problem fields]}]}``.
    """
    files = [
        {
            "path": str(path),
            "valid": not any(p.severity == "error" for p in ps),
            "problems": [asdict(p) for p in ps],
        }
        for path, ps in results.items()
    ]
    return {"valid": not has_errors(results), "files": files}


def _only_skipped(problems: list[Problem]) -> bool:
    """True for an entry that is not a checked file: a skipped link, an empty folder or path."""
    return bool(problems) and all(p.message.startswith(NOT_FILES) for p in problems)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
