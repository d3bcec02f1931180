"""The suite's own studies, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from typing import Any

from ..contract.hookspecs import hookimpl


@hookimpl
def register_studies() -> dict[str, Any]:
    """``lr-sweep`` (M1), ``scratch`` (M2) and ``cross-recipe`` (arXiv 2301.05219)."""
    from .cross_recipe import CrossRecipe
    from .lr_sweep import LRSweep
    from .scratch import Scratch

    return {study.name: study for study in (LRSweep(), Scratch(), CrossRecipe())}
