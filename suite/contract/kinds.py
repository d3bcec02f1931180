"""What each ``register_*`` hook may return, and the per-plugin calls that collect it.

Every registration hook is called once per plugin (pluggy's ``subset_hook_caller``), in
registration order (the suite's own plugins first). A plugin whose hook raises, returns something
other than a mapping, registers a malformed entry (a name that is not a plain name, a key other
than the object's own ``name``, an object of the wrong type) or a name another plugin registered
first is listed in ``broken`` with a one-line reason, and adds nothing to that registry; every
other plugin still loads. This module does not import the types it checks (they live in higher
layers): an entry is checked by the attributes its interface needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from .registry import NAME_PATTERN, Registry

__all__ = [
    "KINDS",
    "RULE_PATTERN",
    "RULE_SCOPES",
    "UNCHECKED_SCOPES",
    "Kind",
    "call_each",
    "collect",
    "mark_broken",
    "one_line",
    "rule_problem",
]

ARCHITECTURE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
"""Architecture names may also hold '_' (``vgg16_bn``); they never become file names."""

_MAX_NAME = 64


@dataclass(frozen=True)
class Kind:
    """One extension point: its hook and what an entry must look like.

    Attributes:
        attribute: The :class:`~pruning_suite.contract.plugins.PluginRegistry` property and the
            hook's suffix (``register_<attribute>``).
        singular: What one entry is, in messages (``"report format"``).
        pattern: The form of a name, or None where the kind's own module checks it (rules).
        check: The problem with one ``(name, object)`` entry, or None when it is fine.
    """

    attribute: str
    singular: str
    pattern: str | None
    check: Callable[[str, Any], str | None] | None

    @property
    def hook(self) -> str:
        """The hook's name, e.g. ``register_datasets``."""
        return f"register_{self.attribute}"


def _named(interface: str, *methods: str) -> Callable[[str, Any], str | None]:
    """A check: the object has a ``name`` equal to its key and the callables ``methods``."""

    def check(key: str, obj: Any) -> str | None:
        if any(not callable(getattr(obj, m, None)) for m in methods) or not hasattr(obj, "name"):
            return f"{_shown(obj)} for {key!r}, not a {interface}"
        if obj.name != key:
            return (
                f"an object named {_shown(obj.name)} under the name {key!r}; the two must be equal"
            )
        return None

    return check


def _dataset(key: str, obj: Any) -> str | None:
    if not all(hasattr(obj, a) for a in ("name", "channels", "has_official_test", "read")):
        return f"{_shown(obj)} for {key!r}, not a DatasetSource (pruning_suite.data.source)"
    if obj.name != key:
        return f"a DatasetSource named {_shown(obj.name)} under the name {key!r}; the two must be equal"
    return None


RULE_PATTERN = r"^R-[A-Z]+-\d+$"
"""The form of a rule id: ``R-<FAMILY>-<N>``, e.g. ``R-RETRAIN-2``."""

RULE_SCOPES = ("file", "tree", "run", "read", "deep")
UNCHECKED_SCOPES = ("run", "read")
"""Scopes of rules without a check: enforced by the runner, or by validate's reading stages."""


def rule_problem(key: str, obj: Any) -> str | None:
    """The problem with a rule registered under ``key`` (the rule type itself lives in
    ``pruning_suite.rules``, above this layer: its fields are checked, not its class)."""
    if not all(hasattr(obj, a) for a in ("id", "check", "scope", "setup", "severity")):
        return f"{_shown(obj)} for {key!r}, not a Rule (pruning_suite.rules)"
    if obj.id != key or not re.fullmatch(RULE_PATTERN, key):
        return (
            f"the rule {_shown(obj.id)} under the id {key!r}; a rule is registered under its "
            "own id, R-<FAMILY>-<N>"
        )
    unchecked = obj.scope in UNCHECKED_SCOPES
    if (
        obj.scope not in RULE_SCOPES
        or (obj.check is None) != unchecked
        or not (unchecked or callable(obj.check))
    ):
        return (
            f"the rule {key!r} with scope {_shown(obj.scope)} and check {_shown(obj.check)}; a "
            "file or tree rule has a check, a run or read rule none"
        )
    return None


def _builder(key: str, obj: Any) -> str | None:
    if callable(obj):
        return None
    return f"{_shown(obj)} for {key!r}, not a builder(input_shape, num_classes, **kwargs)"


def _folder(key: str, obj: Any) -> str | None:
    if isinstance(obj, str | os.PathLike):
        obj = Path(obj)
    if not all(hasattr(obj, a) for a in ("iterdir", "joinpath", "is_dir")):
        return f"{_shown(obj)} for {key!r}, not a folder (a path or an importlib.resources traversable)"
    if not obj.is_dir():
        return f"the protocol folder {key!r} at {_shown(str(obj))}, which is not a folder"
    return None


