"""Reading untrusted JSON safely, and writing JSON atomically.

Submissions arrive from anyone, so :func:`read_json` refuses, with a one-line reason and a hint,
everything Python's ``json`` module would otherwise accept or choke on: files over a size cap
(checked with ``stat`` before a byte is read), ``NaN`` / ``Infinity`` (not JSON, RFC 8259 Sec. 6)
and numbers that overflow to infinity, duplicate keys (RFC 8259 Sec. 4 leaves them undefined),
nesting deeper than a limit (checked by a scan before parsing, so 10,000 nested brackets cannot
raise ``RecursionError``), invalid UTF-8, invalid syntax, and strings (keys included) that are not
valid Unicode: a ``\\ud800`` escape parses to a lone surrogate, which no UTF-8 writer can encode.

:func:`write_json_atomic` writes a temporary file in the target folder, fsyncs it and renames it
over the target, so a reader never sees half a file; temporary files that killed writers left in
the folder are removed first (:func:`~pruning_suite.record.safefiles.remove_stale_temps`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import OutputError, SubmissionError
from .safefiles import write_atomic

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "json_path",
    "read_json",
    "write_json_atomic",
    "write_text_atomic",
]

DEFAULT_MAX_BYTES = 16 * 2**20
"""Largest file :func:`read_json` reads (16 MiB); a submission is a few kB."""

DEFAULT_MAX_DEPTH = 64
"""Deepest nesting of arrays and objects :func:`read_json` accepts; a submission needs 4."""

# A JSON string (unrolled-loop form: linear time, no backtracking blow-up) or a bracket.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_BRACKETS = re.compile(_STRING + r"|[\[\]{}]")
_CONSTANTS = re.compile(_STRING + r"|(-?Infinity|NaN)")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FIX_JSON = "fix the file so that it is plain JSON (RFC 8259), e.g. rewrite it with json.dump"


class _Refused(ValueError):
    """Raised inside ``json.loads`` hooks; turned into a :class:`SubmissionError` by the caller."""


def read_json(
    path: Path | str, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Read one untrusted JSON file.

    Args:
        path: The file to read.
        max_bytes: Refuse files larger than this many bytes (checked before reading).
        max_depth: Refuse arrays/objects nested deeper than this (the top level is depth 1).

    Returns:
        The parsed value (``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` or ``None``).

    Raises:
        SubmissionError: The file cannot be read, is too large, not a regular file, not UTF-8,
            nested too deep, not valid JSON, or contains ``NaN``/``Infinity``, a number that
            overflows to infinity, a duplicate key, or a string with a lone surrogate (e.g.
            ``"\\ud800"``). The message is one line (with line and column, or the JSON path of
            the string, where known); the hint says how to fix it.
    """
    path = Path(path)
    raw = _read_capped(path, max_bytes)
    text = _decode(path, raw)
    _check_depth(path, text, max_depth)
    data = _parse(path, text)
    _check_strings(path, data)
    return data


def json_path(parts: Iterable[str | int]) -> str:
    """Format path components as a JSON path: ``("retraining", 3, "lr")`` -> ``$.retraining[3].lr``.

    Args:
        parts: Object keys and array indices from the root down.

    Returns:
        The path; keys that are not identifiers are quoted, ``$.target.layer_ratios["conv*"]``.
    """
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _read_capped(path: Path, max_bytes: int) -> bytes:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{path}: not a regular file", "pass a .json file or a folder")
        if info.st_size > max_bytes:
            raise SubmissionError(
                f"{path}: {_size(info.st_size)}, over the {_size(max_bytes)} limit of a JSON file",
                "a submission is a few kB; check that this is the right file",
            )
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as err:
        raise SubmissionError(
            f"{path}: cannot read: {err.strerror or err}", "check the path and its permissions"
        ) from err
    if len(raw) > max_bytes:
        raise SubmissionError(
            f"{path}: over the {_size(max_bytes)} limit of a JSON file",
            "a submission is a few kB; check that this is the right file",
        )
    return raw


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise SubmissionError(
            f"{path}: starts with a UTF-8 byte-order mark, which JSON does not allow",
            "save the file as UTF-8 without a BOM",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _line_col_of_byte(raw, err.start)
        raise SubmissionError(
            f"{path}: invalid UTF-8 at line {line} column {col} (byte {err.start})",
            "save the file as UTF-8",
        ) from err


def _check_depth(path: Path, text: str, max_depth: int) -> None:
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > max_depth:
                line, col = _line_col(text, match.start())
                raise SubmissionError(
                    f"{path}: arrays/objects nested deeper than {max_depth} levels "
                    f"at line {line} column {col}",
                    "a submission is nested 4 levels deep; check that this is the right file",
                )
        elif char in "]}":
            depth -= 1


def _parse(path: Path, text: str) -> Any:
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as err:
        raise SubmissionError(
            f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}", _FIX_JSON
        ) from err
    except _Refused as err:
        raise SubmissionError(f"{path}: {_locate(text, err)}", _FIX_JSON) from err
    except (ValueError, RecursionError) as err:  # e.g. an integer with more than 4300 digits
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SubmissionError(f"{path}: cannot parse JSON: {reason}", _FIX_JSON) from err


