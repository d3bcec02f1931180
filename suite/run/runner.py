"""The main job: base model -> method decides -> core prunes and measures -> retrain -> submission.

:func:`run` is the table of contents of one run: plan it (:func:`plan_run`), then call the named
stages of :data:`~pruning_suite.run.stages.STAGES` over one typed
:class:`~pruning_suite.run.stages.RunState`, telling the observer plugins as it goes. The method
only decides in the pruning stage; the core applies, verifies, measures, retrains, evaluates and
writes the submission (DESIGN.md, "The pipeline of one run").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..contract.method import PruningMethod
from ..contract.plugins import PluginRegistry, load_registry
from ..protocol.spec import ComparisonProtocol, PruningTarget, canonical_json, load_protocol
from .config import (
    SMOKE_MAX_BATCHES,
    SMOKE_MAX_EPOCHS,
    RunConfig,
    RunResult,
    resolve_device,
)
from .observe import RunObserver, notify, observing
from .plan import RunPlan, check_seed, prepare_output, resolve_regime, retraining_recipe
from .prune import PruningOutcome, check_granularity, prune_model, target_reference
from .regime import scratch_plan
from .stages import STAGES, RunState

__all__ = [
    "SMOKE_MAX_BATCHES",
    "SMOKE_MAX_EPOCHS",
    "PruningOutcome",
    "RunConfig",
    "RunObserver",
    "RunPlan",
    "RunResult",
    "check_granularity",
    "compute_run_id",
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

    Raises:
        PruningSuiteError: Any bad input (unknown protocol/plugin/target, missing dataset, a
            crashing plugin, an unwritable output folder). Nothing is written on error.
    """
    registry = registry or load_registry()
    state = _start(config, registry)
    with observing(registry.manager, observer):
        notify(registry.manager, "on_run_start", run=_run_info(state))
        for stage in STAGES:
            stage(state)
        notify(
            registry.manager,
            "on_run_end",
            submission=state.submission.model_dump(mode="json"),
            path=str(state.out_path),
        )
    return RunResult(state.submission, state.out_path)


def _start(config: RunConfig, registry: PluginRegistry) -> RunState:
    """Plan the run, pick the device and prove the output writable, before any work."""
    plan = plan_run(config, registry)
    device = resolve_device(config.device)
    out_path = prepare_output(config.out, plan)
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
    method = (registry or load_registry()).method(config.plugin, dict(config.method_config))
    check_granularity(method, protocol)
    check_seed(config.seed)
    regime = resolve_regime(config, method)
    retraining = retraining_recipe(protocol, config)
    # --- the run id: computed by compute_run_id below until record/identity.py owns it ---------
    run_id = compute_run_id(
        protocol,
        method,
        target,
        config.seed,
        config.smoke,
        config.retraining_override,
        "orthp" if config.orthp else None,
    )
    return RunPlan(protocol, target, method, retraining, run_id, regime)


# --- the run id (to be replaced by pruning_suite.record.identity.run_id; leave it here) ----------


def compute_run_id(
    protocol: ComparisonProtocol,
    method: PruningMethod,
    target: PruningTarget,
    seed: int,
    smoke: bool,
    retraining_override: Mapping[str, Any] | None = None,
    reinit: str | None = None,
) -> str:
    """Short hash (12 hex digits) of protocol id+version, method name+version+config, target, seed,
    smoke, and the retraining override when there is one.

    Re-running the same configuration lands on the same file.
    """
    key: dict[str, Any] = {
        "protocol": [protocol.id, protocol.version],
        "method": [method.name, method.version, method.config.model_dump(mode="json")],
        "target": target.id,
        "seed": seed,
        "smoke": smoke,
    }
    if retraining_override:
        key["retraining_override"] = dict(retraining_override)
    if reinit:
        key["reinit"] = reinit
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:12]
