"""The :class:`Study` type, its arms and results, and the LR-schedule helpers studies share.

A study reruns one of the paper's findings (Wang et al., arXiv 2301.05219) as a set of runs: it
declares its command-line options, expands them into :class:`Arm` objects (one run per seed),
judges the runs (its verdicts) and adds its own sections to the study page. Studies are registered
by name through the ``register_studies`` hook; ``pruning-suite study NAME`` is built from that
registry. This module imports neither torch nor the runner.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PruningSuiteError
from ..protocol.schedule import format_schedule, parse_schedule
from ..record.submission import Submission

if TYPE_CHECKING:
    from ..protocol.comparison import ComparisonProtocol
    from ..protocol.sections import TrainRecipe
    from ..run.config import RunConfig

__all__ = [
    "Arm",
    "Study",
    "StudyResult",
    "canonical_schedule",
    "check_fits",
    "extend_first_stage",
    "parse_schedule_option",
]


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a label and the runs (one per seed) that make it.

    Attributes:
        label: Shown in tables and figures, e.g. ``"LR 0.001 +OrthP"``.
        jobs: One run configuration (``RunConfig``) per seed.
    """

    label: str
    jobs: tuple[RunConfig, ...]


@dataclass(frozen=True)
class StudyResult:
    """The submissions of every arm, in the arms' order (run now or found on disk).

    Attributes:
        arms: Arm label -> its submissions, in seed order.
        ran: Runs run by this study.
        skipped: Runs found valid on disk and not run again.
    """

    arms: dict[str, list[Submission]]
    ran: int
    skipped: int


class Study:
    """A study: one of the paper's findings as a set of runs, its verdicts and its page.

    Subclass it, set the class attributes and override :meth:`arms` (at least), then register an
    instance from a plugin::

        @hookimpl
        def register_studies():
            return {"my-study": MyStudy()}

    ``pruning-suite study NAME`` gets the options every study has (``--protocol``, ``--target``,
    ``--seeds``, ``--out``, ``--report``, ``--device``, ``--data-dir``, ``--smoke``, ``--jobs``),
    those of :meth:`add_arguments`, and ``--plugin METHOD`` (required; read by
    :meth:`base_plugin`) unless :meth:`add_arguments` adds its own or the study overrides
    :meth:`base_plugin` (as ``cross-recipe`` does, with ``--plugins A,B``); the runs are skipped when a valid file exists, and the
    page (``README.md`` in ``--report``) has the arm table, accuracy vs epoch, the sections of
    :meth:`page_tables` and :meth:`page_figures`, and :meth:`verdicts`.

    Attributes:
        name: The subcommand, ``pruning-suite study NAME``; the page's title starts with it.
        help: One line for ``pruning-suite study --help``.
        intro: The page's opening sentences: what the study compares.
        epoch_axis: The x-axis label of the accuracy-vs-epoch figure.
    """

    name: str = ""
    help: str = ""
    intro: str = ""
    epoch_axis: str = "retraining epoch"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the study's own command-line options to its subcommand's ``parser``."""

    def check(self, args: argparse.Namespace) -> None:
        """Refuse bad options before any run is spent.

        Raises:
            PruningSuiteError: An option no run could use.
        """

    def base_plugin(self, args: argparse.Namespace) -> str:
        """The method of the study's base run configuration (default: ``--plugin``, which the
        study's subcommand gets unless the study overrides this method or adds it itself).

        Raises:
            PruningSuiteError: There is no ``--plugin`` value (a study that replaced the option
                without overriding this method).
        """
        plugin = getattr(args, "plugin", None)
        if not plugin:
            raise PruningSuiteError(
                f"study {self.name!r} has no --plugin value for its base run",
                "the study's author overrides Study.base_plugin(args) to name the method from "
                "its own options, or keeps the --plugin option",
            )
        return str(plugin)

    def arms(
        self,
        args: argparse.Namespace,
        base: RunConfig,
        protocol: ComparisonProtocol,
        seeds: Sequence[int],
    ) -> list[Arm]:
        """Expand the options into arms.

        Args:
            args: The parsed command line.
            base: A run configuration with the protocol, target, method, device, data folder,
                results folder and smoke flag of the command line; vary it with
                ``dataclasses.replace``.
            protocol: The loaded protocol.
            seeds: The seeds of every arm.

        Returns:
            The arms, in the order of the page's table.

        Raises:
            PruningSuiteError: Options that give no valid study.
        """
        raise NotImplementedError(f"study {self.name!r} does not define its arms")

    def summary(self, result: StudyResult, args: argparse.Namespace) -> str | None:
        """A line printed after the runs (None: nothing)."""
        return None

    def verdicts(self, result: StudyResult, args: argparse.Namespace) -> list[str]:
        """The page's verdict section, as markdown lines (default: none)."""
        return ["This study states no verdict."]

    def page_tables(self, result: StudyResult) -> list[str]:
        """Markdown lines shown after the arm table (default: none)."""
        return []

    def page_figures(self, result: StudyResult, out_dir: Path) -> tuple[list[str], list[Path]]:
        """Figures after the accuracy-vs-epoch one: the page's markdown lines and the files written."""
        return [], []


def parse_schedule_option(schedule: str) -> list[tuple[int, float]]:
    """The stages of an LR schedule given on the command line.

    Raises:
        PruningSuiteError: ``schedule`` is not ``epoch:lr,...`` from epoch 0.
    """
    try:
        return parse_schedule(schedule)
    except ValueError as err:
        raise PruningSuiteError(
            f"bad LR schedule {schedule!r}: {err}",
            "write it as 'epoch:lr,...' from epoch 0, e.g. '0:0.01,30:0.001'",
        ) from err


def check_fits(schedule: str, epochs: int) -> None:
    """Refuse a schedule with a stage that starts at or after the last of ``epochs`` epochs.

    Raises:
        PruningSuiteError: A stage would never start.
    """
    late = [start for start, _ in parse_schedule(schedule) if start >= epochs]
    if late:
        raise PruningSuiteError(
            f"LR schedule {schedule} has a stage at epoch {late[0]}, but retraining runs "
            f"{epochs} epochs (0..{epochs - 1}): that stage would never start",
            "end every stage inside the retraining, or give the recipe more epochs",
        )


def canonical_schedule(schedule: str, own: str) -> str:
    """``schedule`` in one spelling (``0:0.01,10:0.001``); the protocol's own string ``own``
    when they are the same schedule, so the protocol's recipe is never mistaken for an override.

    Raises:
        PruningSuiteError: ``schedule`` is not ``epoch:lr,...`` from epoch 0.
    """
    stages = parse_schedule_option(schedule)
    return own if stages == parse_schedule(own) else format_schedule(stages)


def extend_first_stage(recipe: TrainRecipe, schedule: str, extra_epochs: int) -> tuple[str, int]:
    """``schedule`` with its first LR stage ``extra_epochs`` longer, and the new total epochs.

    The paper's "+N epochs" rows (arXiv 2301.05219, M1): later milestones move by ``extra_epochs``.
    """
    stages = parse_schedule(schedule)
    moved = [stages[0]] + [(start + extra_epochs, lr) for start, lr in stages[1:]]
    return ",".join(f"{start}:{lr:g}" for start, lr in moved), recipe.epochs + extra_epochs
