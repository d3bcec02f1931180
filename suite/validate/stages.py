"""Reading a submission file: the stages before any rule runs.

1. :func:`~pruning_suite.record.jsonio.read_json`: size, UTF-8, depth, syntax, NaN, duplicate keys,
   lone surrogates.
2. ``schema_version``: a version the suite does not know is one problem, not fifty.
3. The packaged JSON Schema (Draft 2020-12): every violation, sorted by JSON path.
4. The pydantic model (what the schema cannot say).

A stage runs only when the one before found nothing, so each problem is reported once, at the
stage that can explain it best. Every problem here is an R-SCHEMA-1 problem.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from pydantic import ValidationError as PydanticValidationError

from ..errors import SubmissionError
from ..record.jsonio import json_path, read_json
from ..record.schema import load_packaged_schema
from ..record.submission import SCHEMA_VERSION, Submission
from ..rules.rule import Finding
from .problems import SCHEMA_RULE, FileResult, Problem

__all__ = ["MAX_PROBLEMS_PER_FILE", "SUPPORTED_SCHEMA_VERSIONS", "cap", "read_submission"]

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (SCHEMA_VERSION,)
"""Submission ``schema_version`` values this suite can validate."""

MAX_PROBLEMS_PER_FILE = 100
"""A broken file reports at most this many problems, then one line saying how many were left out."""


def read_submission(path: Path) -> FileResult:
    """Read ``path`` through stages 1-4; the result holds the submission when all passed.

    Args:
        path: The JSON file.

    Returns:
        The problems of the first stage that found any (each with rule R-SCHEMA-1), the parsed
        data when the file could be read, and the :class:`Submission` when it is model-valid.
        Never raises on bad input.
    """
    result = FileResult(path)
    try:
        result.data = read_json(path)
    except SubmissionError as err:
        message = err.message.removeprefix(f"{path}: ")  # the file is named once, by Problem
        result.problems.append(Problem(str(path), "$", message, hint=err.hint, rule=SCHEMA_RULE))
        return result
    for stage in (_version_problems, _schema_problems, _model_problems):
        problems = [dataclasses.replace(p, rule=SCHEMA_RULE) for p in stage(result)]
        if problems:
            result.problems.extend(cap(path, problems))
            break
    return result


def cap(path: Path, problems: list[Problem]) -> list[Problem]:
    """At most :data:`MAX_PROBLEMS_PER_FILE` problems, then one saying how many were left out."""
    if len(problems) <= MAX_PROBLEMS_PER_FILE:
        return problems
    left = len(problems) - MAX_PROBLEMS_PER_FILE
    more = Problem(
        str(path), "$", f"{left} more problems not shown", hint="fix the ones above first"
    )
    return [*problems[:MAX_PROBLEMS_PER_FILE], more]


def _version_problems(result: FileResult) -> list[Problem]:
    data, path = result.data, str(result.path)
    if not isinstance(data, dict):
        message = f"a submission is a JSON object, not {_json_type(data)}"
        return [Problem(path, "$", message, hint="is this a pruning-suite submission?")]
    supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
    hint = "is this a pruning-suite submission? a newer pruning-suite may read newer versions"
    if "schema_version" not in data:
        message = f"schema_version is missing; supported: {supported}"
        return [Problem(path, "$.schema_version", message, hint=hint)]
    version = data["schema_version"]
    if not _is_int(version) or version not in SUPPORTED_SCHEMA_VERSIONS:
        message = f"schema_version {_short(version)} is not supported; supported: {supported}"
        return [Problem(path, "$.schema_version", message, hint=hint)]
    return []


def _schema_problems(result: FileResult) -> list[Problem]:
    errors = _validator().iter_errors(result.data)
    findings = [f for error in errors for f in _describe_schema_error(error)]
    findings = sorted(dict.fromkeys(findings), key=lambda f: _path_sort_key(f.where))
    return [Problem(str(result.path), f.where, f.message, hint=f.hint) for f in findings]


@cache
def _validator() -> Draft202012Validator:
    schema = load_packaged_schema("submission")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _model_problems(result: FileResult) -> list[Problem]:
    try:
        result.submission = Submission.model_validate(result.data)
    except PydanticValidationError as err:
        return [
            Problem(
                str(result.path), json_path(e["loc"]), f"{e['msg']} (got {_short(e.get('input'))})"
            )
            for e in err.errors(include_url=False)
        ]
    return []


def _describe_schema_error(error: ValidationError) -> Iterator[Finding]:
    """Turn one jsonschema error into short findings at the most precise path."""
    parts = list(error.absolute_path)
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind == "anyOf" and value is not None and error.context:
        # an optional field (``X | None``): explain why the value is not a valid X
        branches = [
            e for e in error.context if e.validator != "type" or e.validator_value != "null"
        ]
        for sub_error in branches:
            yield from _describe_schema_error(sub_error)
        if branches:
            return
    if kind == "required" and isinstance(value, dict):
        for name in limit:
            if name not in value:
                yield Finding(json_path([*parts, name]), f"required property {name!r} is missing")
    elif kind == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties", {})
        for name in value:
            if name not in known:
                yield Finding(
                    json_path([*parts, name]),
                    f"unknown property {name!r} (not in schema_version {SCHEMA_VERSION})",
                )
    else:
        yield Finding(json_path(parts), _schema_message(kind, limit, value, error.message))


_BOUNDS = {
    "minimum": "is less than the minimum {limit}",
    "maximum": "is greater than the maximum {limit}",
    "exclusiveMinimum": "must be greater than {limit}",
    "exclusiveMaximum": "must be less than {limit}",
    "minItems": "has fewer than {limit} items",
    "maxItems": "has more than {limit} items",
    "minLength": "is shorter than {limit} characters",
    "pattern": "does not match the pattern {limit}",
    "const": "must be {limit}",
    "enum": "must be one of {limit}",
}


def _schema_message(kind: str, limit: Any, value: Any, fallback: str) -> str:
    if kind == "type":
        wanted = limit if isinstance(limit, str) else " or ".join(limit)
        return f"expected {wanted}, got {_json_type(value)} {_short(value)}"
    if kind in _BOUNDS:
        shown = ", ".join(_short(v) for v in limit) if kind == "enum" else _short(limit)
        return f"{_short(value)} {_BOUNDS[kind].format(limit=shown)}"
    return fallback if len(fallback) <= 200 else fallback[:197] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any, limit: int = 60) -> str:
    """A one-line JSON rendering of ``value``, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _path_sort_key(where: str) -> list[tuple[int, Any]]:
    """Sort JSON paths by component, indices numerically: ``[2]`` before ``[10]``."""
    tokens = re.findall(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]', where)
    return [(1, int(i)) if i else (0, key or json.loads(quoted)) for key, i, quoted in tokens]
