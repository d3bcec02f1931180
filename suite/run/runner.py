"""The main job: base model -> method decides -> core prunes and measures -> retrain -> submission.

This module is the table of contents of one run; each step is a named function. The method only
scores (and optionally allocates ratios); the core applies, verifies, measures, retrains,
evaluates and writes the submission (DESIGN.md, "The pipeline of one run").
"""

from __future__ import annotations

import copy
import hashlib
import math
import numbers
import platform
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from .. import __version__
from ..contract.method import PruningContext, PruningMethod
from ..contract.plugins import PluginRegistry, load_registry
from ..data.datasets import SMOKE_EVAL_EXAMPLES, DataSplits, Split, load_dataset
from ..engine.checkpoint import layer_widths, save_pruned
from ..engine.masks import WeightMasks, select_weight_masks
from ..engine.measure import measure, measure_effective, sparsity
from ..engine.models import build_model
from ..engine.pruning import apply_structured_pruning, find_prunable_layers, select_removals
from ..engine.train import EpochStats, evaluate, train
from ..engine.trainability import (
    JSV_BATCH_SIZE,
    JSV_BATCHES,
    jsv_enabled_by_default,
    jsv_stats,
    orthp_,
    trainability_accuracy,
)
from ..errors import (
    OutputError,
    PluginError,
    ProtocolError,
    PruningSuiteError,
    VerificationError,
)
from ..protocol.spec import (
    SEED_RANGE,
    ComparisonProtocol,
    PruningTarget,
    TrainRecipe,
    canonical_json,
    load_protocol,
)
from ..record.jsonio import write_json_atomic
from ..record.submission import Submission
from ..rules.setups import certify, scratch_epochs, scratch_recipe
from .basecache import file_sha256, obtain_base_model, reinitialize

__all__ = [
    "RunConfig",
    "RunObserver",
    "PruningOutcome",
    "RunPlan",
    "RunResult",
    "check_granularity",
    "compute_run_id",
    "plan_run",
    "prune_model",
    "resolve_device",
    "run",
    "target_reference",
]

SMOKE_MAX_BATCHES = 20
"""Batches per epoch in ``--smoke`` runs (which are never rankable)."""
SMOKE_MAX_EPOCHS = 2


@dataclass(frozen=True)
class RunConfig:
    """Everything that selects one run (the CLI's ``run`` flags).

    Attributes:
        plugin: Method name (entry-point name).
        protocol: Protocol id or ``.toml`` path; None = the zero-setup default.
        target: Target id; None = the protocol's default target.
        seed: Seeds pruning randomness and retraining.
        method_config: Options for the method's ``Config`` model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None = CUDA when present, else CPU.
        data_dir: Where datasets are looked for first.
        out: Root of the results database; files land in ``out/<protocol>/<method>/<run-id>.json``.
        smoke: Reduced budget (at most 2 epochs of 20 batches per phase), never rankable.
        save_model: Also write the retrained pruned model to ``<run-id>.pt`` beside the
            submission (:func:`pruning_suite.engine.checkpoint.save_pruned`; weight masks in its meta).
        retraining_epochs: Retrain for this many epochs instead of the protocol's (open
            division: the run is certified at most S2).
        retraining_lr_schedule: Retrain with this LR schedule (``"epoch:lr,..."``) instead of the
            protocol's (open division: at most S3.1).
        orthp: Re-initialize every Conv2d/Linear weight with OrthP right after pruning (arXiv 2301.05219;
            recorded as ``method.reinit = "orthp"``, part of the run id).
        jsv: Measure the mean JSV after pruning and after every retraining epoch; None = when
            the model is small enough (:func:`pruning_suite.engine.trainability.jsv_enabled_by_default`).
    """

    plugin: str
    protocol: str | None = None
    target: str | None = None
    seed: int = 0
    method_config: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    data_dir: Path | None = None
    out: Path = Path("submissions")
    smoke: bool = False
    save_model: bool = False
    retraining_epochs: int | None = None
    retraining_lr_schedule: str | None = None
    jsv: bool | None = None
    orthp: bool = False

    @property
    def retraining_override(self) -> dict[str, Any] | None:
        """The recipe fields this run changes (open division), or None."""
        override = {
            key: value
            for key, value in (
                ("epochs", self.retraining_epochs),
                ("lr_schedule", self.retraining_lr_schedule),
            )
            if value is not None
        }
        return override or None


