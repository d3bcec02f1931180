"""JSON Schemas (Draft 2020-12) generated from the pydantic models.

The pydantic models are the single source of truth; the schemas are generated from them, committed
under ``schemas/`` (installed as the package ``pruning_suite.schemas``) and checked fresh by a
test, so that anyone can validate a submission with any JSON Schema implementation, without the
suite. Regenerate them after changing a model::

    python -m pruning_suite.record.schema            # into the installed pruning_suite.schemas folder
    python -m pruning_suite.record.schema schemas/   # or into a folder of your choice
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SubmissionError
from ..protocol.spec import ComparisonProtocol
from .jsonio import write_text_atomic
from .submission import SCHEMA_VERSION, Submission

__all__ = [
    "SCHEMA_DIALECT",
    "SCHEMA_FILES",
    "load_packaged_schema",
    "main",
    "packaged_schema_folder",
    "protocol_schema",
    "schema_text",
    "submission_schema",
    "write_schemas",
]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_BASE_ID = "https://pruning-suite.invalid/schemas"
_REGENERATE = "python -m pruning_suite.record.schema"
_COMMENT = f"Generated from the pydantic models by '{_REGENERATE}'; do not edit by hand."


def submission_schema() -> dict[str, Any]:
    """The JSON Schema of a submission file (``schema_version`` :data:`SCHEMA_VERSION`).

    Returns:
        A Draft 2020-12 schema generated from :class:`~pruning_suite.record.submission.Submission`.
    """
    return _with_header(
        Submission.model_json_schema(),
        schema_id=f"{_BASE_ID}/submission-v{SCHEMA_VERSION}.schema.json",
        title=f"pruning-suite submission (schema_version {SCHEMA_VERSION})",
    )


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema of a comparison protocol (the data of a protocol TOML file).

    Returns:
        A Draft 2020-12 schema generated from
        :class:`~pruning_suite.protocol.spec.ComparisonProtocol`. Checks written as pydantic validators
        (id slug, ratio ranges, unique target ids) are not expressed in it.
    """
    return _with_header(
        ComparisonProtocol.model_json_schema(),
        schema_id=f"{_BASE_ID}/protocol.schema.json",
        title="pruning-suite comparison protocol",
    )


def _with_header(schema: dict[str, Any], schema_id: str, title: str) -> dict[str, Any]:
    header = {"$schema": SCHEMA_DIALECT, "$id": schema_id, "$comment": _COMMENT, "title": title}
    return {**header, **{k: v for k, v in schema.items() if k not in header}}


SCHEMA_FILES: dict[str, Callable[[], dict[str, Any]]] = {
    "submission.schema.json": submission_schema,
    "protocol.schema.json": protocol_schema,
}
"""Every committed schema file and the function that generates it."""


def schema_text(schema: dict[str, Any]) -> str:
    """The committed text of a schema: indent 2, sorted keys, trailing newline.

    Args:
        schema: A generated schema.

    Returns:
        The exact text :func:`write_schemas` writes.
    """
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(folder: Path | str) -> list[Path]:
    """Generate every schema in :data:`SCHEMA_FILES` and write it into ``folder``.

    Args:
        folder: The target folder (created if missing).

    Returns:
        The paths written.

    Raises:
        OutputError: The folder cannot be created or written.
    """
    written = []
    for name, generate in SCHEMA_FILES.items():
        path = Path(folder) / name
        write_text_atomic(path, schema_text(generate()))
        written.append(path)
    return written


def packaged_schema_folder() -> Path:
    """The folder of the installed ``pruning_suite.schemas`` package.

    In an editable install (``pip install -e .``) this is the repository's ``schemas/``.
    """
    return Path(str(resources.files("pruning_suite.schemas")))


def load_packaged_schema(name: str) -> dict[str, Any]:
    """Read a schema shipped with the package.

    Args:
        name: ``"submission"`` or ``"protocol"``, or the file name (``"submission.schema.json"``).

    Returns:
        The parsed schema.

    Raises:
        SubmissionError: No such schema is installed, or it cannot be parsed.
    """
    file_name = name if name.endswith(".json") else f"{name}.schema.json"
    if file_name not in SCHEMA_FILES:
        known = ", ".join(n.removesuffix(".schema.json") for n in SCHEMA_FILES)
        raise SubmissionError(f"unknown schema {name!r}", f"use one of: {known}")
    resource = resources.files("pruning_suite.schemas").joinpath(file_name)
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SubmissionError(
            f"the installed schema {file_name} is missing or unreadable ({err})",
            f"regenerate it with '{_REGENERATE}', or reinstall pruning-suite",
        ) from err


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the committed schemas (``python -m pruning_suite.record.schema [FOLDER]``).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status, 0.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pruning_suite.record.schema",
        description="Regenerate the JSON Schemas from the pydantic models.",
    )
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=None,
        help="target folder (default: the installed pruning_suite.schemas folder, "
        "which in an editable install is the repository's schemas/)",
    )
    args = parser.parse_args(argv)
    for path in write_schemas(args.folder or packaged_schema_folder()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
