"""The plugin manager: the suite's hooks called through pluggy, plugins found by entry point.

Built as pytest and datasette build theirs: the core defaults (``CORE_PLUGINS``) are registered
first, then every module named in the ``pruning_suite`` entry-point group, then plugins passed in
directly (tests, notebooks). :func:`load_registry` refuses a plugin that implements a hook the
suite does not define (``manager.check_pending()``: a misspelled ``register_method`` is an error,
not silence) and an entry point that names something other than a module, then collects the
methods with ``manager.hook.register_methods()``.

No manager is built at import time: :func:`get_plugin_manager` builds a fresh one on each call,
so tests and long-running processes see exactly what is installed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from pydantic import ValidationError

from ..errors import PluginError, did_you_mean
from . import hookspecs
from .kinds import KINDS, call_each, collect, mark_broken, one_line
from .method import MethodConfig, PruningMethod
from .registry import NAME_PATTERN, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "MethodInfo",
    "PluginRegistry",
    "get_plugin_manager",
    "load_registry",
]

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

_DIRECT = "(direct)"


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
        broken: Plugin name (the entry-point name for installed plugins) -> why it could not be
            loaded: an import error, an unknown hook, an entry point that is not a module, a
            registration that raised or broke the method contract, or a ``register_*`` hook that
            raised or returned a malformed entry or a name another plugin registered first
            (found when that registry is first read: each is built on first use).
        distributions: Plugin name -> the distribution that installed it (entry points only).
    """

    manager: pluggy.PluginManager
    methods: dict[str, MethodInfo]
    broken: dict[str, str]
    distributions: dict[str, str] = field(default_factory=dict)
    _registries: dict[str, Registry[Any]] = field(default_factory=dict, repr=False)

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
            guess = did_you_mean(name, self.methods, cutoff=0.5)
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

    def distribution(self, plugin: str) -> str:
        """The distribution that installed ``plugin``: ``"name version"``, the suite's own for a
        core plugin, or ``"(direct)"`` for one registered in-process."""
        if plugin in CORE_PLUGINS:
            return f"pruning-suite {_suite_version()}"
        return self.distributions.get(plugin, _DIRECT)

    def registry(self, kind: str, skip: Collection[str] = ()) -> Registry[Any]:
        """The registry of ``kind`` (``"datasets"``, ..., as the properties are named).

        Args:
            kind: A key of :data:`~pruning_suite.contract.kinds.KINDS`.
            skip: Plugin names whose hook is not called (the result is then not cached), e.g.
                the core architectures, whose registration imports torch.
        """
        if skip:
            return collect(self.manager, KINDS[kind], self.broken, self.distributions, skip)
        return self._cached(kind)

    def _cached(self, kind: str) -> Registry[Any]:
        if kind not in self._registries:
            self._registries[kind] = collect(
                self.manager, KINDS[kind], self.broken, self.distributions
            )
        return self._registries[kind]


def get_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the suite's hookspecs and core plugins.

    Args:
        load_entry_points: Also register every plugin of the ``pruning_suite`` entry-point group
            (those that fail to load are skipped; :func:`load_registry` lists them as broken).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for module_name in CORE_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        _register_entry_points(manager, broken={}, distributions={})
    return manager


def load_registry(extra_plugins: Sequence[Any] = ()) -> PluginRegistry:
    """Build a fresh manager, load every installed plugin, refuse bad ones, collect the methods.

    Steps: register the core plugins, then each entry point of the ``pruning_suite`` group (it
    must name a module), then ``extra_plugins``; refuse plugins that implement an unknown hook;
    call ``register_methods`` and check each returned class against the method contract.

    Args:
        extra_plugins: Plugin objects registered directly (tests, notebooks), after entry points.

    Returns:
        The registry. A plugin that fails to import, whose entry point names a class or function
        instead of a module, that implements a hook the suite does not define (a misspelling such
        as ``register_method``), or that registers a method breaking the contract (e.g. a
        ``name`` differing from its entry-point name) is listed in ``broken``, with the reason
        and how to fix it, instead of failing everything.
    """
    manager = get_plugin_manager(load_entry_points=False)
    broken: dict[str, str] = {}
    distributions: dict[str, str] = {}
    _register_entry_points(manager, broken, distributions)
    for plugin in extra_plugins:
        manager.register(plugin)
    _refuse_unknown_hooks(manager, broken)
    methods = _collect_methods(manager, broken, distributions)
    return PluginRegistry(manager, methods, broken, distributions)


def _register_entry_points(
    manager: pluggy.PluginManager, broken: dict[str, str], distributions: dict[str, str]
) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if manager.has_plugin(ep.name) or ep.name in broken:
            continue
        try:
            plugin = ep.load()
        except Exception as err:  # a broken third-party plugin must not take the others down
            broken[ep.name] = f"cannot be imported: {type(err).__name__}: {err}"
            continue
        if not inspect.ismodule(plugin):
            broken[ep.name] = _not_a_module(ep, plugin)
            continue
        other = manager.get_name(plugin)
        if other is not None:  # pluggy refuses one module under two names
            broken[ep.name] = (
                f"entry point '{ep.name} = \"{ep.value}\"' names the module that entry point "
                f"{other!r} already registered; give each entry point its own module"
            )
            continue
        try:
            manager.register(plugin, name=ep.name)
        except pluggy.PluginValidationError as err:
            broken[ep.name] = f"{err} (see pruning_suite.contract.hookspecs for the signatures)"
            continue
        distributions[ep.name] = _distribution(ep)


