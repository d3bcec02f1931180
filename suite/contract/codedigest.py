"""The digest of a pruning method's code, recorded in its submissions and part of their run id.

A method's declared version is what its author says; the digest is what ran. Editing an
installed plugin without bumping its version used to give the same run id and overwrite the
earlier results (issue 14); with the digest in the run id, results of other code are other runs,
and ``pruning-suite audit`` names a file whose digest the installed code does not reproduce.

The digest covers the source of the module that defines the method class and of every module of
the same package that it imports, directly or through another such module (a built-in plugin's
private helpers, a third-party package's internals); the suite's own modules and other
distributions are not part of it. The same walk digests the suite's own base-training code
(:mod:`pruning_suite.run.cachekey`). This module does not import torch.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from types import ModuleType
from typing import Any

__all__ = [
    "code_sha256",
    "method_code_sha256",
    "method_modules",
    "modules_sha256",
    "reached_modules",
]


def method_modules(cls: type) -> list[ModuleType]:
    """The modules whose source makes up ``cls``'s code, sorted by name.

    The module defining ``cls`` and, transitively, every module of its package (the name up to
    the module's last dot; the module alone when it is top-level) that one of them refers to by
    a global name: an imported module, or a class or function imported from one.
    """
    home = sys.modules.get(cls.__module__)
    if home is None:
        return []
    return reached_modules([home], home.__name__.rpartition(".")[0])


def reached_modules(starts: list[ModuleType], package: str) -> list[ModuleType]:
    """``starts`` and, transitively, every module inside ``package`` (a dotted name; none when
    empty) that one of them refers to by a global name, sorted by name."""
    found: dict[str, ModuleType] = {}
    pending = list(starts)
    while pending:
        module = pending.pop()
        if module.__name__ in found:
            continue
        found[module.__name__] = module
        pending += [m for m in _referenced(module) if _inside(m.__name__, package)]
    return [found[name] for name in sorted(found)]


def code_sha256(cls: type) -> str | None:
    """:func:`modules_sha256` of :func:`method_modules`: the digest of a method class's code."""
    return modules_sha256(method_modules(cls))


def modules_sha256(modules: list[ModuleType]) -> str | None:
    """sha256 (64 hex digits) over the name and source bytes of each module in order, or None
    when there is none or a module's source cannot be read (a class defined in an interactive
    session or by ``exec``, a module installed without its ``.py``)."""
    if not modules:
        return None
    digest = hashlib.sha256()
    for module in modules:
        try:
            path = inspect.getsourcefile(module)
        except TypeError:
            return None
        if path is None:
            return None
        try:
            with open(path, "rb") as handle:
                source = handle.read()
        except OSError:
            return None
        digest.update(f"{module.__name__}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()


def method_code_sha256(method: Any) -> str | None:
    """The code digest of a method instance: :func:`code_sha256` of its class alone, or, when
    it delegates to other methods (``method.code_delegates()``, e.g. the scratch baseline's
    ``arch_from``), sha256 over its own and each delegate's digest in order. None when any of
    them is unknown (no source)."""
    own = code_sha256(type(method))
    delegates = tuple(method.code_delegates())
    if own is None or not delegates:
        return own
    parts = [own] + [code_sha256(cls) for cls in delegates]
    if any(part is None for part in parts):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()  # type: ignore[arg-type]


def _referenced(module: ModuleType) -> list[ModuleType]:
    modules: list[ModuleType] = []
    for value in list(vars(module).values()):
        if isinstance(value, ModuleType):
            modules.append(value)
            continue
        name = getattr(value, "__module__", None)
        if isinstance(name, str) and name in sys.modules:
            modules.append(sys.modules[name])
    return modules


def _inside(name: str, package: str) -> bool:
    return name.startswith(package + ".") if package else False
