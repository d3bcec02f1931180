"""The plan of one run: what a :class:`~pruning_suite.run.config.RunConfig` resolves to, checked
before any data or model is touched (``runner.plan_run`` composes these checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..contract.method import PruningMethod
from ..contract.plugins import PluginRegistry
from ..errors import OutputError, PluginError, ProtocolError, PruningSuiteError
from ..protocol.spec import SEED_RANGE, ComparisonProtocol, PruningTarget, TrainRecipe
from .config import Regime, RunConfig

__all__ = [
    "RunPlan",
    "check_seed",
    "prepare_output",
    "resolve_method",
    "retraining_recipe",
    "submission_path",
]

SCRATCH_METHOD = "scratch"
"""The method name a scratch-regime run is recorded under (the submission format's)."""


@dataclass(frozen=True)
class RunPlan:
    """What a run config resolves to, checked before any data or model is touched.

    Attributes:
        protocol: The protocol.
        target: The pruning target.
        method: The method, configured.
        retraining: The retraining recipe with the run's overrides (open division); a scratch
            regime replaces it with its SX budget's recipe once the pruned FLOPs are measured.
        run_id: The run id, so the submission's file name.
        regime: ``"prune"`` (retrain the pruned model) or ``"scratch"`` (train the pruned
            architecture from scratch).
        code_sha256: The digest of the method's code, part of the run id.
    """

    protocol: ComparisonProtocol
    target: PruningTarget
    method: PruningMethod
    retraining: TrainRecipe
    run_id: str
    regime: Regime = "prune"
    code_sha256: str | None = None


def resolve_method(config: RunConfig, registry: PluginRegistry) -> tuple[PruningMethod, Regime]:
    """The run's method and training regime.

    The regime is the config's, else the method's (``"scratch"`` for a method with
    ``from_scratch``, as ``--plugin scratch``). A filter method run under the scratch regime is
    recorded as the scratch baseline of its architecture, ``scratch`` with ``arch_from`` = the
    method and ``setup`` = ``config.scratch_setup``, so both spellings land on the same
    submission (and run id).

    Raises:
        PluginError: The method is unknown or its config invalid; ``regime="prune"`` with a
            scratch method; a scratch regime with method options (the architecture comes from
            the method's defaults) or with a retraining override (it trains its SX budget's
            recipe).
    """
    method = registry.method(config.plugin, dict(config.method_config))
    native: Regime = "scratch" if method.from_scratch else "prune"
    regime = config.regime or native
    if regime == "prune" and native == "scratch":
        raise PluginError(
            f"plugin {method.name!r} trains from scratch; it cannot run under regime 'prune'",
            f"name the method whose architecture it trains instead (--plugin "
            f"{getattr(method.config, 'arch_from', 'l1norm')})",
        )
    if regime == "scratch" and native == "prune":
        method = _scratch_of(method, config, registry)
    if regime == "scratch" and config.retraining_override:
        raise PluginError(
            f"{method.name} trains from scratch with its SX budget's recipe, so it cannot take "
            f"the retraining override {config.retraining_override}",
            "drop --retrain-epochs / --retrain-lr-schedule; a cross-recipe study compares "
            "pruning methods, 'study scratch' compares against scratch training (M2)",
        )
    return method, regime


def _scratch_of(
    method: PruningMethod, config: RunConfig, registry: PluginRegistry
) -> PruningMethod:
    """The scratch baseline of ``method``'s pruned architecture under ``config.scratch_setup``."""
    if config.method_config:
        raise PluginError(
            f"the scratch regime trains {method.name}'s architecture at its default config, "
            f"not {dict(config.method_config)}",
            "drop --config under the scratch regime",
        )
    options = {"arch_from": method.name, "setup": config.scratch_setup}
    return registry.method(SCRATCH_METHOD, options)


def check_seed(seed: int) -> None:
    """Refuse a seed outside ``[0, 2**63)`` (or not an integer).

    Raises:
        PruningSuiteError: The seed is out of range.
    """
    low, high = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed < high:
        raise PruningSuiteError(
            f"seed {seed!r} is not an integer in [0, 2**63)", "use e.g. --seed 0"
        )


def retraining_recipe(protocol: ComparisonProtocol, config: RunConfig) -> TrainRecipe:
    """The protocol's retraining recipe with the run's overrides (open division) applied.

    Raises:
        ProtocolError: An override is not a valid recipe value, or an LR schedule of one's own
            has a stage that would never start.
    """
    override = config.retraining_override
    if not override:
        return protocol.retraining
    try:
        recipe = protocol.retraining.model_validate(
            {**protocol.retraining.model_dump(), **override}
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ProtocolError(
            f"retraining override {override} is not a valid recipe: {problems}",
            "give --retrain-epochs a positive integer and --retrain-lr-schedule as 'epoch:lr,...' "
            "starting at epoch 0, e.g. '0:0.01,30:0.001'",
        ) from err
    late = [start for start, _ in recipe.stages if start >= recipe.epochs]
    if late and "lr_schedule" in override:  # a schedule of one's own must fit
        raise ProtocolError(
            f"retraining LR schedule {recipe.lr_schedule} has a stage at epoch {late[0]}, but "
            f"retraining runs {recipe.epochs} epochs: that stage would never start",
            "end every stage inside the retraining (--retrain-lr-schedule), or give it more "
            "epochs (--retrain-epochs)",
        )
    return recipe


def submission_path(out: Path, plan: RunPlan) -> Path:
    """``out/<protocol>/<method>/<run-id>.json``, where the run's submission is written."""
    return Path(out) / plan.protocol.id / plan.method.name / f"{plan.run_id}.json"


def prepare_output(out: Path, plan: RunPlan) -> Path:
    """Create the output folder and prove it writable before any training is spent.

    Returns:
        ``out/<protocol>/<method>/<run-id>.json``.

    Raises:
        OutputError: The path is taken by a folder, or the folder cannot be written.
    """
    target = submission_path(out, plan)
    folder = target.parent
    if target.exists() and not target.is_file():
        raise OutputError(
            f"{target} exists and is not a file; the submission cannot be written there",
            "remove it or pass another --out",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{plan.run_id}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(
            f"cannot write to output folder {folder}: {err.strerror}",
            "pass a writable folder with --out DIR",
        ) from err
    return target
