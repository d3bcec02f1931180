"""The plugin manager: finds pruning methods through the ``pruning_suite`` entry-point group.

No manager is built at import time: :func:`get_plugin_manager` builds a fresh one on each call,
so tests and long-running processes see exactly what is installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from importlib.metadata import entry_points
from typing import Any

import pluggy
from pydantic import ValidationError

from ..errors import PluginError
from . import hookspecs
from .method import MethodConfig, PruningMethod
from .registry import Registry

__all__ = ["MethodInfo", "PluginRegistry", "get_plugin_manager", "load_registry"]

ENTRY_POINT_GROUP = "pruning_suite"

# The suite's own defaults, registered through the same hooks as any plugin, before entry points
# (as pytest's default plugins). Each module imports torch, if at all, inside its hook functions,
# so that torch-free commands (validate, report) stay torch-free.
CORE_PLUGINS = (
    "pruning_suite.protocol.builtin",
    "pruning_suite.data.builtin",
    "pruning_suite.engine.builtin",
    "pruning_suite.rules.builtin",
    "pruning_suite.studies.builtin",
    "pruning_suite.report.builtin",
)


@dataclass(frozen=True)
class MethodInfo:
    """One registered method: its class and where it came from."""

    name: str
    version: str
    granularity: str
    description: str
    distribution: str
    cls: type[PruningMethod]


@dataclass
class PluginRegistry:
    """The installed methods and the plugins that failed to load.

    Attributes:
        manager: The pluggy manager (observer hooks are called on it).
        methods: Registered methods by name.
        broken: Entry-point name -> why it could not be loaded.
    """

    manager: pluggy.PluginManager
    methods: dict[str, MethodInfo]
    broken: dict[str, str]

    def method(self, name: str, config: dict[str, Any] | None = None) -> PruningMethod:
        """Instantiate method ``name`` with ``config``.

        Raises:
            PluginError: Unknown name (with "did you mean" and the installed list), a plugin that
                failed to load, or a config its ``Config`` model rejects.
        """
        if name in self.broken:
            raise PluginError(
                f"plugin {name!r} is installed but failed to load: {self.broken[name]}",
                f"fix or reinstall the distribution that provides {name!r}",
            )
        if name not in self.methods:
            close = get_close_matches(name, list(self.methods), n=3, cutoff=0.5)
            guess = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
            raise PluginError(
                f"unknown plugin {name!r}",
                f"{guess}installed: {', '.join(sorted(self.methods)) or 'none'} ('pruning-suite plugins' lists them)",
            )
        cls = self.methods[name].cls
        try:
            parsed: MethodConfig = cls.Config.model_validate(config or {})
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()
            )
            raise PluginError(
                f"invalid config for plugin {name!r}: {problems}",
                f"known options: {', '.join(cls.Config.model_fields) or 'none'}",
            ) from err
        return cls(parsed)

    def _collect(self, kind: str) -> Registry[Any]:
        results = getattr(self.manager.hook, f"register_{kind}")()
        return Registry.from_hook_results(kind.removesuffix("s").replace("_", " "), results)

    @property
    def datasets(self) -> Registry[Any]:
        """Dataset sources by name (hook ``register_datasets``)."""
        return self._cached("datasets")

    @property
    def architectures(self) -> Registry[Any]:
        """Model builders by name (hook ``register_architectures``)."""
        return self._cached("architectures")

    @property
    def studies(self) -> Registry[Any]:
        """Studies by name (hook ``register_studies``)."""
        return self._cached("studies")

    @property
    def report_formats(self) -> Registry[Any]:
        """Report formats by name (hook ``register_report_formats``)."""
        return self._cached("report_formats")

    @property
    def protocol_folders(self) -> Registry[Any]:
        """Folders of protocol files by name (hook ``register_protocol_folders``)."""
        return self._cached("protocol_folders")

    @property
    def rules(self) -> Registry[Any]:
        """Fairness rules by id (hook ``register_rules``)."""
        return self._cached("rules")

    def _cached(self, kind: str) -> Registry[Any]:
        cache = self.__dict__.setdefault("_registries", {})
        if kind not in cache:
            cache[kind] = self._collect(kind)
        return cache[kind]


def get_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the suite's hookspecs (and installed plugins when asked)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for module_name in CORE_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        _register_entry_points(manager, broken={})
    return manager


def _register_entry_points(manager: pluggy.PluginManager, broken: dict[str, str]) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if manager.has_plugin(ep.name):
            continue
        try:
            manager.register(ep.load(), name=ep.name)
        except Exception as err:  # a broken third-party plugin must not take the others down
            broken[ep.name] = f"{type(err).__name__}: {err}"


def load_registry(extra_plugins: tuple[Any, ...] = ()) -> PluginRegistry:
    """Build a fresh manager, load every installed plugin, and collect the methods.

    Args:
        extra_plugins: Plugin objects registered directly (tests, notebooks), after entry points.

    Returns:
        The registry. A plugin that fails to import, or registers a method whose ``name`` differs
        from its entry-point name, is listed in ``broken`` instead of failing everything.
    """
    manager = get_plugin_manager(load_entry_points=False)
    broken: dict[str, str] = {}
    _register_entry_points(manager, broken)
    for plugin in extra_plugins:
        manager.register(plugin)
    methods: dict[str, MethodInfo] = {}
    for plugin in manager.get_plugins():
        plugin_name = manager.get_name(plugin)
        dist = _distribution_of(manager, plugin)
        try:
            classes = plugin.register_methods() if hasattr(plugin, "register_methods") else []
        except Exception as err:
            broken[plugin_name] = f"register_methods raised {type(err).__name__}: {err}"
            continue
        if classes is not None and not isinstance(classes, list | tuple):
            broken[plugin_name] = (
                f"register_methods returned {type(classes).__name__}, not a list of classes"
            )
            continue
        for cls in classes or []:
            problem = _contract_problem(cls, plugin_name, from_entry_point=dist != "(direct)")
            if problem:
                broken[plugin_name] = problem
                continue
            methods[cls.name] = MethodInfo(
                cls.name, cls.version, cls.granularity, cls.description, dist, cls
            )
    return PluginRegistry(manager, methods, broken)


def _distribution_of(manager: pluggy.PluginManager, plugin: Any) -> str:
    for registered, dist in manager.list_plugin_distinfo():
        if registered is plugin:
            return f"{dist.metadata['name']} {dist.version}"
    name = manager.get_name(plugin)
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        if ep.dist is not None:
            return f"{ep.dist.metadata['name']} {ep.dist.version}"
    return "(direct)"


def _contract_problem(cls: Any, plugin_name: str, from_entry_point: bool) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, PruningMethod)):
        return f"register_methods returned {cls!r}, which is not a PruningMethod subclass"
    for attr in ("name", "version"):
        if not isinstance(getattr(cls, attr, None), str):
            return f"method class {cls.__name__} does not set the class attribute {attr!r}"
    if from_entry_point and cls.name != plugin_name:
        return f"entry point {plugin_name!r} registers a method named {cls.name!r}; the two must be equal"
    return None
