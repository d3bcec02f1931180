"""One observer path: the run calls the observer hooks on the registry's plugin manager.

Observers are plugins (:mod:`pruning_suite.contract.hookspecs`, "observers"): the run calls
``manager.hook.on_stage(...)``, ``on_phase_start``, ``on_epoch_end``, ``on_run_start`` and
``on_run_end``, and every plugin implementing one hears it. :class:`RunObserver` is the typed
adapter for code that wants methods instead of hooks (the CLI's progress display subclasses it);
the run registers it on the manager for its duration (:func:`observing`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pluggy

from ..contract.hookspecs import hookimpl
from ..engine.train import EpochObserver, EpochStats

__all__ = ["RunObserver", "epoch_notifier", "muted", "notify", "observing"]


class RunObserver:
    """Receives progress events; the CLI's progress display subclasses it. Default: silent.

    An instance is a plugin: its ``on_*`` hook implementations turn the hook calls into calls of
    :meth:`stage`, :meth:`phase_start` and :meth:`epoch_end`, which subclasses override.
    """

    def stage(self, name: str) -> None:
        """A named stage of the run starts (``"data"``, ``"base model"``, ``"pruning"``...)."""

    def phase_start(self, phase: str, epochs: int) -> None:
        """A training phase of ``epochs`` epochs starts."""

    def epoch_end(self, phase: str, row: EpochStats) -> None:
        """An epoch of ``phase`` ended."""

    def batches(self, phase: str, done: int, total: int) -> None:
        """``done`` of the running epoch's ``total`` batches of ``phase`` are trained."""

    @hookimpl
    def on_stage(self, stage: str) -> None:
        """Hook ``on_stage``: calls :meth:`stage`."""
        self.stage(stage)

    @hookimpl
    def on_phase_start(self, phase: str, epochs: int) -> None:
        """Hook ``on_phase_start``: calls :meth:`phase_start`."""
        self.phase_start(phase, epochs)

    @hookimpl
    def on_batches(self, phase: str, done: int, total: int) -> None:
        """Hook ``on_batches``: calls :meth:`batches`."""
        self.batches(phase, done, total)

    @hookimpl
    def on_epoch_end(self, phase: str, row: dict[str, Any]) -> None:
        """Hook ``on_epoch_end``: calls :meth:`epoch_end` with the row as :class:`EpochStats`."""
        self.epoch_end(phase, EpochStats(**row))


@contextmanager
def observing(manager: pluggy.PluginManager, observer: object | None) -> Iterator[None]:
    """Register ``observer`` as a plugin on ``manager`` for the duration of the block.

    Registered last, it is called first (pluggy calls the newest implementation first), so a
    raising third-party observer cannot starve the progress display.

    Args:
        manager: The run's plugin manager (``PluginRegistry.manager``).
        observer: A plugin object (a :class:`RunObserver`, say); None or one registered
            already: nothing to do.
    """
    if observer is None or manager.is_registered(observer):
        yield
        return
    manager.register(observer, name=f"run-observer-{id(observer)}")
    try:
        yield
    finally:
        manager.unregister(observer)


_muted = False


@contextmanager
def muted() -> Iterator[None]:
    """No observer hears anything in the block (the ranks of a torchrun run but rank 0)."""
    global _muted
    before, _muted = _muted, True
    try:
        yield
    finally:
        _muted = before


def notify(manager: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call the observer hook ``hook_name`` on every plugin: ``manager.hook.<hook_name>(**kwargs)``.

    An observer is someone else's plugin: one that raises is reported as a ``RuntimeWarning``
    naming it, and the run goes on.
    """
    if _muted:
        return
    hook = getattr(manager.hook, hook_name)
    try:
        hook(**kwargs)
    except Exception as err:
        warnings.warn(
            f"observer plugin {_culprit(hook, err)!r} raised {type(err).__name__} in "
            f"{hook_name}: {err}; the run goes on",
            RuntimeWarning,
            stacklevel=2,
        )


def epoch_notifier(manager: pluggy.PluginManager, phase: str) -> EpochObserver:
    """A training loop's ``on_epoch`` callback that calls the ``on_epoch_end`` hook after each
    epoch, and ``on_batches`` within one."""

    def on_epoch(row: EpochStats) -> None:
        notify(manager, "on_epoch_end", phase=phase, row=row.as_dict())

    def on_batches(done: int, total: int) -> None:
        notify(manager, "on_batches", phase=phase, done=done, total=total)

    return EpochObserver(on_epoch, on_batches)


def _culprit(hook: Any, err: BaseException) -> str:
    """The name of the plugin whose hook implementation raised ``err`` (innermost frame wins)."""
    codes = {}
    for impl in hook.get_hookimpls():
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    name, frame = "?", err.__traceback__
    while frame is not None:
        name = codes.get(frame.tb_frame.f_code, name)
        frame = frame.tb_next
    return name