def _check_strings(path: Path, data: Any) -> None:
    """Refuse the first string or key, in file order, that is not valid Unicode."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            _check_string(path, value, where)
        elif isinstance(value, dict):
            for key in value:
                _check_string(path, key, where, is_key=True)
            stack.extend((item, (*where, key)) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((value[i], (*where, i)) for i in reversed(range(len(value))))


def _check_string(
    path: Path, text: str, where: tuple[str | int, ...], is_key: bool = False
) -> None:
    """Raise when ``text`` holds a lone surrogate (from a ``\\uD800``-``\\uDFFF`` escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        what = "a key of the object" if is_key else "the string"
        code = f"\\u{ord(text[err.start]):04x}"
        raise SubmissionError(
            f"{path}: {what} at {json_path(where)} contains the lone surrogate {code}, which is"
            " not valid Unicode (a \\uD800-\\uDFFF escape must be one half of a surrogate pair)",
            "write the character itself in UTF-8, or escape it as a complete surrogate pair",
        ) from err


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON: numbers must be finite (write null for 'no value')")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"number {literal[:40]} overflows to infinity")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {json.dumps(key)[:80]} in an object")
        result[key] = value
    return result


def _locate(text: str, err: _Refused) -> str:
    """Put the position of the first NaN/Infinity token into its message (others as they are)."""
    message = str(err)
    if "is not valid JSON" not in message:
        return message
    for match in _CONSTANTS.finditer(text):
        if match.group(1):
            line, col = _line_col(text, match.start(1))
            token, rest = message.split(" ", 1)
            return f"{token} at line {line} column {col} {rest}"
    return message


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _line_col_of_byte(raw: bytes, index: int) -> tuple[int, int]:
    line = raw.count(b"\n", 0, index) + 1
    return line, index - (raw.rfind(b"\n", 0, index) + 1) + 1


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes} bytes"


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes (hex), read in 1 MiB chunks; torch-free, for validate too."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: Path | str, data: Any) -> None:
    """Write ``data`` as indented JSON (key order kept, trailing newline), atomically.

    Args:
        path: The target file; missing parent folders are created.
        data: A JSON-serializable value without NaN or infinities.

    Raises:
        OutputError: ``data`` is not serializable (NaN, an unknown type), or the folder cannot
            be created or written; no temporary file is left behind.
    """
    path = Path(path)
    try:
        text = json.dumps(data, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise OutputError(
            f"cannot write {path}: the data is not plain JSON ({err})",
            "this is a bug in the code that produced the data; please report it",
        ) from err
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through a fsynced temporary file and ``os.replace``.

    Args:
        path: The target file; missing parent folders are created.
        text: The complete new content.

    Stale temporary files of killed writers in the folder are removed first
    (:func:`~pruning_suite.record.safefiles.remove_stale_temps`); this write's own is named
    ``.<name>.<pid>.<8 hex>.tmp`` (:func:`~pruning_suite.record.safefiles.temp_path`).

    Raises:
        OutputError: The folder cannot be created or written; no temporary file is left behind
            (the error's ``__cause__`` is the ``OSError``, e.g. ``errno.ENOSPC``).
    """
    path = Path(path)
    data = text.encode("utf-8")
    write_atomic(path, lambda handle: handle.write(data), lambda err: _unwritable(path.parent, err))


def _unwritable(folder: Path, err: OSError) -> OutputError:
    return OutputError(
        f"cannot write to folder {folder}: {err.strerror or err}",
        "pass a writable folder with --out",
    )