@dataclass(frozen=True)
class RunResult:
    """A finished run: the submission and where it was written."""

    submission: Submission
    path: Path


class RunObserver:
    """Receives progress events; the CLI's progress display subclasses it. Default: silent."""

    def stage(self, name: str) -> None:
        """A named step starts (``"data"``, ``"base model"``, ``"pruning"``, ``"retraining"``...)."""

    def phase_start(self, phase: str, epochs: int) -> None:
        """A training phase of ``epochs`` epochs starts."""

    def epoch_end(self, phase: str, row: EpochStats) -> None:
        """An epoch of ``phase`` ended."""


@dataclass(frozen=True)
class RunPlan:
    """What a run config resolves to, checked before any data or model is touched.

    Attributes:
        protocol: The protocol.
        target: The pruning target.
        method: The method, configured.
        retraining: The retraining recipe with the run's overrides (open division).
        run_id: The run id (:func:`compute_run_id`), so the submission's file name.
    """

    protocol: ComparisonProtocol
    target: PruningTarget
    method: PruningMethod
    retraining: TrainRecipe
    run_id: str


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
    _check_seed(config.seed)
    if method.from_scratch and config.retraining_override:
        raise PluginError(
            f"{method.name} trains from scratch with its SX budget's recipe, so it cannot take "
            f"the retraining override {config.retraining_override}",
            "drop --retrain-epochs / --retrain-lr-schedule; a cross-recipe study compares "
            "pruning methods, 'study scratch' compares against scratch training (M2)",
        )
    retraining = _retraining_recipe(protocol, config)
    run_id = compute_run_id(
        protocol,
        method,
        target,
        config.seed,
        config.smoke,
        config.retraining_override,
        "orthp" if config.orthp else None,
    )
    return RunPlan(protocol, target, method, retraining, run_id)


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


