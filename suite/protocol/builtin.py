"""The suite's own protocol folder, registered as a core plugin (see ``CORE_PLUGINS``)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from ..contract.hookspecs import hookimpl

__all__ = ["SHIPPED", "register_protocol_folders", "shipped_folder"]

#: The registered name of the folder of protocols shipped inside the package.
SHIPPED = "pruning-suite"


def shipped_folder() -> Traversable:
    """``pruning_suite/protocol/files``: the protocols shipped with the suite."""
    return resources.files("pruning_suite.protocol.files")


@hookimpl
def register_protocol_folders() -> dict[str, Any]:
    """The protocols shipped in ``pruning_suite/protocol/files``."""
    return {SHIPPED: shipped_folder()}
