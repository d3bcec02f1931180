"""Reports: ranking tables computed from submission files, their formats, and figures.

:mod:`.tables` builds the tables (torch-free), :mod:`.formats` writes them (a registry of
:class:`ReportFormat`, hook ``register_report_formats``), :mod:`.figures` draws them.
"""

from __future__ import annotations

from .formats import ReportFormat

__all__ = ["ReportFormat"]
