"""The suite's own architectures, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from typing import Any

from ..contract.hookspecs import hookimpl


@hookimpl
def register_architectures() -> dict[str, Any]:
    """The models of :mod:`pruning_suite.engine.models` (imports torch when called)."""
    from .models import MODELS

    return dict(MODELS)
