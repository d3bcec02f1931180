"""``cross-recipe``: methods A and B each retrained with recipes FT_A and FT_B. A is better only if
it wins under both recipes; otherwise the recipe and the method interact (Wang et al., arXiv
2301.05219, Sec. 6)."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import PruningSuiteError
from ..protocol.catalogue import load_protocol
from .base import Arm, Study, StudyResult, canonical_schedule, check_fits, parse_schedule_option
from .verdicts import seed_noise, unjudgeable

if TYPE_CHECKING:
    from ..protocol.comparison import ComparisonProtocol
    from ..run.config import RunConfig

__all__ = ["CrossRecipe", "cross_recipe_arms", "cross_recipe_verdict"]

Recipe = tuple[str, int | None]  # (LR schedule, epochs or None for the protocol's)


def cross_recipe_arms(
    base_job: Any,
    methods: tuple[str, str],
    recipes: tuple[Recipe, Recipe],
    seeds: Sequence[int],
) -> list[Arm]:
    """A+FT_A, A+FT_B, B+FT_A, B+FT_B: each method with each recipe (LR schedule, epochs or None).

    Raises:
        PruningSuiteError: The two methods, or the two recipes, are the same.
    """
    protocol = load_protocol(base_job.protocol)
    if methods[0] == methods[1]:
        raise PruningSuiteError(
            f"--plugins names {methods[0]!r} twice", "compare two methods: --plugins A,B"
        )
    own = protocol.retraining
    chosen = _checked_recipes(recipes, own.lr_schedule, own.epochs)
    arms = []
    for method in methods:
        for name, (schedule, epochs) in zip(("FT_A", "FT_B"), chosen, strict=True):
            override: dict[str, Any] = {}
            if schedule != own.lr_schedule:
                override["retraining_lr_schedule"] = schedule
            if epochs != own.epochs:
                override["retraining_epochs"] = epochs
            jobs = tuple(replace(base_job, plugin=method, seed=s, **override) for s in seeds)
            arms.append(Arm(f"{method}+{name}", jobs))
    return arms


def _checked_recipes(
    recipes: tuple[Recipe, Recipe], own_schedule: str, own_epochs: int
) -> list[tuple[str, int]]:
    """The recipes with the protocol's epochs filled in, refusing two equal ones."""
    chosen = [
        (canonical_schedule(schedule, own_schedule), own_epochs if epochs is None else epochs)
        for schedule, epochs in recipes
    ]
    for schedule, epochs in chosen:
        check_fits(schedule, epochs)
    if chosen[0] == chosen[1]:
        raise PruningSuiteError(
            f"recipe A and recipe B are the same ({chosen[0][0]}, {chosen[0][1]} epochs)",
            "give --recipe-b (or --epochs-b) another LR schedule or length than recipe A",
        )
    return chosen


def cross_recipe_verdict(result: StudyResult, methods: tuple[str, str]) -> str:
    """Whether method A beats B under both retraining recipes (arXiv 2301.05219, Sec. 6).

    Under each recipe the difference of the mean final test top-1 counts only when it exceeds the
    larger sample std over seeds of the two arms (0 with one seed per arm).

    Returns:
        ``"consistent: A is better under both recipes (...)"`` (or B), ``"interaction: the ranking
        depends on the retraining recipe (...)"`` when each wins under one, else ``"no consistent
        winner: ..."`` (a tie within seed noise under at least one recipe), with the differences.
    """
    a, b = methods
    wins, noise = {}, {}
    for ft in ("FT_A", "FT_B"):
        top1 = {m: [s.final.test_top1 for s in result.arms[f"{m}+{ft}"]] for m in methods}
        wins[ft] = statistics.fmean(top1[a]) - statistics.fmean(top1[b])
        noise[ft] = seed_noise(top1[a], top1[b])
    shown = ", ".join(
        f"{ft}: {a} - {b} = {d:+.2f} pp" + (f" (seed std {noise[ft]:.2f})" if noise[ft] else "")
        for ft, d in wins.items()
    )
    a_wins = [d > noise[ft] for ft, d in wins.items()]
    b_wins = [-d > noise[ft] for ft, d in wins.items()]
    if all(a_wins):
        return f"consistent: {a} is better under both recipes ({shown})"
    if all(b_wins):
        return f"consistent: {b} is better under both recipes ({shown})"
    if any(a_wins) and any(b_wins):
        return f"interaction: the ranking depends on the retraining recipe ({shown})"
    return f"no consistent winner: a tie within seed noise under at least one recipe ({shown})"


class CrossRecipe(Study):
    """Two methods, each retrained with both recipes; the verdict says whether one wins under both."""

    name = "cross-recipe"
    help = "A+FT_A, A+FT_B, B+FT_A, B+FT_B with the verdict"
    intro = (
        "Two methods, each retrained with both recipes (A+FT_A, A+FT_B, B+FT_A, "
        "B+FT_B): a method is better only if it wins under both."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--plugins A,B``, ``--recipe-a``/``--recipe-b`` and ``--epochs-a``/``--epochs-b``."""
        parser.add_argument("--plugins", required=True, help="two methods, e.g. l1norm,random")
        parser.add_argument("--recipe-a", required=True, help="FT_A's LR schedule")
        parser.add_argument("--recipe-b", required=True, help="FT_B's LR schedule")
        parser.add_argument("--epochs-a", type=int, help="FT_A's epochs (default: the protocol's)")
        parser.add_argument("--epochs-b", type=int, help="FT_B's epochs (default: the protocol's)")

    def check(self, args: argparse.Namespace) -> None:
        """Refuse a recipe whose LR schedule does not parse."""
        for schedule in (args.recipe_a, args.recipe_b):
            parse_schedule_option(schedule)

    def base_plugin(self, args: argparse.Namespace) -> str:
        """Method A."""
        return args.plugins.split(",")[0]

    def arms(
        self,
        args: argparse.Namespace,
        base: RunConfig,
        protocol: ComparisonProtocol,
        seeds: Sequence[int],
    ) -> list[Arm]:
        """A+FT_A, A+FT_B, B+FT_A, B+FT_B.

        Raises:
            PruningSuiteError: ``--plugins`` does not name two methods, or as
                :func:`cross_recipe_arms`.
        """
        recipes = ((args.recipe_a, args.epochs_a), (args.recipe_b, args.epochs_b))
        return cross_recipe_arms(base, self.methods(args), recipes, seeds)

    def methods(self, args: argparse.Namespace) -> tuple[str, str]:
        """The two methods of ``--plugins A,B``.

        Raises:
            PruningSuiteError: It names another number of methods.
        """
        methods = tuple(args.plugins.split(","))
        if len(methods) != 2:
            raise PruningSuiteError(
                f"--plugins {args.plugins!r} names {len(methods)} methods",
                "name two: --plugins A,B",
            )
        return methods  # type: ignore[return-value]

    def summary(self, result: StudyResult, args: argparse.Namespace) -> str | None:
        """The verdict, unless the runs are smoke runs or have one seed per arm."""
        if args.smoke or min(map(len, result.arms.values())) < 2:
            return None
        return cross_recipe_verdict(result, self.methods(args))

    def verdicts(self, result: StudyResult, args: argparse.Namespace) -> list[str]:
        """The verdict sentence, or why the runs cannot be judged."""
        why_not = unjudgeable(result)
        if why_not:
            return [why_not]
        return [f"Verdict: {cross_recipe_verdict(result, self.methods(args))}."]
