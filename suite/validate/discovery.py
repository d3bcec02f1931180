"""Finding the submission files under the paths given, and validating them as one tree.

Folders are searched recursively for ``*.json``; a symlink that leads out of the folder is skipped
with a warning, never followed; a folder without any ``*.json`` file is an error. Each real file
is checked once (:func:`~pruning_suite.validate.checking.check_file`), then the tree rules run
across all of them (:func:`~pruning_suite.validate.checking.check_tree`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..contract.registry import Registry
from ..protocol.spec import ComparisonProtocol
from ..rules.registry import load_rules
from ..rules.rule import Rule
from .checking import check_file, check_tree
from .problems import FileResult, Problem

__all__ = ["NOT_FILES", "check_paths", "validate_paths"]

_SKIPPED = "skipped: "
_NO_FILES = "no submission files found under "
_NO_FILES_HINT = "submission files end in .json; check the folder"
_EMPTY_PATH = "the path is empty (an empty argument would otherwise mean the current folder)"

NOT_FILES = (_SKIPPED, _NO_FILES, _EMPTY_PATH)
"""How the message of an entry that is not a checked file starts (a skipped link, an empty
folder or path): the output counts no file for it."""


def validate_paths(
    paths: Sequence[Path | str],
    protocols: Sequence[ComparisonProtocol] = (),
    rules: Registry[Rule] | None = None,
    deep: bool = False,
) -> dict[Path, list[Problem]]:
    """Validate files and folders (recursively, ``*.json``), then check across files.

    Args:
        paths: Files and folders. In a folder, a symlink leading outside that folder is skipped
            with a warning and never followed; each real file is checked once.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).
        rules: The rule registry (default: :func:`~pruning_suite.rules.load_rules`).
        deep: Also run the deep rules (``validate --deep``: rebuild models and recount).

    Returns:
        Every file (and every skipped or empty path) with its problems, in the order found; a
        valid file maps to an empty list.
    """
    return {r.path: r.problems for r in check_paths(paths, protocols, rules, deep)}


def check_paths(
    paths: Sequence[Path | str],
    protocols: Sequence[ComparisonProtocol] = (),
    rules: Registry[Rule] | None = None,
    deep: bool = False,
) -> list[FileResult]:
    """Like :func:`validate_paths`, keeping what was parsed (used by ``report``).

    Args:
        paths: Files and folders.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).
        rules: The rule registry (default: :func:`~pruning_suite.rules.load_rules`).

    Returns:
        One :class:`FileResult` per file or skipped path.
    """
    registry = load_rules() if rules is None else rules
    results: list[FileResult] = []
    seen: set[Path] = set()
    for given in paths:
        if not str(given).strip():  # Path("") would mean the current folder
            results.append(_not_a_file(Path(given), _EMPTY_PATH, "name a file or a folder"))
            continue
        root = Path(given)
        for path, skip_reason in _discover(root):
            if skip_reason.startswith(_NO_FILES):
                results.append(_not_a_file(path, skip_reason, _NO_FILES_HINT))
                continue
            if skip_reason:
                results.append(FileResult(path, [Problem(str(path), "$", skip_reason, "warning")]))
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                results.append(check_file(path, protocols, registry, deep))
    check_tree(results, protocols, registry)
    return results


def _discover(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, "")`` for each file to check under ``root``, ``(path, reason)`` for skips."""
    if not root.is_dir():
        yield root, ""  # a file, or a missing path that read_json reports
        return
    real_root = root.resolve()
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".json"):
                path = Path(folder) / name
                (links if path.is_symlink() else files).append(path)
        for name in dirnames:
            reason = _outside(Path(folder) / name, real_root)
            if reason:
                yield Path(folder) / name, reason
    skipped_links = {path: _outside(path, real_root) for path in links}
    if not files and all(skipped_links.values()):
        yield root, f"{_NO_FILES}{root}"
    yield from ((path, "") for path in files)  # real files first, so a link to one is a duplicate
    yield from skipped_links.items()


def _outside(path: Path, real_root: Path) -> str:
    """Why ``path`` (a symlink) is skipped, or "" when it is not a symlink out of ``real_root``."""
    if not path.is_symlink():
        return ""
    target = path.resolve()
    if not target.exists():
        return f"{_SKIPPED}broken symlink to {target}"
    if not target.is_relative_to(real_root):
        return f"{_SKIPPED}symlink to {target}, outside {real_root}"
    return ""


def _not_a_file(path: Path, message: str, hint: str) -> FileResult:
    """A given path that names no submission file: an error, but no file counted as checked."""
    return FileResult(path, [Problem(str(path), "$", message, hint=hint)])
