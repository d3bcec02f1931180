"""The main job: base model -> method decides -> core prunes and measures -> retrain -> submission.

:func:`run` is the table of contents of one run: plan it (:func:`plan_run`), then call the named
stages of :data:`~pruning_suite.run.stages.STAGES` over one typed
:class:`~pruning_suite.run.stages.RunState`, telling the observer plugins as it goes. The method
only decides in the pruning stage; the core applies, verifies, measures, retrains, evaluates and
writes the submission (DESIGN.md, "The pipeline of one run").
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from ..contract.codedigest import method_code_sha256
from ..contract.plugins import PluginRegistry, load_registry
from ..protocol.spec import load_protocol
from ..record import identity
from ..record.compare import check_protocol_folder
from ..record.safefiles import exclusive
from .basecache import work_dir
from .config import (
    SMOKE_MAX_BATCHES,
    SMOKE_MAX_EPOCHS,
    RunConfig,
    RunResult,
    cpu_threads_in_force,
    resolve_device,
)
from .observe import RunObserver, notify, observing
from .plan import (
    RunPlan,
    check_seed,
    prepare_output,
    resolve_method,
    retraining_recipe,
    submission_path,
)
from .prune import PruningOutcome, check_granularity, prune_model, target_reference
from .ranks import launched, stages_for
from .regime import scratch_plan
from .stages import RunState

__all__ = [
    "SMOKE_MAX_BATCHES",
    "SMOKE_MAX_EPOCHS",
    "PruningOutcome",
    "RunConfig",
    "RunObserver",
    "RunPlan",
    "RunResult",
    "check_granularity",
    "plan_run",
    "prune_model",
    "resolve_device",
    "run",
    "scratch_plan",
    "target_reference",
]


def run(
    config: RunConfig,
    registry: PluginRegistry | None = None,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run one method on one protocol target with one seed and write its submission.

    Args:
        config: What to run.
        registry: The installed plugins; None = :func:`load_registry`.
        observer: A progress observer (any plugin object implementing observer hooks),
            registered on the registry's manager for the run.

    One process at a time runs a run id (``flock`` on ``<cache>/work/run-<run id>.lock``; a
    second says once which pid it waits for); a killed run's rerun resumes base training and
    retraining from their last complete epoch. Under ``torchrun --nproc-per-node N`` the N
    processes make one run, training data-parallel; rank 0 alone writes (:mod:`~.ranks`), and
    every rank returns the submission.

    Raises:
        PruningSuiteError: Any bad input (unknown protocol/plugin/target, missing dataset, a
            crashing plugin, an unwritable output folder). Nothing is written on error.
    """
    registry = registry or load_registry()
    with launched(config.device) as (device, world):
        leads = world is None or world.is_main
        state = _start(config, registry, device, leads)
        with (
            _lock(state) if leads else nullcontext(),
            observing(registry.manager, observer),
            cpu_threads_in_force(state.device),
        ):
            notify(registry.manager, "on_run_start", run=_run_info(state))
            for stage in stages_for(world):
                stage(state)
            notify(
                registry.manager,
                "on_run_end",
                submission=state.submission.model_dump(mode="json"),
                path=str(state.out_path),
            )
    return RunResult(state.submission, state.out_path, state.kept_stored, state.replaced)


def _lock(state: RunState) -> AbstractContextManager[None]:
    """The run id's lock, ``<cache>/work/run-<run id>.lock``."""
    return exclusive(work_dir() / f"run-{state.plan.run_id}.lock", f"run {state.plan.run_id}")


def _start(
    config: RunConfig, registry: PluginRegistry, device: torch.device, leads: bool
) -> RunState:
    """Plan the run and prove the output writable, before any work (only the process that
    writes: one on its own, or torchrun's rank 0)."""
    plan = plan_run(config, registry)
    if not leads:
        return RunState(config, plan, registry, device, submission_path(config.out, plan))
    out_path = prepare_output(config.out, plan)
    check_protocol_folder(out_path.parents[1], plan.protocol)
    return RunState(config, plan, registry, device, out_path)


def _run_info(state: RunState) -> dict[str, Any]:
    plan = state.plan
    return {
        "run_id": plan.run_id,
        "protocol": plan.protocol.id,
        "protocol_version": plan.protocol.version,
        "method": plan.method.name,
        "target": plan.target.id,
        "seed": state.config.seed,
        "device": str(state.device),
    }


def plan_run(config: RunConfig, registry: PluginRegistry | None = None) -> RunPlan:
    """Resolve and check ``config`` as :func:`run` does before any work (studies plan with it).

    Raises:
        PruningSuiteError: Unknown protocol, target or plugin; a method at another granularity
            than the protocol; a negative seed; an invalid retraining override, or one given to
            a method that trains from scratch (it trains its SX budget's recipe).
    """
    protocol = load_protocol(config.protocol)
    target = protocol.target(config.target)
    method, regime = resolve_method(config, registry or load_registry())
    check_granularity(method, protocol)
    check_seed(config.seed)
    retraining = retraining_recipe(protocol, config)
    code = method_code_sha256(method)
    ident = identity.RunIdentity(
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        method=method.name,
        method_version=method.version,
        method_config=method.config.model_dump(mode="json"),
        target=target.id,
        seed=config.seed,
        smoke=config.smoke,
        retraining_override=config.retraining_override,
        reinit="orthp" if config.orthp else None,
        method_code=code,
    )
    run_id = identity.run_id(ident)
    return RunPlan(protocol, target, method, retraining, run_id, regime, code)
