"""One generic, typed registry: name -> object, filled from plugins, with "did you mean" errors.

Every extension point of the suite (datasets, architectures, studies, report formats, protocol
folders, fairness rules) is a :class:`Registry` filled by a ``register_*`` hook of
:mod:`pruning_suite.contract.hookspecs`; core defaults register through the same hooks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from ..errors import PluginError, did_you_mean

__all__ = ["NAME_PATTERN", "Registry", "broken_note"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
"""Method names, protocol ids and dataset names: lower-case letters, digits and '-'. They become
folder and file names (``<protocol>/<method>/<run-id>.json``), so nothing else is allowed."""

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of names to registered objects of one kind, each with the plugin it came from.

    Args:
        kind: What is registered, singular (``"dataset"``); used in error messages.
        hint: Where a user sees what is installed (``"'pruning-suite plugins' lists them"``).
        broken: Plugin name -> why it failed to load (kept by reference, it may still grow); an
            unknown name's error names these plugins, since one of them may have provided it.

    Raises:
        PluginError: From :meth:`add` on a name registered twice, and from :meth:`get` on an
            unknown name (with close matches and the installed names).
    """

    def __init__(
        self,
        kind: str,
        hint: str = "'pruning-suite plugins' lists them",
        broken: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.hint = hint
        self._broken = broken if broken is not None else {}
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def add(self, name: str, obj: T, origin: str | None = None) -> None:
        """Register ``obj`` under ``name``.

        Args:
            name: The name to register.
            obj: The object.
            origin: The plugin that registers it (named in a duplicate-name error).

        Raises:
            PluginError: ``name`` is not a non-empty string, or is already registered.
        """
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{_article(self.kind)} {self.kind} was registered under {name!r}, not a non-empty name",
                f"register each {self.kind} under a non-empty string",
            )
        if name in self._items:
            raise PluginError(
                f"{self._registrant(origin)} and {self._registrant(self._origins.get(name))} both "
                f"register {_article(self.kind)} {self.kind} named {name!r}",
                f"rename one or uninstall one of them ({self.hint})",
            )
        self._items[name] = obj
        if origin is not None:
            self._origins[name] = origin

    def origin(self, name: str) -> str | None:
        """The plugin that registered ``name`` (None: unknown or added without one)."""
        return self._origins.get(name)

    def by_origin(self) -> dict[str, list[str]]:
        """Plugin -> the names it registered, in registration order (``"?"``: no origin given)."""
        found: dict[str, list[str]] = {}
        for name in self._items:
            found.setdefault(self._origins.get(name, "?"), []).append(name)
        return found

    @staticmethod
    def _registrant(origin: str | None) -> str:
        return "another plugin" if origin is None else f"plugin {origin!r}"

    def get(self, name: str) -> T:
        """The object registered as ``name``.

        Raises:
            PluginError: Unknown name, with "did you mean" and the installed names.
        """
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None

    def unknown(self, name: object) -> PluginError:
        """The error for an unknown ``name``: close matches and what is installed."""
        guess = did_you_mean(str(name), self._items, cutoff=0.5)
        known = ", ".join(sorted(self._items)) or "none"
        return PluginError(
            f"unknown {self.kind} {name!r}",
            f"{guess}known: {known} ({self.hint}){broken_note(self._broken)}",
        )

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, object)`` pairs in registration order."""
        return iter(list(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


def broken_note(broken: Mapping[str, str]) -> str:
    """``"; plugins that failed to load, one may provide it: 'a', 'b'"``, or ``""`` when none did."""
    if not broken:
        return ""
    names = ", ".join(repr(name) for name in sorted(broken))
    return f"; plugins that failed to load, one may provide it: {names} ('pruning-suite plugins' says why)"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
