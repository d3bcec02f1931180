"""Studies: the paper's findings rerun as sets of runs, and the tables and figures built from them.

Wang et al. (arXiv 2301.05219) explain two "mysteries" and recommend a calibration:

- ``lr-sweep`` (M1): one method, the same epochs, several retraining LR schedules (optionally the
  first LR stage extended by N epochs, the paper's "+N epochs" rows; optionally with and without
  OrthP): a larger LR converges faster within a fixed budget because pruning damages trainability.
- ``scratch`` (M2): the method at its protocol (S4.2) against the same architecture trained from
  scratch under the SX-A and SX-B budgets.
- ``cross-recipe``: methods A and B each retrained with FT_A and FT_B; A is better only if it wins
  under both recipes, otherwise the recipe and the method interact.

A study expands into :class:`~pruning_suite.run.runner.RunConfig` jobs. Runs already in the results
folder (same run id, a valid file) are skipped, so a study resumes where it stopped. Jobs are
handed to an :class:`Executor`; :class:`LocalExecutor` runs them here, one after the other. The
seam is the executor: anything with ``run(jobs) -> results`` (e.g. a distributed engine's
adapter) can take its place. Tables and figures are built only from the submissions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import PruningSuiteError
from ..protocol.schedule import format_schedule, parse_schedule
from ..protocol.spec import ComparisonProtocol, TrainRecipe, load_protocol
from ..record.jsonio import write_text_atomic
from ..record.submission import Submission

__all__ = [
    "Arm",
    "Executor",
    "LocalExecutor",
    "StudyResult",
    "cross_recipe_arms",
    "Claim",
    "claims",
    "claims_text",
    "cross_recipe_verdict",
    "extend_first_stage",
    "lr_sweep_arms",
    "planned_path",
    "run_study",
    "scratch_arms",
    "scratch_claims",
    "write_study_report",
]


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a label and the runs (one per seed) that make it.

    Attributes:
        label: Shown in tables and figures, e.g. ``"LR 0.001 +OrthP"``.
        jobs: One run configuration per seed.
    """

    label: str
    jobs: tuple  # tuple[RunConfig, ...]; typed loosely so this module imports without torch


class Executor(Protocol):
    """Runs jobs and returns their submissions, in order. The seam for a distributed engine."""

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        """Run every job (a ``RunConfig``); call ``on_done(index, submission)`` as each finishes."""
        ...


class LocalExecutor:
    """Runs jobs on this machine: one after the other (``workers=1``), or ``workers`` at a time in
    separate processes.

    Two trainings on one small CPU slow each other many times over, so the default is one at a
    time; on a GPU, or a CPU with cores to spare, small models run well side by side. Each worker
    process gets ``torch.get_num_threads() // workers`` threads (at least 1). Results come back in
    job order; ``on_done`` is called as each run finishes.

    When a run fails, runs not yet handed to a worker never start, the runs already started
    finish and keep their files, and the first failure is raised. On Ctrl-C nothing more starts
    and the workers stop their runs (a run writes its file only when it completes).

    Args:
        workers: Runs at a time (>= 1).

    Raises:
        ValueError: ``workers`` < 1.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def run(self, jobs: Sequence, on_done: Callable[[int, Submission], None]) -> list[Submission]:
        if self.workers == 1 or len(jobs) <= 1:
            from ..run.runner import run

            done = []
            for index, job in enumerate(jobs):
                submission = run(job).submission
                on_done(index, submission)
                done.append(submission)
            return done
        return self._run_in_processes(jobs, on_done)

    def _run_in_processes(
        self, jobs: Sequence, on_done: Callable[[int, Submission], None]
    ) -> list[Submission]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        import torch

        threads = max(1, torch.get_num_threads() // self.workers)
        results: dict[int, Submission] = {}
        failure: PruningSuiteError | None = None
        context = multiprocessing.get_context("spawn")  # fork and torch's threads do not mix
        pool = ProcessPoolExecutor(self.workers, mp_context=context)
        pending = {pool.submit(_run_job, job, threads): i for i, job in enumerate(jobs)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = pending.pop(future)
                    if future.cancelled():
                        continue
                    outcome = future.result()
                    if isinstance(outcome, PruningSuiteError):
                        failure = failure or outcome
                        for other in pending:
                            other.cancel()  # runs not yet handed to a worker never start
                        continue
                    results[index] = outcome
                    on_done(index, outcome)
        except BaseException:  # Ctrl-C: start nothing more; the workers stop their own runs
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if failure is not None:
            raise failure
        return [results[i] for i in range(len(jobs))]


def _run_job(job, threads: int) -> Submission | PruningSuiteError:
    """One job in a worker process: its submission, or its error (returned, not raised, so the
    parent decides what else runs)."""
    import torch

    from ..run.runner import run

    torch.set_num_threads(threads)
    try:
        return run(job).submission
    except PruningSuiteError as err:
        return err


@dataclass(frozen=True)
class StudyResult:
    """The submissions of every arm, in the arms' order (run now or found on disk)."""

    arms: dict[str, list[Submission]]
    ran: int
    skipped: int


