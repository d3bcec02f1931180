"""The Jinja2 environment of the leaderboard site: templates shipped in the package, autoescaped.

Every string a template prints is HTML-escaped unless it is one of the site's own SVG charts
(built by :mod:`.charts`, which escapes what it takes from a submission), passed as ``Markup``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .. import __version__

__all__ = ["render_page"]

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["suite_version"] = __version__
    return env


def render_page(template: str, context: dict[str, Any], root: str) -> str:
    """The page ``template`` filled with ``context``.

    Args:
        template: A file name in ``templates/``.
        context: What the template reads; SVG strings under ``charts`` / ``figures`` are marked
            safe (they are built escaped).
        root: The relative way from the page to the site's top folder (``""`` or ``"../"``).
    """
    from markupsafe import Markup

    context = dict(context)
    if "charts" in context:
        context["charts"] = [
            {**section, "charts": [Markup(svg) for svg in section["charts"]]}
            for section in context["charts"]
        ]
    if "figures" in context:
        context["figures"] = [Markup(svg) for svg in context["figures"]]
    return _environment().get_template(template).render(root=root, **context)
