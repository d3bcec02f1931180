"""The suite's own protocol folder, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..contract.hookspecs import hookimpl

#: The registered name of the folder of protocols shipped inside the package.
SHIPPED = "pruning-suite"


@hookimpl
def register_protocol_folders() -> dict[str, Any]:
    """The protocols shipped in ``pruning_suite/protocol/files``."""
    return {SHIPPED: resources.files("pruning_suite.protocol.files")}
