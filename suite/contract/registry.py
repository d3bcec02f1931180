"""One generic, typed registry: name -> object, filled from plugins, with "did you mean" errors.

Every extension point of the suite (datasets, architectures, studies, report formats, protocol
folders, fairness rules) is a :class:`Registry` filled by a ``register_*`` hook of
:mod:`pruning_suite.contract.hookspecs`; core defaults register through the same hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from ..errors import PluginError, did_you_mean

__all__ = ["NAME_PATTERN", "Registry"]

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
"""Method names, protocol ids and dataset names: lower-case letters, digits and '-'. They become
folder and file names (``<protocol>/<method>/<run-id>.json``), so nothing else is allowed."""

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of names to registered objects of one kind.

    Args:
        kind: What is registered, singular (``"dataset"``); used in error messages.
        hint: Where a user sees what is installed (``"'pruning-suite plugins' lists them"``).

    Raises:
        PluginError: From :meth:`add` on a name registered twice, and from :meth:`get` on an
            unknown name (with close matches and the installed names).
    """

    def __init__(self, kind: str, hint: str = "'pruning-suite plugins' lists them") -> None:
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}

    @classmethod
    def from_hook_results(
        cls, kind: str, results: Iterable[Mapping[str, T] | None], hint: str | None = None
    ) -> Registry[T]:
        """A registry from the return values of one ``register_*`` hook call.

        Args:
            kind: What is registered, singular.
            results: One mapping ``name -> object`` per plugin (``None`` registers nothing).
            hint: As in the constructor.

        Raises:
            PluginError: A result that is not a mapping, or a name two plugins register.
        """
        registry: Registry[T] = cls(kind, *(() if hint is None else (hint,)))
        for result in results:
            if result is None:
                continue
            if not isinstance(result, Mapping):
                raise PluginError(
                    f"a plugin's register hook for {kind}s returned {type(result).__name__}, "
                    "not a mapping of names to objects",
                    f"return a dict such as {{'my-{kind}': obj}} ({registry.hint})",
                )
            for name, obj in result.items():
                registry.add(name, obj)
        return registry

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``.

        Raises:
            PluginError: ``name`` is not a non-empty string, or is already registered.
        """
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"a {self.kind} was registered under {name!r}, not a non-empty name",
                f"register each {self.kind} under a non-empty string",
            )
        if name in self._items:
            raise PluginError(
                f"two plugins register a {self.kind} named {name!r}",
                f"rename one or uninstall one of them ({self.hint})",
            )
        self._items[name] = obj

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
        return PluginError(f"unknown {self.kind} {name!r}", f"{guess}known: {known} ({self.hint})")

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
