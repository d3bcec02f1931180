"""The suite's own architectures, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from typing import Any

from ..contract.hookspecs import hookimpl


@hookimpl
def register_architectures() -> dict[str, Any]:
    """The builders of :data:`pruning_suite.engine.architectures.MODELS` (imports torch when called)."""
    from . import architectures, models  # noqa: F401  (importing models registers the builders)

    return dict(architectures.MODELS)
