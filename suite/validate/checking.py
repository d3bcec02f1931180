"""Running the registered rules: file rules on one submission, tree rules across a folder's files.

The rules come from the registry (:func:`pruning_suite.rules.load_rules`), a plugin's included;
this module knows no rule by name. A file rule's finding becomes a :class:`Problem` with the
rule's id and severity; a setup rule's (``rule.setup``) is a warning prefixed ``not <setup>:``,
because such a run is certified lower (R-CERT-1 holds the file to that), not invalid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..contract.registry import Registry
from ..protocol.catalogue import known_protocol
from ..protocol.spec import ComparisonProtocol
from ..rules.registry import load_rules
from ..rules.rule import CheckContext, Finding, Rule, TreeContext, TreeEntry
from ..rules.setups import recheck
from .problems import FileResult, Problem
from .stages import cap, read_submission

__all__ = ["check_file", "check_tree", "validate_file"]


def validate_file(
    path: Path | str,
    protocols: Sequence[ComparisonProtocol] = (),
    rules: Registry[Rule] | None = None,
    deep: bool = False,
) -> list[Problem]:
    """Validate one submission file.

    Args:
        path: The JSON file.
        protocols: Protocols besides the shipped ones to check runs against (your own files).
        rules: The rule registry (default: :func:`~pruning_suite.rules.load_rules`).
        deep: Also run the deep rules (rebuild the model, recount; imports torch).

    Returns:
        Every problem found (empty when the file is valid). Never raises on bad input.
    """
    return check_file(Path(path), protocols, rules, deep).problems


def check_file(
    path: Path,
    protocols: Sequence[ComparisonProtocol] = (),
    rules: Registry[Rule] | None = None,
    deep: bool = False,
) -> FileResult:
    """Validate one file and keep what was parsed (see :class:`FileResult`).

    The reading stages (:func:`~pruning_suite.validate.stages.read_submission`) first; when they
    pass, every registered file rule.

    Args:
        path: The JSON file.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).
        rules: The rule registry (default: :func:`~pruning_suite.rules.load_rules`).
        deep: Also run the rules of scope ``"deep"``.

    Returns:
        The problems, the parsed data and, when it is model-valid, the :class:`Submission`.
    """
    result = read_submission(path)
    if result.submission is None or result.problems:
        return result
    registry = load_rules() if rules is None else rules
    given = tuple(protocols)
    protocol = known_protocol(result.submission, given)
    ctx = CheckContext(result.submission, path, protocol, given, registry)
    scopes = ("file", "deep") if deep else ("file",)
    problems = [p for _, rule in registry.items() if rule.scope in scopes for p in _run(rule, ctx)]
    result.problems.extend(cap(path, problems))
    return result


def _run(rule: Rule, ctx: CheckContext) -> list[Problem]:
    """The problems ``rule`` finds in ``ctx``'s submission (none when it does not apply)."""
    if rule.setup is not None and not _requirement_applies(rule, ctx):
        return []
    findings = rule.findings(ctx)
    path = str(ctx.path)
    if rule.setup is None:
        return [_problem(path, rule, f) for f in findings]
    if ctx.submission.smoke:  # never certified: only a setup rule's own errors count
        findings = [f for f in findings if f.severity is not None]
    return [_problem(path, rule, f, f"not {rule.setup}: " * (f.severity is None)) for f in findings]


def _requirement_applies(rule: Rule, ctx: CheckContext) -> bool:
    """A setup requirement is judged under a known protocol; a scratch baseline is judged by S1
    and its SX budget (R-SX-1) only."""
    return ctx.protocol is not None and (ctx.submission.scratch is None or rule.setup == "S1")


def _problem(path: str, rule: Rule, finding: Finding, prefix: str = "") -> Problem:
    return Problem(
        path,
        finding.where,
        prefix + finding.message,
        rule.severity_of(finding),
        finding.hint,
        rule.id,
    )


def check_tree(
    results: list[FileResult],
    protocols: Sequence[ComparisonProtocol] = (),
    rules: Registry[Rule] | None = None,
) -> None:
    """Run every registered tree rule over ``results``; append each problem to its file's result.

    Every tree rule sees each file's validity as the file rules left it.

    Args:
        results: The files of a tree, as :func:`check_file` returned them.
        protocols: Protocols besides the shipped ones.
        rules: The rule registry (default: :func:`~pruning_suite.rules.load_rules`).
    """
    registry = load_rules() if rules is None else rules
    given = tuple(protocols)
    entries = [_entry(result, given, registry) for result in results]
    by_path = {result.path: result for result in results}
    for _, rule in registry.items():
        if rule.scope == "tree":
            for finding in rule.findings(entries, TreeContext(given)):
                _add(by_path, rule, finding)


def _entry(
    result: FileResult, given: tuple[ComparisonProtocol, ...], rules: Registry[Rule]
) -> TreeEntry:
    """What a tree rule sees of one file: its run's known protocol and recomputed certification."""
    sub = result.submission
    protocol = known_protocol(sub, given) if sub is not None else None
    division, setup = "open", None
    if sub is not None and protocol is not None:
        try:
            cert = recheck(sub, protocol, rules)
            division, setup = cert.division, cert.setup
        except (OverflowError, ZeroDivisionError, ValueError):
            pass  # numbers out of range: the file rules reported it; ranked nowhere
    return TreeEntry(result.path, result.data, sub, result.ok, protocol, division, setup)


def _add(by_path: dict[Path, FileResult], rule: Rule, finding: Finding) -> None:
    """A tree rule's finding goes to its file; one for no file of the tree (a rule that could
    not run) goes to every file, which that rule then did not check."""
    if finding.file in by_path:
        by_path[finding.file].problems.append(_problem(str(finding.file), rule, finding))
        return
    if finding.file is not None:
        finding = replace(
            finding,
            message=f"rule {rule.id} reported a file outside the tree ({finding.file})",
            hint="a bug in the rule's code",
            severity="error",
        )
    for path, result in by_path.items():
        result.problems.append(_problem(str(path), rule, finding))