def resolve_device(requested: str | None) -> torch.device:
    """The device to run on: ``requested``, or CUDA when available, else the CPU.

    Raises:
        PruningSuiteError: ``requested`` names CUDA but none is available, or is not a device.
    """
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise PruningSuiteError(
            f"unknown device {requested!r}", "use 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if device.type not in ("cpu", "cuda"):
        raise PruningSuiteError(
            f"device type {device.type!r} is not supported", "use 'cpu', 'cuda' or 'cuda:N'"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PruningSuiteError(
            f"device {requested!r} asked for, but CUDA is not available here", "use --device cpu"
        )
    return device


def run(
    config: RunConfig,
    registry: PluginRegistry | None = None,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run one method on one protocol target with one seed and write its submission.

    Raises:
        PruningSuiteError: Any bad input (unknown protocol/plugin/target, missing dataset, a
            crashing plugin, an unwritable output folder). Nothing is written on error.
    """
    observer = observer or RunObserver()
    started = time.perf_counter()
    registry = registry or load_registry()
    plan = plan_run(config, registry)
    protocol, target, method, retraining = plan.protocol, plan.target, plan.method, plan.retraining
    run_id = plan.run_id
    device = resolve_device(config.device)
    out_path = _prepare_output(config.out, protocol, method, run_id)
    hooks = _Observers(registry)
    hooks.on_run_start(
        run={
            "run_id": run_id,
            "protocol": protocol.id,
            "protocol_version": protocol.version,
            "method": method.name,
            "target": target.id,
            "seed": config.seed,
            "device": str(device),
        }
    )

    observer.stage("data")
    data = _load_data(protocol, config, device)
    max_batches = SMOKE_MAX_BATCHES if config.smoke else None

    observer.stage("base model")
    model = build_model(
        protocol.architecture, protocol.dataset.input_shape, protocol.dataset.num_classes
    ).to(device)
    base_recipe = _budget(protocol.base_model.recipe, config.smoke)
    base = obtain_base_model(
        model,
        protocol,
        data,
        base_recipe,
        config.smoke,
        _epoch_relay("base", observer, hooks),
        max_batches,
        on_train_start=lambda: observer.phase_start("base", base_recipe.epochs),
    )
    base_info = _base_info(model, base, protocol, data)

    observer.stage("pruning")
    t_prune = time.perf_counter()
    dense = measure(model, protocol.dataset.input_shape)
    jsv_log = _JSVLog.start(model, protocol, data.train, config.jsv)
    target_figures = target_reference(model, protocol, target, data.train.batch(slice(0, 2)))
    outcome = prune_model(model, method, protocol, target, config.seed, data.train)
    pruned = measure(model, protocol.dataset.input_shape)
    effective = measure_effective(model, protocol.dataset.input_shape)
    pruning_seconds = time.perf_counter() - t_prune
    masks = outcome.masks
    if config.orthp:
        _apply_orthp(model, protocol, masks)
    scratch = None
    if method.from_scratch:
        scratch, retraining = scratch_plan(method, protocol, dense.flops, pruned.flops)
        torch.manual_seed(config.seed)
        reinitialize(model)  # the small architecture, re-initialized: trained from scratch
    pruned_top1 = evaluate(model, data.test)
    jsv_log.measure(model, -1)

    retrain_recipe = _budget(retraining, config.smoke)
    observer.phase_start("retraining", retrain_recipe.epochs)
    t_retrain = time.perf_counter()
    torch.manual_seed(config.seed)
    log = train(
        model,
        data,
        retrain_recipe,
        config.seed,
        jsv_log.relay(model, _epoch_relay("retraining", observer, hooks)),
        max_batches,
        (protocol.dataset.mean, protocol.dataset.std),
        after_step=None if masks is None else (lambda optimizer: masks.enforce(model, optimizer)),
    )
    retrain_seconds = time.perf_counter() - t_retrain
    if masks is not None:
        _check_masks_held(model, masks)

    saved = (
        _save_model(model, protocol, method, config, run_id, masks, out_path.with_suffix(".pt"))
        if config.save_model
        else None
    )
    submission = _build_submission(
        run_id=run_id,
        protocol=protocol,
        target=target,
        method=method,
        registry=registry,
        config=config,
        device=device,
        data=data,
        base_info=base_info,
        dense=dense,
        pruned=pruned,
        effective=effective,
        changes=outcome.layers,
        pruned_top1=pruned_top1,
        log=log,
        saved=saved,
        target_figures=target_figures,
        retrain_recipe=retrain_recipe,
        trainability=_trainability(log, retrain_recipe, jsv_log),
        scratch=scratch,
        timings={
            "base_model": base.seconds,
            "pruning": pruning_seconds,
            "retraining": retrain_seconds,
            "total": time.perf_counter() - started,
        },
    )
    write_json_atomic(out_path, submission.model_dump(mode="json"))
    hooks.on_run_end(submission=submission.model_dump(mode="json"), path=str(out_path))
    return RunResult(submission, out_path)


def _save_model(
    model: nn.Module,
    protocol: ComparisonProtocol,
    method: PruningMethod,
    config: RunConfig,
    run_id: str,
    masks: WeightMasks | None,
    path: Path,
) -> dict[str, str]:
    """Write the retrained model before its submission, so a submission never names a missing file."""
    meta: dict[str, Any] = {
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "run_id": run_id,
        "method": method.name,
        "method_version": method.version,
        "seed": config.seed,
        "granularity": protocol.granularity,
    }
    if masks is not None:
        meta["weight_masks"] = masks.state_dict()
    arch = {
        "name": protocol.architecture.name,
        "kwargs": dict(protocol.architecture.kwargs),
        "input_shape": list(protocol.dataset.input_shape),
        "num_classes": protocol.dataset.num_classes,
    }
    written = save_pruned(model, path, layer_widths(model), arch, meta)
    return {"file": written.name, "sha256": file_sha256(written)}


@dataclass
class _JSVLog:
    """Mean JSV of the dense model, right after pruning (epoch -1) and after every retraining
    epoch (Wang et al., arXiv 2301.05219), on the same fixed training examples."""

    batches: list[torch.Tensor] | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    dense: dict[str, Any] | None = None

    @classmethod
    def start(
        cls, model: nn.Module, protocol: ComparisonProtocol, train_split: Split, wanted: bool | None
    ) -> _JSVLog:
        on = _jsv_by_default(model, protocol, len(train_split)) if wanted is None else wanted
        if not on:
            return cls(None)
        # the same fixed examples for every run and method of the protocol (generator seed 0)
        order = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(0))
        picked = order[: JSV_BATCHES * JSV_BATCH_SIZE].to(train_split.device)
        inputs = train_split.batch(picked)
        log = cls(list(inputs.split(JSV_BATCH_SIZE)))
        log.dense = jsv_stats(model, log.batches).as_dict()
        return log

    def measure(self, model: nn.Module, epoch: int) -> None:
        if self.batches is not None:
            self.rows.append({"epoch": epoch, **jsv_stats(model, self.batches).as_dict()})

    def relay(
        self, model: nn.Module, then: Callable[[EpochStats], None]
    ) -> Callable[[EpochStats], None]:
        def on_epoch(row: EpochStats) -> None:
            self.measure(model, row.epoch)
            then(row)

        return on_epoch


JSV_MAX_EPOCH_SHARE = 0.25
"""The mean JSV is measured by default only when one measurement costs at most this share of a
training epoch (and the model passes :func:`~pruning_suite.engine.trainability.jsv_enabled_by_default`)."""


def _jsv_by_default(model: nn.Module, protocol: ComparisonProtocol, train_examples: int) -> bool:
    """On for models cheap enough, and only when a measurement (10 x 100 examples, one forward
    and K backward passes each) costs at most a quarter of a training epoch (one forward and
    about two forward-costs of backward per example): off for tiny datasets such as digits."""
    shape, classes = protocol.dataset.input_shape, protocol.dataset.num_classes
    jsv_passes = (1 + classes) * JSV_BATCHES * JSV_BATCH_SIZE
    return (
        jsv_enabled_by_default(model, shape, classes)
        and jsv_passes <= JSV_MAX_EPOCH_SHARE * 3 * train_examples
    )


def scratch_plan(
    method: PruningMethod, protocol: ComparisonProtocol, flops_dense: int, flops_pruned: int
) -> tuple[dict[str, Any], TrainRecipe]:
    """The SX-A / SX-B budget of a scratch baseline and the recipe it trains with.

    The recipe is the protocol's base-model recipe with its epochs set to the budget and its LR
    milestones scaled by ``budget / K1`` (rounded to whole epochs), the paper's "scratch, step
    LR" (arXiv 2301.05219, Table 6).

    Args:
        method: A method with ``from_scratch``; its config's ``setup`` is ``"SX-A"`` or ``"SX-B"``.
        protocol: Supplies K1 (base epochs), K2 (retraining epochs), the pruning budget P and
            whether SX-B adds K2 (``scratch.includes_retraining``).
        flops_dense: F1, FLOPs per example of the dense model.
        flops_pruned: F2, FLOPs per example of the pruned architecture.

    Returns:
        The submission's ``scratch`` block and the recipe.
    """
    setup = getattr(method.config, "setup", "SX-B")
    base = protocol.base_model.recipe
    info = {
        "setup": setup,
        "pretrain_epochs": base.epochs,
        "pruning_epochs": protocol.pruning_budget.epochs,
        "retraining_epochs": protocol.retraining.epochs,
        "flops_dense": flops_dense,
        "flops_pruned": flops_pruned,
        "includes_retraining": protocol.scratch.includes_retraining,
    }
    epochs = scratch_epochs(
        setup,
        base.epochs,
        protocol.retraining.epochs,
        flops_dense,
        flops_pruned,
        protocol.scratch.includes_retraining,
        protocol.pruning_budget.epochs,
    )
    info["epochs"] = epochs
    return info, scratch_recipe(protocol, epochs)


def _apply_orthp(model: nn.Module, protocol: ComparisonProtocol, masks: WeightMasks | None) -> None:
    """OrthP on every Conv2d/Linear, gain 1 for a linear network and sqrt(2) for ReLU ones."""
    linear = protocol.architecture.kwargs.get("activation") == "none"
    with torch.no_grad():
        orthp_(model, activation_gain=1.0 if linear else math.sqrt(2))
    if masks is not None:
        masks.apply(model)


def _trainability(log: list[EpochStats], recipe: Any, jsv_log: _JSVLog) -> dict[str, Any]:
    stage = recipe.first_stage_epochs()
    ta_val, ta_test = trainability_accuracy(log, stage)
    return {
        "ta_val": ta_val,
        "ta_test": ta_test,
        "first_stage_epochs": len(stage),
        "jsv_dense": jsv_log.dense,
        "jsv": jsv_log.rows if jsv_log.batches is not None else None,
    }


def _retraining_recipe(protocol: ComparisonProtocol, config: RunConfig) -> Any:
    """The protocol's retraining recipe with the run's overrides (open division) applied.

    Raises:
        ProtocolError: An override is not a valid recipe value.
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


def target_reference(
    model: nn.Module, protocol: ComparisonProtocol, target: PruningTarget, example: torch.Tensor
) -> dict[str, float]:
    """The sparsity and speedup the target's own layer ratios give (the reference of R-TARGET-1).

    A copy of the dense model is pruned at exactly the target's ratios under the one count rule
    (which units go does not change the counts, so the lowest indices are taken) and measured
    like a run. Effective figures for weight granularity.

    Args:
        model: The dense model (not modified).
        protocol: Supplies granularity, prunable layers and input shape.
        target: The target.
        example: A few input examples ``[B, C, H, W]`` on the model's device.

    Returns:
        ``{"sparsity": fraction, "speedup": dense MACs / pruned (effective) MACs}``.
    """
    reference = copy.deepcopy(model).eval()
    layers = find_prunable_layers(reference, protocol.prunable_layers)
    ratios = target.resolve([layer.name for layer in layers])
    input_shape = protocol.dataset.input_shape
    dense = measure(reference, input_shape)
    if protocol.granularity == "weight":
        scores = {layer.name: torch.zeros_like(layer.module.weight) for layer in layers}
        WeightMasks(select_weight_masks(scores, ratios, layers)).apply(reference)
    else:
        scores = {layer.name: torch.zeros(layer.num_units) for layer in layers}
        apply_structured_pruning(reference, select_removals(scores, ratios, layers), example)
    pruned, effective = measure(reference, input_shape), measure_effective(reference, input_shape)
    macs = effective.macs if protocol.granularity == "weight" else pruned.macs
    return {
        "sparsity": sparsity(protocol.granularity, dense.params, pruned.params, effective.params),
        "speedup": dense.macs / macs,
    }


def _check_masks_held(model: nn.Module, masks: WeightMasks) -> None:
    """After retraining, every masked weight must still be exactly zero (R-PRUNE-5)."""
    for name, keep in masks.masks.items():
        weight = model.get_submodule(name).weight.detach().cpu()
        revived = int(torch.count_nonzero(weight[~keep]))
        if revived:
            raise VerificationError(
                f"{revived} pruned weights of layer {name!r} are non-zero after retraining",
                "this is a bug in the suite's retraining loop; report it with the run's command",
            )


def _check_seed(seed: int) -> None:
    low, high = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed < high:
        raise PruningSuiteError(
            f"seed {seed!r} is not an integer in [0, 2**63)", "use e.g. --seed 0"
        )


class _Observers:
    """Calls the observer hooks of every plugin; one that raises is reported and skipped.

    An observer is someone else's plugin: it must not be able to abort a run of another method.
    """

    def __init__(self, registry: PluginRegistry) -> None:
        self._manager = registry.manager

    def __getattr__(self, hook_name: str) -> Callable[..., None]:
        def call(**kwargs: Any) -> None:
            for impl in getattr(self._manager.hook, hook_name).get_hookimpls():
                try:
                    impl.function(**{k: kwargs[k] for k in impl.argnames})
                except Exception as err:
                    warnings.warn(
                        f"observer plugin {impl.plugin_name!r} raised {type(err).__name__} in "
                        f"{hook_name}: {err}; the run goes on",
                        RuntimeWarning,
                        stacklevel=2,
                    )

        return call


def _prepare_output(
    out: Path, protocol: ComparisonProtocol, method: PruningMethod, run_id: str
) -> Path:
    """Create the output folder and prove it writable before any training is spent."""
    folder = Path(out) / protocol.id / method.name
    target = folder / f"{run_id}.json"
    if target.exists() and not target.is_file():
        raise OutputError(
            f"{target} exists and is not a file; the submission cannot be written there",
            "remove it or pass another --out",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{run_id}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(
            f"cannot write to output folder {folder}: {err.strerror}",
            "pass a writable folder with --out DIR",
        ) from err
    return target


def _load_data(protocol: ComparisonProtocol, config: RunConfig, device: torch.device) -> DataSplits:
    limit = SMOKE_EVAL_EXAMPLES if config.smoke else None  # smoke: evaluate on a subset
    return load_dataset(protocol.dataset, config.data_dir, device=device, eval_limit=limit)


def _budget(recipe: Any, smoke: bool) -> Any:
    """The recipe itself, or its smoke version (at most ``SMOKE_MAX_EPOCHS`` epochs)."""
    if not smoke:
        return recipe
    return recipe.model_copy(update={"epochs": min(recipe.epochs, SMOKE_MAX_EPOCHS)})


def _epoch_relay(phase: str, observer: RunObserver, hooks: Any) -> Callable[[EpochStats], None]:
    def relay(row: EpochStats) -> None:
        observer.epoch_end(phase, row)
        hooks.on_epoch_end(phase=phase, row=row.as_dict())

    return relay


def _base_info(
    model: nn.Module, base: Any, protocol: ComparisonProtocol, data: DataSplits
) -> dict[str, Any]:
    return {
        "checkpoint_sha256": base.checkpoint_sha256,
        "source": base.source,
        "seed": protocol.base_model.seed,
        "dense_val_top1": evaluate(model, data.val),
        "dense_test_top1": evaluate(model, data.test),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": base.seconds,
    }


@dataclass(frozen=True)
class PruningOutcome:
    """What :func:`prune_model` did to the model.

    Attributes:
        layers: ``(layer name, units before, units after)`` for every prunable layer, in module
            order; units are filters/neurons (filter granularity) or weights, with ``after`` the
            weights kept (weight granularity).
        masks: The weight masks to hold through retraining (weight granularity), else None.
    """

    layers: list[tuple[str, int, int]]
    masks: WeightMasks | None = None


def prune_model(
    model: nn.Module,
    method: PruningMethod,
    protocol: ComparisonProtocol,
    target: PruningTarget,
    seed: int,
    calibration: Split,
) -> PruningOutcome:
    """Ask the method what to prune, then apply it (the core mutates, never the plugin).

    Filter granularity removes the chosen filters physically (verified against the masked
    reference); weight granularity zeroes the chosen weights with masks that the caller must hold
    through retraining (:class:`~pruning_suite.engine.masks.WeightMasks`).

    Args:
        model: The dense model, on ``calibration``'s device; pruned in place.
        method: The plugin's method instance; its granularity must be the protocol's.
        protocol: Supplies the granularity and the prunable-layer patterns.
        target: Supplies the layer-wise pruning ratios (unless the method allocates its own).
        seed: Seeds the method's generator and the calibration batches' order.
        calibration: Training examples the method may look at (``[N, C, H, W]`` inputs).

    Returns:
        The per-layer widths (or weight counts) before and after, and the masks if any.

    Raises:
        PluginError: The method raised, returned malformed scores, modified the model, or prunes
            at another granularity than the protocol's.
        PruningError: The request cannot be applied (empties a layer, touches the output layer).
    """
    check_granularity(method, protocol)
    device = calibration.device
    model.eval()
    layers = find_prunable_layers(model, protocol.prunable_layers)
    scored = copy.deepcopy(model)  # the method sees a copy: nothing it does can reach the run
    ctx = PruningContext(
        model=scored,
        layers=find_prunable_layers(scored, protocol.prunable_layers),
        ratios=target.resolve([layer.name for layer in layers]),
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        device=device,
        calibration_batches=_calibration(calibration, seed),
    )
    before = _model_fingerprint(scored)
    scores = _checked_scores(method, _call_plugin(method, "score", ctx))
    ratios = _checked_ratios(method, _call_plugin(method, "layer_ratios", ctx))
    if _model_fingerprint(scored) != before:
        raise PluginError(
            f"plugin {method.name!r} modified the model while scoring (weights, buffers, modules or hooks)",
            "a method returns scores; the core applies pruning. Work on a copy (copy.deepcopy) if you must",
        )
    if protocol.granularity == "weight":
        masks = WeightMasks(select_weight_masks(scores, ratios, layers))
        masks.apply(model)
        kept = masks.masks
        return PruningOutcome(
            [
                (layer.name, kept[layer.name].numel(), int(kept[layer.name].sum()))
                for layer in layers
            ],
            masks,
        )
    removals = select_removals(scores, ratios, layers)
    apply_structured_pruning(model, removals, calibration.batch(slice(0, 2)))
    return PruningOutcome(
        [(layer.name, layer.num_units, _width(model.get_submodule(layer.name))) for layer in layers]
    )


def check_granularity(method: PruningMethod, protocol: ComparisonProtocol) -> None:
    """Refuse a method whose granularity is not the protocol's, before any training is spent.

    Raises:
        PluginError: The granularities differ; the hint names methods of the right kind.
    """
    if method.granularity != protocol.granularity:
        kind = {"filter": "filter (structured)", "weight": "weight (unstructured)"}
        raise PluginError(
            f"plugin {method.name!r} prunes at {kind[method.granularity]} granularity, but "
            f"protocol {protocol.id!r} is {kind[protocol.granularity]}",
            "pick a protocol of the method's granularity (`pruning-suite protocols`) or a method "
            "of the protocol's (`pruning-suite plugins` lists each method's granularity)",
        )


def _checked_scores(method: PruningMethod, scores: Any) -> dict[str, torch.Tensor]:
    """The method's scores as float64 CPU tensors, or a PluginError naming what is wrong."""
    if not isinstance(scores, Mapping):
        raise PluginError(
            f"plugin {method.name!r}: score() returned {type(scores).__name__}",
            "return a dict mapping each prunable layer's name to a 1-D tensor of scores",
        )
    checked = {}
    for name, value in scores.items():
        try:
            checked[name] = torch.as_tensor(value).detach().to("cpu", torch.float64)
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as err:
            raise PluginError(
                f"plugin {method.name!r}: scores for layer {name!r} are not a real-valued tensor "
                f"on a device the CPU can read ({type(value).__name__}): {err}",
                "return a 1-D float tensor per layer",
            ) from err
    return checked


def _checked_ratios(method: PruningMethod, ratios: Any) -> dict[str, float]:
    """The method's layer-wise ratios as floats, or a PluginError naming what is wrong."""
    if not isinstance(ratios, Mapping):
        raise PluginError(
            f"plugin {method.name!r}: layer_ratios() returned {type(ratios).__name__}",
            "return a dict mapping layer names to pruning ratios in [0, 1)",
        )
    for name, value in ratios.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise PluginError(
                f"plugin {method.name!r}: ratio for layer {name!r} is {value!r}, not a number",
                "return a dict mapping layer names to pruning ratios in [0, 1)",
            )
    return {name: float(value) for name, value in ratios.items()}


def _width(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _call_plugin(method: PruningMethod, step: str, ctx: PruningContext) -> Any:
    try:
        return getattr(method, step)(ctx)
    except PruningSuiteError:
        raise
    except (Exception, SystemExit) as err:
        raise PluginError(
            f"plugin {method.name!r} raised {type(err).__name__} in {step}(): {err}",
            f"this is a bug in the plugin {method.name!r}; rerun with --debug for its traceback",
        ) from err


def _model_fingerprint(model: nn.Module) -> str:
    """Hash of the weights, buffers, module structure, hyper-parameters and hooks of ``model``."""
    digest = hashlib.sha256(repr(model).encode())
    for module in model.modules():
        hooks = (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks)
        extra = (module.training, getattr(module, "momentum", None), tuple(len(h) for h in hooks))
        digest.update(repr(extra).encode())
    for param in model.parameters():
        digest.update(repr(param.requires_grad).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _calibration(split: Split, seed: int, batch_size: int = 100) -> Callable[[int], Any]:
    def batches(n: int):
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(
            split.device
        )
        for i in range(min(n, (len(split) + batch_size - 1) // batch_size)):
            idx = order[i * batch_size : (i + 1) * batch_size]
            yield split.batch(idx), split.labels[idx]

    return batches


def _environment(device: torch.device) -> dict[str, Any]:
    import torch_pruning

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine() or "cpu"
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_pruning": getattr(torch_pruning, "__version__", "unknown"),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": device_name,
        "num_threads": torch.get_num_threads(),
    }


def _git_commit() -> str | None:
    """The commit of the suite's own source checkout, ``+dirty`` when it has uncommitted changes.

    None when the suite is not running from its git checkout (an installed wheel).
    """
    import subprocess

    source = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or (Path(top) / "suite").resolve() != source:
        return None
    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return commit


def _recorded_ratios(
    target: PruningTarget, changes: list[tuple[str, int, int]]
) -> dict[str, float]:
    """The target as recorded: its pattern table, or per-layer ratios for a per-stage target."""
    if target.layer_ratios is not None:
        return dict(target.layer_ratios)
    return target.resolve([name for name, _, _ in changes])


def _build_submission(**kw: Any) -> Submission:
    protocol: ComparisonProtocol = kw["protocol"]
    method: PruningMethod = kw["method"]
    dense, pruned, effective, log = kw["dense"], kw["pruned"], kw["effective"], kw["log"]
    target: PruningTarget = kw["target"]
    base = {k: v for k, v in kw["base_info"].items() if k != "seconds"}
    final = log[-1]
    resolved = target.resolve([name for name, _, _ in kw["changes"]])
    layers = [
        {
            "name": name,
            "before": before,
            "after": after,
            "target_ratio": resolved[name],
            "achieved_ratio": (before - after) / before,
        }
        for name, before, after in kw["changes"]
    ]
    data = {
        "run_id": kw["run_id"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "suite": {"version": __version__, "git_commit": _git_commit()},
        "protocol": {
            "id": protocol.id,
            "version": protocol.version,
            "content_hash": protocol.content_hash,
            "dataset_sha256": kw["data"].sha256,
        },
        "method": {
            "name": method.name,
            "version": method.version,
            "distribution": kw["registry"].methods[method.name].distribution,
            "granularity": method.granularity,
            "config": method.config.model_dump(mode="json"),
            "reinit": "orthp" if kw["config"].orthp else None,
        },
        "target": {
            "id": target.id,
            "layer_ratios": _recorded_ratios(target, kw["changes"]),
            **kw["target_figures"],
        },
        "seed": kw["config"].seed,
        "smoke": kw["config"].smoke,
        "rankable": not kw["config"].smoke,
        "environment": _environment(kw["device"]),
        "base_model": base,
        "pruning": {
            "input_shape": list(protocol.dataset.input_shape),
            "params_dense": dense.params,
            "params_pruned": pruned.params,
            "sparsity": sparsity(
                protocol.granularity, dense.params, pruned.params, effective.params
            ),
            "macs_dense": dense.macs,
            "macs_pruned": pruned.macs,
            "flops_dense": dense.flops,
            "flops_pruned": pruned.flops,
            "speedup": dense.macs / pruned.macs,
            "granularity": protocol.granularity,
            "params_nonzero": effective.params,
            "macs_effective": effective.macs,
            "flops_effective": effective.flops,
            "effective_speedup": dense.macs / effective.macs,
            "layers": layers,
        },
        "retraining": [row.as_dict() for row in log],
        "final": {
            "test_top1": final.test_top1,
            "val_top1": final.val_top1,
            "pruned_test_top1_before_retraining": kw["pruned_top1"],
            "delta_top1": final.test_top1 - base["dense_test_top1"],
        },
        "timings": kw["timings"],
    }
    if kw["saved"] is not None:
        data["pruned_model"] = kw["saved"]
    data["retraining_recipe"] = kw["retrain_recipe"].model_dump(mode="json")
    data["trainability"] = kw["trainability"]
    if kw["scratch"] is not None:
        data["scratch"] = kw["scratch"]
    data["pruning_stage"] = {"epochs": 0, "lr_schedule": None, "log": []}  # one-shot methods
    if kw["config"].retraining_override:
        data["retraining_override"] = kw["config"].retraining_override
    submission = Submission.model_validate(data)
    certification = certify(submission, protocol)
    return submission.model_copy(update={"certification": certification})
