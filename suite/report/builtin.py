"""The suite's own report formats, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from typing import Any

from ..contract.hookspecs import hookimpl


@hookimpl
def register_report_formats() -> dict[str, Any]:
    """``github`` (Markdown), ``latex``, ``html`` and ``csv`` (:mod:`pruning_suite.report.formats`)."""
    from .formats import BUILTIN_FORMATS

    return {fmt.name: fmt for fmt in BUILTIN_FORMATS}
