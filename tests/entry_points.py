"""Simulated installed plugins: extra entry points of the ``pruning_suite`` group, for one test.

The CLI finds plugins only through entry points (``importlib.metadata.entry_points``); a test adds
its own by monkeypatching the lookup that :mod:`pruning_suite.contract.plugins` uses, so the CLI
runs unchanged, as for a plugin installed with pip.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from importlib.metadata import EntryPoint, EntryPoints
from typing import Any

import pytest

from pruning_suite.contract import plugins


def add_entry_points(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Make every plugin lookup also see ``name = "module[:attr]"`` entry points."""
    real = plugins.entry_points
    extra = [EntryPoint(name, value, plugins.ENTRY_POINT_GROUP) for name, value in values.items()]

    def entry_points(**params: Any) -> EntryPoints:
        found = list(real(**params))
        if params.get("group") == plugins.ENTRY_POINT_GROUP:
            found += [ep for ep in extra if params.get("name") in (None, ep.name)]
        return EntryPoints(found)

    monkeypatch.setattr(plugins, "entry_points", entry_points)


def module_plugin(monkeypatch: pytest.MonkeyPatch, name: str, **hooks: Callable[..., Any]) -> str:
    """An importable module ``name`` holding ``hooks`` (for an entry point to name)."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, function)
    monkeypatch.setitem(sys.modules, name, module)
    return name