def _not_a_module(ep: EntryPoint, plugin: object) -> str:
    kind = "class" if inspect.isclass(plugin) else type(plugin).__name__
    what = getattr(plugin, "__name__", repr(plugin))
    marker = f"{hookspecs.PROJECT}_impl"
    hooks = [n for n in dir(plugin) if hasattr(getattr(plugin, n, None), marker)]
    shown = ", ".join(hooks) or "register_methods, ..."
    return (
        f"entry point '{ep.name} = \"{ep.value}\"' resolves to the {kind} {what}, not a plugin "
        "module; pluggy calls a module's hooks, it does not instantiate classes: write the hooks "
        f"({shown}) as module-level @hookimpl functions, without self, and point the entry "
        f"point at the module that holds them, e.g. '{ep.name} = \"{ep.module}\"'"
    )


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"(entry point {ep.value})"
    return f"{dist.metadata['name']} {dist.version}"


def _refuse_unknown_hooks(manager: pluggy.PluginManager, broken: dict[str, str]) -> None:
    """Unregister, and list as broken, every plugin implementing a hook with no hookspec."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as err:
            name = manager.get_name(err.plugin) or repr(err.plugin)
            broken[name] = _unknown_hooks_message(manager, err.plugin)
            manager.unregister(err.plugin)


def _unknown_hooks_message(manager: pluggy.PluginManager, plugin: object) -> str:
    known = sorted(n for n in vars(manager.hook) if getattr(manager.hook, n).has_spec())
    unknown = sorted(c.name for c in manager.get_hookcallers(plugin) or () if not c.has_spec())
    parts = []
    for hook in unknown:
        close = get_close_matches(hook, known, n=1, cutoff=0.6)
        parts.append(f"{hook!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"implements the unknown hook {', '.join(parts)}; the hooks pruning-suite calls are "
        f"{', '.join(known)} (pruning_suite.contract.hookspecs documents each)"
    )


def _collect_methods(
    manager: pluggy.PluginManager, broken: dict[str, str], distributions: dict[str, str]
) -> dict[str, MethodInfo]:
    """Call ``register_methods`` on every plugin and keep the classes that meet the contract.

    The hook is called once per plugin (``subset_hook_caller``), so a plugin whose registration
    raises is listed in ``broken`` without hiding the others' methods, and every method keeps
    the plugin, and so the distribution, it came from.
    """
    methods: dict[str, MethodInfo] = {}
    for name, results, err in call_each(manager, "register_methods"):
        if err is not None:
            mark_broken(
                broken, name, f"register_methods raised {type(err).__name__}: {one_line(err)}"
            )
            continue
        dist = distributions.get(name, _DIRECT)
        for cls in _returned_classes([] if results is None else [results], name, broken):
            problem = _contract_problem(cls, name, from_entry_point=name in distributions)
            if problem:
                mark_broken(broken, name, problem)
                continue
            methods[cls.name] = MethodInfo(
                cls.name, cls.version, cls.granularity, cls.description, dist, cls
            )
    return methods


def _returned_classes(results: list[Any], plugin_name: str, broken: dict[str, str]) -> list[Any]:
    classes: list[Any] = []
    for result in results:
        if not isinstance(result, list | tuple):
            why = f"register_methods returned {type(result).__name__}, not a list of classes"
            mark_broken(broken, plugin_name, why)
            continue
        classes.extend(result)
    return classes


_VERSION = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"
"""A method version: it lands in run ids, file contents and tables, on one line."""


def _contract_problem(cls: Any, plugin_name: str, from_entry_point: bool) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, PruningMethod)):
        return f"register_methods returned {cls!r}, which is not a PruningMethod subclass"
    for attr in ("name", "version"):
        if not isinstance(getattr(cls, attr, None), str):
            return f"method class {cls.__name__} does not set the class attribute {attr!r}"
    if not re.fullmatch(_VERSION, cls.version):
        return (
            f"method class {cls.__name__} has version {cls.version[:40]!r}; a version is up to 64 "
            "letters, digits, '.', '_', '+' or '-', e.g. '1' or '1.2.0'"
        )
    if len(cls.name) > 64 or not re.fullmatch(NAME_PATTERN, cls.name):
        return (
            f"method class {cls.__name__} is named {cls.name[:40]!r}; a method name is up to 64 "
            "lower-case letters, digits and '-' (it becomes a folder name), e.g. 'my-method'"
        )
    if from_entry_point and cls.name != plugin_name:
        return f"entry point {plugin_name!r} registers a method named {cls.name!r}; the two must be equal"
    return None


def _suite_version() -> str:
    """The installed pruning-suite's version (from its distribution: this layer sits below the
    package's ``__init__``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pruning-suite")
    except PackageNotFoundError:
        return "unknown"