def planned_path(job) -> Path:
    """Where ``job`` (a ``RunConfig``) writes its submission, computed without running it.

    Raises:
        PruningSuiteError: The job cannot run (:func:`pruning_suite.run.runner.plan_run`).
    """
    from ..run.runner import plan_run

    plan = plan_run(job)
    return Path(job.out) / plan.protocol.id / plan.method.name / f"{plan.run_id}.json"


def run_study(
    arms: Sequence[Arm],
    executor: Executor | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> StudyResult:
    """Run every job of every arm that has no valid submission yet; gather all submissions.

    A file that exists but fails validation is run again (and replaced), with a ``redo`` line
    saying which check it failed.

    Args:
        arms: The study's arms.
        executor: Who runs the jobs (default :class:`LocalExecutor`).
        progress: Called with one line per job (skipped, started, finished).

    Returns:
        Every arm's submissions in seed order, and how many runs ran or were skipped.

    Raises:
        PruningSuiteError: Before any run: two arms with one label or one run, a job that cannot
            run (unknown plugin or target, a method at another granularity than the protocol, a
            scratch baseline with a retraining override), or a file on disk made under another
            content of the protocol. After: a run failed (its error); runs finished before it are
            kept on disk.
    """
    from ..validate.core import check_file

    executor = executor or LocalExecutor()
    labels = [arm.label for arm in arms]
    if len(set(labels)) != len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise PruningSuiteError(f"two arms of the study are both {twice!r}", "give each arm once")
    paths = {}
    for arm in arms:
        for job in arm.jobs:
            path = planned_path(job)  # checks the job as a run does, before any run
            if path in paths:
                raise PruningSuiteError(
                    f"arms {paths[path]!r} and {arm.label!r} are the same run ({path.name})",
                    "give each arm another method, recipe or seed",
                )
            paths[path] = arm.label
    found: dict[tuple[int, int], Submission] = {}
    todo: list[tuple[int, int]] = []
    for a, arm in enumerate(arms):
        for j, job in enumerate(arm.jobs):
            path = planned_path(job)
            protocol = load_protocol(job.protocol)
            result = check_file(path, [protocol]) if path.is_file() else None
            if result is not None and result.submission is not None:
                recorded = result.submission.protocol.content_hash
                if recorded != protocol.content_hash:
                    raise PruningSuiteError(
                        f"{path} ran under another content of protocol {protocol.id}@"
                        f"{protocol.version} (content hash {recorded[:12]}..., now "
                        f"{protocol.content_hash[:12]}...)",
                        "a changed protocol needs a new version (or id), so its runs get new "
                        "files; or move the old runs out of --out",
                    )
            if result is not None and result.ok and result.submission is not None:
                found[(a, j)] = result.submission
                progress(f"skip  {arm.label} seed {job.seed}: {path} exists")
                continue
            if result is not None:  # on disk but refused: say why before it is replaced
                first = next((p for p in result.problems if p.severity == "error"), None)
                why = f"{first.rule or first.where}: {first.message}" if first else "unreadable"
                progress(f"redo  {arm.label} seed {job.seed}: {path} is not valid ({why})")
            todo.append((a, j))
    jobs = [arms[a].jobs[j] for a, j in todo]

    def on_done(index: int, submission: Submission) -> None:
        a, j = todo[index]
        found[(a, j)] = submission
        progress(
            f"done  {arms[a].label} seed {submission.seed}: top-1 {submission.final.test_top1:.2f}"
        )

    for index, (a, j) in enumerate(todo):
        progress(f"queue {arms[a].label} seed {arms[a].jobs[j].seed} ({index + 1}/{len(todo)})")
    executor.run(jobs, on_done)
    return StudyResult(
        {arm.label: [found[(a, j)] for j in range(len(arm.jobs))] for a, arm in enumerate(arms)},
        ran=len(todo),
        skipped=sum(len(arm.jobs) for arm in arms) - len(todo),
    )


# ----------------------------------------------------------------------------------- expansion


def _schedule_label(schedule: str) -> str:
    return f"LR {parse_schedule(schedule)[0][1]:g}"


def _check_fits(schedule: str, epochs: int) -> None:
    """Refuse a schedule with a stage that starts at or after the last of ``epochs`` epochs."""
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
    try:
        stages = parse_schedule(schedule)
    except ValueError as err:
        raise PruningSuiteError(
            f"bad LR schedule {schedule!r}: {err}",
            "write it as 'epoch:lr,...' from epoch 0, e.g. '0:0.01,30:0.001'",
        ) from err
    return own if stages == parse_schedule(own) else format_schedule(stages)


def extend_first_stage(recipe: TrainRecipe, schedule: str, extra_epochs: int) -> tuple[str, int]:
    """``schedule`` with its first LR stage ``extra_epochs`` longer, and the new total epochs.

    The paper's "+N epochs" rows (arXiv 2301.05219, M1): later milestones move by ``extra_epochs``.
    """
    stages = parse_schedule(schedule)
    moved = [stages[0]] + [(start + extra_epochs, lr) for start, lr in stages[1:]]
    return ",".join(f"{start}:{lr:g}" for start, lr in moved), recipe.epochs + extra_epochs


def lr_sweep_arms(
    base_job,
    schedules: Sequence[str],
    seeds: Sequence[int],
    extend: int = 0,
    orthp: str = "off",
) -> list[Arm]:
    """The arms of an LR sweep (M1): one per schedule (x OrthP off/on), plus "+N epochs" ones.

    Args:
        base_job: A ``RunConfig`` naming protocol, target, plugin, output folder and smoke.
        schedules: Retraining LR schedules ``"epoch:lr,..."``; the protocol's own one gives a
            closed-division arm, the others are open division (disclosed).
        seeds: Seeds of every arm.
        extend: When > 0, each schedule that is not the protocol's also gets an arm with its
            first stage extended by this many epochs.
        orthp: ``"off"``, ``"on"`` or ``"both"``.

    Raises:
        PruningSuiteError: No schedule, or ``orthp`` is not one of the three.
    """
    if not schedules:
        raise PruningSuiteError(
            "an LR sweep needs at least one schedule", "pass --schedule 0:0.01,30:0.001"
        )
    if orthp not in ("off", "on", "both"):
        raise PruningSuiteError(f"--orthp {orthp!r}", "use off, on or both")
    protocol = load_protocol(base_job.protocol)
    recipe = protocol.retraining
    variants = {"off": [False], "on": [True], "both": [False, True]}[orthp]
    schedules = [canonical_schedule(schedule, recipe.lr_schedule) for schedule in schedules]
    repeated = sorted({x for x in schedules if schedules.count(x) > 1})
    if repeated:
        raise PruningSuiteError(
            f"--schedule {repeated[0]} is given more than once (schedules are compared after "
            "parsing, so 1e-3 and 0.001 are the same)",
            "give each LR schedule once",
        )
    for schedule in schedules:
        _check_fits(schedule, recipe.epochs)
    first_lrs = [_schedule_label(schedule) for schedule in schedules]
    arms = []
    for schedule in schedules:
        plans = [(schedule, recipe.epochs, "")]
        if extend and schedule != recipe.lr_schedule:
            longer, epochs = extend_first_stage(recipe, schedule, extend)
            plans.append((longer, epochs, f" +{extend} epochs"))
        for sched, epochs, suffix in plans:
            for with_orthp in variants:
                name = _schedule_label(sched)
                if first_lrs.count(name) > 1:  # two schedules start at one LR: name them whole
                    name = f"LR {sched}"
                label = name + suffix + (" +OrthP" if with_orthp else "")
                override = {} if sched == recipe.lr_schedule else {"retraining_lr_schedule": sched}
                if epochs != recipe.epochs:
                    override["retraining_epochs"] = epochs
                jobs = tuple(
                    replace(base_job, seed=seed, orthp=with_orthp, **override) for seed in seeds
                )
                arms.append(Arm(label, jobs))
    return arms


def scratch_arms(base_job, seeds: Sequence[int]) -> list[Arm]:
    """Pruning (the protocol's recipe, S4.2) against scratch training at SX-A and SX-B (M2)."""
    method = base_job.plugin
    arms = [Arm(f"{method} (pruned, retrained)", tuple(replace(base_job, seed=s) for s in seeds))]
    for setup in ("SX-A", "SX-B"):
        config = {"arch_from": method, "setup": setup}
        jobs = tuple(
            replace(base_job, plugin="scratch", method_config=config, seed=s) for s in seeds
        )
        arms.append(Arm(f"scratch {setup}", jobs))
    return arms


def cross_recipe_arms(
    base_job,
    methods: tuple[str, str],
    recipes: tuple[tuple[str, int | None], tuple[str, int | None]],
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
    recipes = tuple(
        (canonical_schedule(schedule, own.lr_schedule), own.epochs if epochs is None else epochs)
        for schedule, epochs in recipes
    )
    for schedule, epochs in recipes:
        _check_fits(schedule, epochs)
    if recipes[0] == recipes[1]:
        raise PruningSuiteError(
            f"recipe A and recipe B are the same ({recipes[0][0]}, {recipes[0][1]} epochs)",
            "give --recipe-b (or --epochs-b) another LR schedule or length than recipe A",
        )
    arms = []
    for method in methods:
        for name, (schedule, epochs) in zip(("FT_A", "FT_B"), recipes, strict=True):
            override = {}
            if schedule != protocol.retraining.lr_schedule:
                override["retraining_lr_schedule"] = schedule
            if epochs is not None and epochs != protocol.retraining.epochs:
                override["retraining_epochs"] = epochs
            jobs = tuple(replace(base_job, plugin=method, seed=s, **override) for s in seeds)
            arms.append(Arm(f"{method}+{name}", jobs))
    return arms


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
        noise[ft] = _noise(top1[a], top1[b])
    shown = ", ".join(
        f"{ft}: {a} - {b} = {d:+.2f} pp" + (f" (seed std {noise[ft]:.2f})" if noise[ft] else "")
        for ft, d in wins.items()
    )
    if all(d > noise[ft] for ft, d in wins.items()):
        return f"consistent: {a} is better under both recipes ({shown})"
    if all(-d > noise[ft] for ft, d in wins.items()):
        return f"consistent: {b} is better under both recipes ({shown})"
    if any(d > noise[ft] for ft, d in wins.items()) and any(
        -d > noise[ft] for ft, d in wins.items()
    ):
        return f"interaction: the ranking depends on the retraining recipe ({shown})"
    return f"no consistent winner: a tie within seed noise under at least one recipe ({shown})"


def scratch_claims(result: StudyResult) -> list[Claim]:
    """M2 (arXiv 2301.05219, Sec. 4): "inheriting the pretrained weights has no value", judged per
    scratch budget: it holds when scratch training reaches the pruned-and-retrained accuracy
    (is not below it by more than the larger seed std), and does not hold when pruning wins.

    Returns:
        One claim per scratch arm (``"scratch SX-A"``, ``"scratch SX-B"``); none with smoke runs
        or one seed per arm.
    """
    if _unjudgeable(result):
        return []
    labels = list(result.arms)
    pruned = result.arms[labels[0]]
    out = []
    for label in labels[1:]:
        scratch = result.arms[label]
        gap = _mean(pruned) - _mean(scratch)
        noise = _noise([s.final.test_top1 for s in pruned], [s.final.test_top1 for s in scratch])
        budget = scratch[0].scratch
        epochs = f", {budget.epochs} epochs" if budget is not None else ""
        out.append(
            Claim(
                f"inheriting the base model's weights has no value at {label.split()[-1]} (M2)",
                "does not hold" if gap > noise else "holds",
                f"Final test top-1 {labels[0]} {_mean(pruned):.2f} vs {label}{epochs} "
                f"{_mean(scratch):.2f} ({gap:+.2f} pp for pruning, seed std {noise:.2f}).",
            )
        )
    return out


# ----------------------------------------------------------------------------------- reports


def _mean_std(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} ± n/a"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def _arm_rows(result: StudyResult) -> list[list[str]]:
    """One row per arm; a column whose runs disagree says so (``mixed: a, b``)."""

    def same(subs: Sequence[Submission], value: Callable[[Submission], str]) -> str:
        values = list(dict.fromkeys(value(s) for s in subs))
        return values[0] if len(values) == 1 else "mixed: " + ", ".join(values)

    def certified(sub: Submission) -> str:
        cert = sub.certification
        return f"{cert.setup} ({cert.division})" if cert and cert.setup else "uncertified"

    def schedule(sub: Submission) -> str:
        recipe = sub.retraining_recipe
        return f"`{recipe.lr_schedule}`" if recipe is not None else "n/a"

    return [
        [
            label,
            str(len(subs)),
            _mean_std([s.final.test_top1 for s in subs]),
            _mean_std([s.final.pruned_test_top1_before_retraining for s in subs]),
            same(subs, lambda s: f"{s.pruning.sparsity * 100:.2f}"),
            same(subs, lambda s: str(len(s.retraining))),
            same(subs, schedule),
            same(subs, certified),
        ]
        for label, subs in result.arms.items()
    ]


ARM_HEADERS = [
    "arm",
    "runs",
    "final test top-1 (%)",
    "before retraining (%)",
    "sparsity (%)",
    "epochs",
    "LR schedule",
    "certified",
]


STUDY_INTROS = {
    "lr-sweep": "One method retrained under several LR schedules in the same epochs (M1). TA is "
    "the mean accuracy over the first LR stage of retraining.",
    "scratch": "The pruned-and-retrained model against the same small architecture trained from "
    "scratch under the SX-A (same epochs) and SX-B (same FLOPs) budgets (M2).",
    "cross-recipe": "Two methods, each retrained with both recipes (A+FT_A, A+FT_B, B+FT_A, "
    "B+FT_B): a method is better only if it wins under both.",
}


def write_study_report(
    study: str,
    result: StudyResult,
    protocol: ComparisonProtocol,
    out_dir: Path,
    methods: tuple[str, str] | None = None,
    command: str | None = None,
) -> list[Path]:
    """A study's page (``README.md``) and figures, every number and sentence computed from the
    submissions the study found or ran (Wang et al., arXiv 2301.05219).

    Every page has the arm table (final-epoch test top-1, mean ± sample std over seeds, sparsity,
    retraining epochs, certification), test accuracy vs epoch with the LR stages shaded, a verdict
    section and the run ids. ``lr-sweep`` adds the TA table, mean JSV vs epoch and the claims of
    :func:`claims_text`; ``scratch`` the M2 verdicts of :func:`scratch_claims`; ``cross-recipe``
    the verdict of :func:`cross_recipe_verdict`.

    Args:
        study: ``"lr-sweep"``, ``"scratch"`` or ``"cross-recipe"``.
        result: The study's arms and submissions.
        protocol: The protocol the runs used.
        out_dir: Folder for the page and the figures (PNG and PDF); created.
        methods: ``cross-recipe`` only: the two methods ``(A, B)``.
        command: The command line that regenerates the page, shown on it.

    Returns:
        The files written, the page first.

    Raises:
        FigureError: An arm has no retraining epochs to plot.
        OutputError: The folder cannot be written.
    """
    from tabulate import tabulate

    from ..report.figures import plot_accuracy_vs_epoch, plot_jsv_vs_epoch, ta_table

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arms = result.arms
    everything = [s for subs in arms.values() for s in subs]
    accuracy = {
        label: [[(row.epoch, row.test_top1) for row in s.retraining] for s in subs]
        for label, subs in arms.items()
    }
    stages = {
        label: list(parse_schedule(subs[0].retraining_recipe.lr_schedule))
        for label, subs in arms.items()
        if subs[0].retraining_recipe is not None
    }
    dense_top1 = statistics.fmean(s.base_model.dense_test_top1 for s in everything)
    xlabel = "epoch (of retraining; scratch arms: of training)" if study == "scratch" else None
    written = plot_accuracy_vs_epoch(
        accuracy,
        stages,
        out_dir / "accuracy-vs-epoch",
        reference=dense_top1,
        xlabel=xlabel or "retraining epoch",
    )
    lines = [
        f"# {study} on {protocol.id}@{protocol.version}, target {everything[0].target.id}",
        "",
        f"{STUDY_INTROS[study]} Generated by `pruning-suite study {study}` from the submissions "
        "listed at the end (Wang et al., arXiv 2301.05219). Final-epoch test top-1, mean ± sample "
        f"std over seeds; the dense base model reaches {dense_top1:.2f}.",
        "",
    ]
    mixed = {
        label: sorted({s.base_model.checkpoint_sha256[:12] for s in subs})
        for label, subs in arms.items()
        if len({s.base_model.checkpoint_sha256 for s in subs}) > 1
    }
    bases = {s.base_model.checkpoint_sha256 for s in everything if not s.scratch}
    if mixed or len(bases) > 1:
        lines += [
            "**Warning: these runs do not share one base model** ("
            + (
                "; ".join(f"{label}: {', '.join(shas)}" for label, shas in mixed.items())
                or f"{len(bases)} base models across the arms"
            )
            + "), so their differences are not the method's or the recipe's alone (R-BASE-3). "
            "Rerun them from one base model.",
            "",
        ]
    if any(s.smoke for s in everything):
        lines += [
            f"**Smoke runs**: at most {_smoke_budget()}, a base model trained on the same "
            "budget, and accuracies measured on a small subset of the test split. They check that "
            "the study runs; their numbers are not results.",
            "",
        ]
    if command:
        lines += [
            "Regenerate this page (runs only what is missing from the results folder):",
            "",
            "```sh",
            command,
            "```",
            "",
        ]
    lines += [
        tabulate(_arm_rows(result), ARM_HEADERS, tablefmt="github", disable_numparse=True),
        "",
    ]
    jsv = {}
    if study == "lr-sweep":
        ta_rows = [
            {
                "arm": label,
                "ta_val": s.trainability.ta_val,
                "ta_test": s.trainability.ta_test,
                "final_test_top1": s.final.test_top1,
            }
            for label, subs in arms.items()
            for s in subs
            if s.trainability is not None
        ]
        lines += [ta_table(ta_rows) if ta_rows else "(no trainability recorded)", ""]
        jsv = {
            label: [[(r.epoch, r.mean) for r in s.trainability.jsv] for s in subs]
            for label, subs in arms.items()
            if all(s.trainability and s.trainability.jsv for s in subs)
        }
    lines.append("![test accuracy vs epoch](accuracy-vs-epoch.png)")
    if jsv:
        dense_jsv = [
            s.trainability.jsv_dense.mean
            for s in everything
            if s.trainability and s.trainability.jsv_dense
        ]
        written += plot_jsv_vs_epoch(
            jsv, out_dir / "jsv-vs-epoch", statistics.fmean(dense_jsv) if dense_jsv else None
        )
        lines += ["", "![mean JSV vs epoch](jsv-vs-epoch.png)"]
    lines += ["", "## Do the paper's claims hold here?", "", *_verdicts(study, result, methods), ""]
    lines += ["## Runs", ""] + [
        f"- {label}: " + ", ".join(f"`{s.run_id}` (seed {s.seed})" for s in subs)
        for label, subs in arms.items()
    ]
    page = out_dir / "README.md"
    write_text_atomic(page, "\n".join(lines) + "\n")
    return [page, *written]


def _smoke_budget() -> str:
    from ..data.datasets import SMOKE_EVAL_EXAMPLES
    from ..run.runner import SMOKE_MAX_BATCHES, SMOKE_MAX_EPOCHS

    return (
        f"{SMOKE_MAX_EPOCHS} epochs of {SMOKE_MAX_BATCHES} batches per phase, test on "
        f"{SMOKE_EVAL_EXAMPLES} images"
    )


def _verdicts(study: str, result: StudyResult, methods: tuple[str, str] | None) -> list[str]:
    if study == "lr-sweep":
        return claims_text(result)
    why_not = _unjudgeable(result)
    if why_not:
        return [why_not]
    if study == "cross-recipe":
        return [f"Verdict: {cross_recipe_verdict(result, methods)}."]
    return _claims_paragraph(result, scratch_claims(result))


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, judged on a sweep's runs.

    Attributes:
        claim: The claim, e.g. ``"a larger retraining LR wins within the same epochs (M1)"``.
        verdict: ``"holds"``, ``"does not hold"`` or ``"cannot be judged"``.
        evidence: The measured numbers behind the verdict, one sentence.
    """

    claim: str
    verdict: str
    evidence: str


def claims(result: StudyResult) -> list[Claim]:
    """The paper's claims an LR sweep can test, each judged from the runs' own numbers.

    A difference counts only when it exceeds the larger sample standard deviation over seeds of
    the two arms compared (so a tie within seed noise is reported as one). Judged here, from
    Wang et al. (arXiv 2301.05219, Sec. 4-5): M1 (the larger retraining LR gives the higher final
    accuracy in the same epochs); its explanation (the larger LR converges faster: mean test
    top-1 over the epochs both arms spend in their first LR stage); OrthP restores trainability
    (higher TA than the same schedule without it; TA compares only under one schedule); OrthP
    narrows the gap between the LRs; the mean JSV collapses after pruning and recovers.

    Returns:
        The claims, or none when the sweep has smoke runs, one seed per arm or a single LR.
    """
    plain = {
        label: subs
        for label, subs in result.arms.items()
        if "+OrthP" not in label and "epochs" not in label
    }
    if not plain:  # --orthp on: every arm has OrthP; compare the LRs among those
        plain = {label: subs for label, subs in result.arms.items() if "epochs" not in label}
    lrs = {label: subs[0].retraining[0].lr for label, subs in plain.items()}
    if _unjudgeable(result) or len(lrs) < 2:
        return []
    high, low = max(lrs, key=lrs.get), min(lrs, key=lrs.get)
    out = [_m1(plain[high], plain[low], high, low), _converges_faster(plain, high, low)]
    with_orthp = {
        label.removesuffix(" +OrthP"): subs
        for label, subs in result.arms.items()
        if label.endswith("+OrthP") and label not in plain
    }
    if with_orthp:
        out.append(_orthp_trainability(plain, with_orthp))
    if high in with_orthp and low in with_orthp:
        out.append(_orthp_narrows(plain, with_orthp, high, low))
    jsv = _jsv_collapse(plain, with_orthp)
    return out + ([jsv] if jsv else [])


def claims_text(result: StudyResult) -> list[str]:
    """The claims section: one paragraph of verdicts, then the evidence as a list (markdown)."""
    why_not = _unjudgeable(result)
    if why_not:
        return [why_not]
    judged = claims(result)
    if not judged:
        return [
            "This sweep has a single retraining LR (or its arms differ only in length): none of "
            "the paper's claims can be tested."
        ]
    return _claims_paragraph(result, judged)


def _claims_paragraph(result: StudyResult, judged: Sequence[Claim]) -> list[str]:
    """One paragraph of verdicts (a sentence per verdict), then the evidence as a list."""
    sentences = [f"Measured on {_runs_phrase(result)}."]
    for verdict in ("holds", "does not hold", "cannot be judged"):
        names = [c.claim for c in judged if c.verdict == verdict]
        if names:
            sentences.append(f"{verdict[0].upper()}{verdict[1:]} here: " + "; ".join(names) + ".")
    sentences.append(
        "A difference counts only when it exceeds the seeds' sample standard deviation; the "
        "evidence follows."
    )
    return [
        " ".join(sentences),
        "",
        *(f"- {c.claim[0].upper()}{c.claim[1:]}: {c.verdict}. {c.evidence}" for c in judged),
    ]


def _unjudgeable(result: StudyResult) -> str:
    if any(s.smoke for subs in result.arms.values() for s in subs):
        return (
            "Smoke runs (reduced budget): not a result; rerun without --smoke to test the claims."
        )
    seeds = min(len(subs) for subs in result.arms.values())
    if seeds < 2:
        return f"{seeds} seed per arm: too few to judge a difference; run with --seeds 3."
    return ""


def _runs_phrase(result: StudyResult) -> str:
    seeds = sorted({len(subs) for subs in result.arms.values()})
    count = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    return f"{len(result.arms)} arms, {count} seeds each"


def _num(value: float) -> str:
    """Two decimals, or three significant digits below 0.1 (a collapsed JSV of 0.00741)."""
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _noise(*groups: Sequence[float]) -> float:
    stds = [statistics.stdev(g) for g in groups if len(g) > 1]
    return max(stds) if stds else 0.0


def _m1(high_subs, low_subs, high: str, low: str) -> Claim:
    gap = _mean(high_subs) - _mean(low_subs)
    noise = _noise(*([s.final.test_top1 for s in subs] for subs in (high_subs, low_subs)))
    if gap > noise:
        verdict, why = "holds", "beyond"
    else:
        verdict = "does not hold"
        why = "reversed beyond" if -gap > noise else "within"
    return Claim(
        "a larger retraining LR wins within the same epochs (M1)",
        verdict,
        f"Final test top-1 {high} {_mean(high_subs):.2f} vs {low} {_mean(low_subs):.2f} "
        f"({gap:+.2f} pp, {why} the seed std {noise:.2f}).",
    )


def _first_stage_length(sub: Submission) -> int:
    rows = sub.retraining
    return next((i for i, row in enumerate(rows) if row.lr != rows[0].lr), len(rows))


def _early_top1(sub: Submission, epochs: int) -> float:
    return statistics.fmean(row.test_top1 for row in sub.retraining[:epochs])


def _converges_faster(plain, high: str, low: str) -> Claim:
    window = min(_first_stage_length(s) for s in (*plain[high], *plain[low]))
    early = {label: [_early_top1(s, window) for s in plain[label]] for label in (high, low)}
    gap = statistics.fmean(early[high]) - statistics.fmean(early[low])
    noise = _noise(early[high], early[low])
    return Claim(
        "the larger LR converges faster (M1's explanation)",
        "holds" if gap > noise else "does not hold",
        f"Mean test top-1 over retraining epochs 0-{window - 1}: {high} "
        f"{statistics.fmean(early[high]):.2f} vs {low} {statistics.fmean(early[low]):.2f} "
        f"({gap:+.2f} pp, seed std {noise:.2f}).",
    )


def _ta(subs: Sequence[Submission]) -> list[float]:
    return [s.trainability.ta_test for s in subs if s.trainability is not None]


def _orthp_trainability(plain, with_orthp) -> Claim:
    parts, ups, judged = [], [], 0
    for label in plain:
        without, with_ = _ta(plain[label]), _ta(with_orthp.get(label, []))
        if not without or not with_:
            continue
        judged += 1
        gap = statistics.fmean(with_) - statistics.fmean(without)
        ups.append(gap > _noise(without, with_))
        parts.append(
            f"{label}: {statistics.fmean(with_):.2f} with OrthP vs "
            f"{statistics.fmean(without):.2f} without ({gap:+.2f} pp)"
        )
    name = "OrthP restores trainability (higher TA under the same LR schedule)"
    if not judged:
        return Claim(name, "cannot be judged", "No arm recorded TA both with and without OrthP.")
    return Claim(
        name, "holds" if all(ups) else "does not hold", "TA test " + "; ".join(parts) + "."
    )


def _orthp_narrows(plain, with_orthp, high: str, low: str) -> Claim:
    gap = _mean(plain[high]) - _mean(plain[low])
    gap_orthp = _mean(with_orthp[high]) - _mean(with_orthp[low])
    noise = _noise(*([s.final.test_top1 for s in plain[label]] for label in (high, low)))
    evidence = (
        f"Final top-1 gap {high} - {low}: {gap_orthp:+.2f} pp with OrthP, {gap:+.2f} pp without."
    )
    name = "OrthP narrows the gap between the LRs"
    if abs(gap) <= noise:
        return Claim(
            name,
            "cannot be judged",
            evidence + f" Without OrthP the LRs already tie within the seed std {noise:.2f}.",
        )
    return Claim(name, "holds" if abs(gap_orthp) < abs(gap) else "does not hold", evidence)


def _jsv_collapse(plain, with_orthp) -> Claim | None:
    parts, verdicts = [], []
    for label, subs in plain.items():
        rows = [s.trainability for s in subs if s.trainability and s.trainability.jsv]
        rows = [t for t in rows if t.jsv_dense and t.jsv[0].epoch == -1]
        if not rows:
            continue
        dense = statistics.fmean(t.jsv_dense.mean for t in rows)
        after = statistics.fmean(t.jsv[0].mean for t in rows)
        final = statistics.fmean(t.jsv[-1].mean for t in rows)
        verdicts.append(after < dense and final > after)
        parts.append(
            f"{label}: dense {_num(dense)}, right after pruning {_num(after)}, "
            f"after retraining {_num(final)}"
        )
    if not parts:
        return None
    orthp = [
        t.jsv[0].mean
        for subs in with_orthp.values()
        for s in subs
        if (t := s.trainability) and t.jsv and t.jsv[0].epoch == -1
    ]
    tail = f"; with OrthP right after pruning {_num(statistics.fmean(orthp))}" if orthp else ""
    return Claim(
        "the mean JSV collapses after pruning and recovers in retraining",
        "holds" if all(verdicts) else "does not hold",
        "Mean JSV " + "; ".join(parts) + tail + ".",
    )


def _mean(subs: Sequence[Submission]) -> float:
    return statistics.fmean(s.final.test_top1 for s in subs)


def _std(subs: Sequence[Submission]) -> float:
    values = [s.final.test_top1 for s in subs]
    return statistics.stdev(values) if len(values) > 1 else float("nan")