KINDS: dict[str, Kind] = {
    kind.attribute: kind
    for kind in (
        Kind("datasets", "dataset", NAME_PATTERN, _dataset),
        Kind("architectures", "architecture", ARCHITECTURE_PATTERN, _builder),
        Kind("protocol_folders", "protocol folder", NAME_PATTERN, _folder),
        Kind("rules", "rule", None, rule_problem),
        Kind("studies", "study", NAME_PATTERN, _named("Study (pruning_suite.studies)", "arms")),
        Kind(
            "report_formats",
            "report format",
            NAME_PATTERN,
            _named("ReportFormat (pruning_suite.report)", "render"),
        ),
    )
}
"""Every registry filled by a ``register_*`` hook (methods have their own contract check)."""


def call_each(
    manager: pluggy.PluginManager, hook: str, skip: Collection[str] = ()
) -> Iterator[tuple[str, Any, Exception | None]]:
    """Call ``hook`` once per plugin implementing it, in registration order (the suite's own
    plugins first, so a name a plugin registers again breaks that plugin, never the core).

    Args:
        manager: The plugin manager.
        hook: The hook's name.
        skip: Plugin names not to call.

    Yields:
        ``(plugin name, its result, None)``, or ``(plugin name, None, the exception it raised)``.
    """
    implementing = {id(impl.plugin) for impl in getattr(manager.hook, hook).get_hookimpls()}
    plugins = [p for _, p in manager.list_name_plugin() if id(p) in implementing]
    for plugin in plugins:  # registration order, not pluggy's call order (tryfirst, LIFO)
        name = manager.get_name(plugin) or repr(plugin)
        if name in skip:
            continue
        others = [p for p in plugins if p is not plugin]
        try:
            (result,) = manager.subset_hook_caller(hook, others)() or [None]
        except Exception as err:  # a broken plugin must not take the others down
            yield name, None, err
            continue
        yield name, result, None


def collect(
    manager: pluggy.PluginManager,
    kind: Kind,
    broken: MutableMapping[str, str],
    distributions: Mapping[str, str],
    skip: Collection[str] = (),
) -> Registry[Any]:
    """The registry of ``kind``, filled plugin by plugin; bad plugins land in ``broken``.

    Args:
        manager: The plugin manager.
        kind: Which registry.
        broken: Plugin name -> why it failed; updated.
        distributions: Plugin name -> its distribution (for duplicate-name messages).
        skip: Plugin names not to call.
    """
    registry: Registry[Any] = Registry(kind.singular, broken=broken)
    for plugin, result, err in call_each(manager, kind.hook, skip):
        if err is not None:
            mark_broken(broken, plugin, f"{kind.hook} raised {type(err).__name__}: {one_line(err)}")
            continue
        problem = _problem(kind, result, registry, plugin, distributions)
        if problem:
            mark_broken(broken, plugin, f"{kind.hook} {problem}")
            continue
        for name, obj in (result or {}).items():
            registry.add(name, obj, origin=plugin)
    return registry


def _problem(
    kind: Kind, result: Any, registry: Registry[Any], plugin: str, distributions: Mapping[str, str]
) -> str | None:
    """Why ``plugin``'s whole result is refused, or None."""
    if result is None:
        return None
    if not isinstance(result, Mapping):
        return (
            f"returned {type(result).__name__}, not a dict of names to objects "
            f"(e.g. {{'my-{kind.singular.replace(' ', '-')}': obj}})"
        )
    for name, obj in result.items():
        problem = _entry_problem(kind, name, obj)
        if problem:
            return problem
        if name in registry:
            first = registry.origin(name) or "another plugin"
            return (
                f"registers the {kind.singular} {name!r}, which plugin {_who(first, distributions)} "
                f"registers already; this plugin ({_dist(plugin, distributions)}) is skipped: rename "
                "its entry or uninstall one of the two"
            )
    return None


def _entry_problem(kind: Kind, name: Any, obj: Any) -> str | None:
    if kind.pattern is not None and not (
        isinstance(name, str) and len(name) <= _MAX_NAME and re.fullmatch(kind.pattern, name)
    ):
        allowed = "'-' and '_'" if "_" in kind.pattern else "'-'"
        return (
            f"returned the name {_shown(name)}; a {kind.singular} name is up to {_MAX_NAME} "
            f"lower-case letters, digits, {allowed}"
        )
    if not isinstance(name, str) or not name:
        return f"returned the name {_shown(name)}, not a non-empty string"
    if kind.check is None:
        return None
    problem = kind.check(name, obj)
    return f"returned {problem}" if problem else None


def _who(plugin: str, distributions: Mapping[str, str]) -> str:
    return f"{plugin!r} ({_dist(plugin, distributions)})"


def _dist(plugin: str, distributions: Mapping[str, str]) -> str:
    if plugin.startswith("pruning_suite."):
        return "pruning-suite's own"
    return distributions.get(plugin, "registered directly").strip("()")


def _shown(value: Any) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 63 else text


def one_line(err: BaseException | str, limit: int = 300) -> str:
    """An exception's (or a text's) message on one line, at most ``limit`` characters."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def mark_broken(broken: MutableMapping[str, str], plugin: str, why: str) -> None:
    """List ``plugin`` as broken for ``why`` (added to any reason it is listed for already)."""
    why = one_line(why, limit=600)
    if plugin not in broken:
        broken[plugin] = why
    elif why not in broken[plugin]:
        broken[plugin] = f"{broken[plugin]}; {why}"
