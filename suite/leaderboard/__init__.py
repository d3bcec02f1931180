"""The static leaderboard site: ``pruning-suite leaderboard DIR... --out SITE``.

Built from the tables :func:`pruning_suite.report.tables.build_tables` ranks (never a second
ranking), with Jinja2 templates, hand-written SVG charts and a small script for sorting and
filtering without a server (:mod:`.site`).
"""

from __future__ import annotations

from .site import MARKER, SiteResult, build_site

__all__ = ["MARKER", "SiteResult", "build_site"]
