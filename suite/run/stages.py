"""The named stages of one run over its typed :class:`RunState` (DESIGN.md, "The pipeline").

``runner.run`` plans, then calls the :data:`STAGES` in order; each reads what earlier stages put
into the state and adds its own result. The method's part is the pruning stage
(:class:`~pruning_suite.run.prune.PruningStage`); everything else belongs to the core.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..contract.plugins import PluginRegistry
from ..data.datasets import SMOKE_EVAL_EXAMPLES, DataSplits, load_dataset
from ..engine.checkpoint import layer_widths, save_pruned
from ..engine.evidence import Evidence, predictions_evidence, weights_sha256
from ..engine.latency import (
    SMOKE_SETTINGS,
    LatencyResult,
    LatencySettings,
    latency_devices,
    measure_latency,
)
from ..engine.measure import Counts, measure, measure_effective
from ..engine.models import build_model, reinitialize
from ..engine.resume import EpochCheckpoint, Resumed, announce_resume
from ..engine.train import EpochStats, evaluate, train
from ..errors import OutputError, PruningSuiteError, TrainingError
from ..protocol.spec import TrainRecipe
from ..record.compare import reproduces, settings_note
from ..record.jsonio import read_json, write_json_atomic
from ..record.safefiles import check_free_space
from ..record.submission import (
    BaseModelInfo,
    PrunedModelFile,
    ScratchInfo,
    Submission,
    Timings,
    TrainabilityInfo,
)
from ..record.submission import (
    PruningStage as PruningStageRecord,
)
from .assemble import PrunedCounts, RunRecords, assemble_submission
from .basecache import (
    cache_dir,
    file_sha256,
    obtain_base_model,
    room_needed,
    state_bytes,
    work_dir,
)
from .config import RunConfig, budget, max_batches
from .isolation import StageJob, run_isolated_stage, run_stage_here
from .observe import epoch_notifier, notify
from .plan import RunPlan
from .prune import (
    PruningDecision,
    PruningOutcome,
    check_granularity,
    target_reference,
)
from .pruning_loop import StageHooks
from .regime import (
    JSVLog,
    apply_orthp,
    check_masks_held,
    scratch_info,
    scratch_plan,
    trainability_info,
)

__all__ = ["STAGES", "RunState", "Stage"]

PRUNING_STAGES = ("pruning", "measure")
"""The stages whose time the submission records as ``timings.pruning``."""


@dataclass
class RunState:
    """What one run knows so far; each stage reads earlier fields and fills in its own.

    Attributes:
        config: The run's config.
        plan: The checked plan (protocol, target, method, recipe, run id, regime).
        registry: The installed plugins (methods, architectures, observers).
        device: Where the run trains.
        out_path: Where the submission will be written.
        started: ``time.perf_counter()`` when the run started.
        seconds: Wall time per stage name, seconds.
        data: The dataset's splits on ``device`` (stage ``data``).
        model: The model: dense, then pruned in place, then retrained (``base model`` on).
        base: The base model's record, and ``base_seconds`` its training time (``base model``).
        dense: The dense model's counts; ``jsv`` the JSV log; ``target_figures`` the target's
            reference sparsity and speedup (``base model``).
        decision: The method's checked scores and ratios of the last round (``pruning``).
        outcome: Per-layer widths and the weight masks (``pruning``).
        stage_record: The pruning stage's record: epochs, rounds, samples (``pruning``).
        target_ratios: The target's per-layer ratios, resolved on the dense model (``pruning``).
        counts: Dense, pruned and effective counts with the widths, and ``latency`` the
            measured latency of a dense and the pruned model (``measure``).
        recipe: The recipe the model trains with next, and ``scratch`` the SX budget of a
            scratch regime; ``pruned_top1`` the test top-1 before training (``re-initialize``).
        log: The retraining log (``retraining``).
        trainability: TA and JSV; ``test_evidence``, ``val_evidence`` and ``weights_sha256``
            the final model's counted, digested predictions and weights (``evaluation``).
        saved: The saved model file (``save model``), or None.
        submission: The certified submission (``assembly``).
        kept_stored: True when ``out_path`` already held a submission this run reproduces
            (:func:`~pruning_suite.record.compare.reproduces`): the stored file was kept
            (``write``); ``replaced``: a line when it held another result of this run id, which
            this run replaced (with the settings that differ, if any).
        on_base_training: Called when base training starts here (torchrun's rank 0 tells the
            other ranks to train with it, :mod:`~.ranks`).
    """

    config: RunConfig
    plan: RunPlan
    registry: PluginRegistry
    device: torch.device
    out_path: Path
    started: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)
    data: DataSplits = field(init=False)
    model: nn.Module = field(init=False)
    base: BaseModelInfo = field(init=False)
    base_seconds: float = field(init=False)
    dense: Counts = field(init=False)
    jsv: JSVLog = field(init=False)
    target_figures: dict[str, float] = field(init=False)
    decision: PruningDecision = field(init=False)
    outcome: PruningOutcome = field(init=False)
    stage_record: PruningStageRecord = field(init=False)
    target_ratios: dict[str, float] = field(init=False)
    counts: PrunedCounts = field(init=False)
    latency: list[LatencyResult] = field(init=False, default_factory=list)
    recipe: TrainRecipe = field(init=False)
    scratch: ScratchInfo | None = field(init=False, default=None)
    pruned_top1: float = field(init=False)
    log: list[EpochStats] = field(init=False)
    trainability: TrainabilityInfo = field(init=False)
    test_evidence: Evidence = field(init=False)
    val_evidence: Evidence = field(init=False)
    weights_sha256: str = field(init=False)
    saved: PrunedModelFile | None = field(init=False, default=None)
    submission: Submission = field(init=False)
    kept_stored: bool = field(init=False, default=False)
    replaced: str | None = field(init=False, default=None)
    on_base_training: Callable[[], None] = field(default=lambda: None)

    def notify(self, hook_name: str, **kwargs: object) -> None:
        """Call an observer hook on the run's plugin manager (:func:`~.observe.notify`)."""
        notify(self.registry.manager, hook_name, **kwargs)


@dataclass(frozen=True)
class Stage:
    """One named stage: announced to observers (hook ``on_stage``), run, and timed."""

    name: str
    step: Callable[[RunState], None]

    def __call__(self, state: RunState) -> None:
        state.notify("on_stage", stage=self.name)
        started = time.perf_counter()
        self.step(state)
        state.seconds[self.name] = time.perf_counter() - started


def load_data(state: RunState) -> None:
    """Load the protocol's dataset onto the device (smoke: evaluate on a subset)."""
    limit = SMOKE_EVAL_EXAMPLES if state.config.smoke else None
    spec = state.plan.protocol.dataset
    state.data = load_dataset(spec, state.config.data_dir, device=state.device, eval_limit=limit)


def obtain_base(state: RunState) -> None:
    """Build the architecture, obtain the base model (cached, trained or loaded), measure it."""
    protocol, smoke = state.plan.protocol, state.config.smoke
    spec = protocol.dataset
    model = build_model(
        protocol.architecture, spec.input_shape, spec.num_classes, state.registry.architectures
    ).to(state.device)
    recipe = budget(protocol.base_model.recipe, smoke)
    manager = state.registry.manager
    base = obtain_base_model(
        model, protocol, state.data, recipe, smoke, epoch_notifier(manager, "base"),
        max_batches(smoke),
        on_train_start=lambda: _base_training_starts(state, recipe.epochs),
    )  # fmt: skip
    state.model, state.base_seconds = model, base.seconds
    state.base = BaseModelInfo(
        checkpoint_sha256=base.checkpoint_sha256,
        source=base.source,
        seed=protocol.base_model.seed,
        dense_val_top1=evaluate(model, state.data.val),
        dense_test_top1=evaluate(model, state.data.test),
        params=sum(p.numel() for p in model.parameters()),
    )
    _measure_dense(state)


def _base_training_starts(state: RunState, epochs: int) -> None:
    state.on_base_training()
    state.notify("on_phase_start", phase="base", epochs=epochs)


def _measure_dense(state: RunState) -> None:
    """Counts and JSV of the dense model, and the target's reference figures."""
    protocol, model, train_split = state.plan.protocol, state.model, state.data.train
    state.dense = measure(model, protocol.dataset.input_shape)
    state.jsv = JSVLog.start(model, protocol, train_split, state.config.jsv)
    example = train_split.batch(slice(0, 2))
    state.target_figures = target_reference(model, protocol, state.plan.target, example)


def prune(state: RunState) -> None:
    """The pruning stage (:func:`~.pruning_loop.run_pruning_stage`) in its own process
    (:func:`~.isolation.run_isolated_stage`): the method decides on copies, the suite trains
    (training-aware methods) and applies, verifies and measures every prune round; this process
    replays the surgery from the data it gets back."""
    plan, config = state.plan, state.config
    check_granularity(plan.method, plan.protocol)
    state.model.eval()
    job = StageJob(
        state.model,
        plan.method,
        plan.protocol,
        plan.target,
        config.seed,
        state.data,
        plan.retraining,
        config.smoke,
    )
    hooks = StageHooks(
        on_epoch=epoch_notifier(state.registry.manager, "pruning"),
        on_train_start=lambda epochs: state.notify(
            "on_phase_start", phase="pruning", epochs=epochs
        ),
    )
    result = (run_isolated_stage if config.isolate else run_stage_here)(job, hooks)
    state.decision, state.outcome, state.stage_record = (
        result.decision,
        result.outcome,
        result.record,
    )
    state.target_ratios = result.target_ratios


def measure_pruned(state: RunState) -> None:
    """Measure what pruning achieved (never the plugin's claim): counts, and the latency of a
    freshly built dense model of the architecture against the pruned one, batch 1 and 64, on the
    CPU and on the run's GPU (a measurement, never a rule input; a smoke run times fewer blocks)."""
    protocol = state.plan.protocol
    shape = protocol.dataset.input_shape
    pruned, effective = measure(state.model, shape), measure_effective(state.model, shape)
    state.counts = PrunedCounts(state.dense, pruned, effective, state.outcome.layers)
    with torch.random.fork_rng(devices=[]):  # the run's random stream stays as it was
        dense = build_model(
            protocol.architecture, shape, protocol.dataset.num_classes, state.registry.architectures
        )
    settings = SMOKE_SETTINGS if state.config.smoke else LatencySettings()
    devices = latency_devices(state.device)
    state.latency = measure_latency(dense, state.model, shape, devices, settings)


def reinitialize_for_regime(state: RunState) -> None:
    """OrthP if asked; the scratch regime's budget and default init; then the starting accuracy."""
    plan, config, model = state.plan, state.config, state.model
    if config.orthp:
        apply_orthp(model, plan.protocol, state.outcome.masks)
    state.recipe = plan.retraining
    if plan.regime == "scratch":
        flops = (state.counts.dense.flops, state.counts.pruned.flops)
        info, state.recipe = scratch_plan(plan.method, plan.protocol, *flops)
        state.scratch = scratch_info(info)
        torch.manual_seed(config.seed)
        reinitialize(model)  # the small architecture, re-initialized: trained from scratch
    state.pruned_top1 = evaluate(model, state.data.test)
    state.jsv.measure(model, -1)


def retrain(state: RunState) -> None:
    """Train the pruned model with the recipe (its smoke budget), holding any weight masks.

    Checks first that the cache and ``--out`` have room; saves every epoch to
    ``<cache>/work/run-<run id>-retraining.pt`` and resumes from it (:func:`retraining_checkpoint`).
    """
    config, protocol, model = state.config, state.plan.protocol, state.model
    state.recipe = budget(state.recipe, config.smoke)
    state.notify("on_phase_start", phase="retraining", epochs=state.recipe.epochs)
    masks = state.outcome.masks
    check_free_space(work_dir(), room_needed(model), "the cache")
    check_free_space(state.out_path.parent, 2 * (state_bytes(model) + 2**20), "--out")
    checkpoint = retraining_checkpoint(state)
    torch.manual_seed(config.seed)
    try:
        state.log = train(
            model,
            state.data,
            state.recipe,
            config.seed,
            state.jsv.relay(model, epoch_notifier(state.registry.manager, "retraining")),
            max_batches(config.smoke),
            (protocol.dataset.mean, protocol.dataset.std),
            after_step=None if masks is None else (lambda opt: masks.enforce(model, opt)),
            checkpoint=checkpoint,
        )
    except TrainingError:
        checkpoint.discard()  # it diverges again from there: nothing to resume
        raise


def retraining_checkpoint(state: RunState) -> EpochCheckpoint:
    """The run's retraining checkpoint, ``<cache>/work/run-<run id>-retraining.pt``: kept with
    the JSV rows, which a resumed run gets back; deleted once the submission is written."""
    announce = announce_resume("retraining", state.recipe)

    def on_resume(resumed: Resumed) -> None:
        state.jsv.rows[:] = resumed.extra
        announce(resumed)

    path = work_dir() / f"run-{state.plan.run_id}-retraining.pt"
    return EpochCheckpoint(path, extra=lambda: list(state.jsv.rows), on_resume=on_resume)


def evaluate_run(state: RunState) -> None:
    """Check that masks held; compute trainability (TA over the first LR stage, JSV) and the
    evidence binding the result to the final model (counts, prediction and weight digests)."""
    if state.outcome.masks is not None:
        check_masks_held(state.model, state.outcome.masks)
    state.trainability = trainability_info(state.log, state.recipe, state.jsv)
    state.test_evidence = predictions_evidence(state.model, state.data.test)
    state.val_evidence = predictions_evidence(state.model, state.data.val)
    state.weights_sha256 = weights_sha256(state.model)


def save_model(state: RunState) -> None:
    """Write the retrained model before its submission (``--save-model``), so a submission
    never names a missing file."""
    if not state.config.save_model:
        return
    plan, model = state.plan, state.model
    protocol, method = plan.protocol, plan.method
    meta: dict[str, object] = {
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "run_id": plan.run_id,
        "method": method.name,
        "method_version": method.version,
        "seed": state.config.seed,
        "granularity": protocol.granularity,
    }
    if state.outcome.masks is not None:
        meta["weight_masks"] = state.outcome.masks.state_dict()
    arch = {
        "name": protocol.architecture.name,
        "kwargs": dict(protocol.architecture.kwargs),
        "input_shape": list(protocol.dataset.input_shape),
        "num_classes": protocol.dataset.num_classes,
    }
    path = state.out_path.with_suffix(".pt")
    written = save_pruned(model, path, layer_widths(model), arch, meta)
    state.saved = PrunedModelFile(file=written.name, sha256=file_sha256(written))


def assemble(state: RunState) -> None:
    """Build the certified submission from the stages' typed records."""
    plan = state.plan
    state.submission = assemble_submission(
        RunRecords(
            run_id=plan.run_id,
            config=state.config,
            protocol=plan.protocol,
            target=plan.target,
            method=plan.method,
            distribution=state.registry.methods[plan.method.name].distribution,
            dataset_sha256=state.data.sha256,
            device=state.device,
            base=state.base,
            counts=state.counts,
            target_figures=state.target_figures,
            pruned_top1=state.pruned_top1,
            log=state.log,
            recipe=state.recipe,
            trainability=state.trainability,
            scratch=state.scratch,
            pruning_stage=state.stage_record,
            target_ratios=state.target_ratios,
            test_evidence=state.test_evidence,
            val_evidence=state.val_evidence,
            weights_sha256=state.weights_sha256,
            saved=state.saved,
            timings=_timings(state),
            latency=state.latency,
            code_sha256=plan.code_sha256,
        )
    )


def _timings(state: RunState) -> Timings:
    seconds = state.seconds
    return Timings(
        base_model=state.base_seconds,
        pruning=sum(seconds.get(name, 0.0) for name in PRUNING_STAGES),
        retraining=seconds.get("retraining", 0.0),
        total=time.perf_counter() - state.started,
    )


def write(state: RunState) -> None:
    """Write the submission atomically, then delete the retraining checkpoint.

    A stored submission of the same run id that this run reproduces is kept as it is (its
    ``created``, timings and latency are those of the first run; a committed result stays
    unchanged by a rerun); any other file there is replaced.

    Raises:
        OutputError: The submission cannot be written (a full or read-only disk); it was written
            instead to a recovery folder the message names (:func:`keep_for_recovery`).
    """
    data, stored = state.submission.model_dump(mode="json"), _stored(state.out_path)
    if stored is not None and reproduces(stored, data):
        state.kept_stored = True
        retraining_checkpoint(state).discard()
        return
    if stored is not None:
        note = settings_note(stored, data)
        state.replaced = "it held other results of this run id" + (f"; {note}" if note else "")
    try:
        write_json_atomic(state.out_path, data)
    except (OSError, OutputError) as err:
        if isinstance(err, OutputError) and not isinstance(err.__cause__, OSError):
            raise  # not plain JSON: a bug, no disk problem
        reason = err.strerror if isinstance(err, OSError) else err.message
        kept = keep_for_recovery(state.out_path, data, state.plan.protocol.id)
        raise OutputError(
            f"cannot write the submission {state.out_path} ({reason}); it was kept in {kept}",
            f"free space or fix the folder, then: mv {kept} {state.out_path}",
        ) from err
    retraining_checkpoint(state).discard()


def _stored(path: Path) -> dict[str, Any] | None:
    """The JSON object stored at ``path``; None when there is none, or it is unreadable or
    corrupt (then replaced without a word)."""
    try:
        stored = read_json(path) if path.is_file() else None
    except (OSError, PruningSuiteError):
        return None
    return stored if isinstance(stored, dict) else None


def keep_for_recovery(path: Path, data: object, protocol_id: str) -> Path:
    """Write a submission that could not go to ``path`` into the first writable recovery folder:
    ``<cache>/recovered/<protocol>/<method>/``, else the system temp folder's
    ``pruning-suite-recovered/`` (same layout, same file name).

    Raises:
        OutputError: Neither can be written.
    """
    tail = Path(protocol_id) / path.parent.name / path.name
    folders = (cache_dir() / "recovered", Path(tempfile.gettempdir()) / "pruning-suite-recovered")
    for folder in folders:
        try:
            write_json_atomic(folder / tail, data)
            return folder / tail
        except (OSError, OutputError):
            continue
    raise OutputError(
        f"cannot write the submission {path}, nor keep it in {folders[0]} or {folders[1]}",
        "free space on a disk and run again (retraining resumes from its last epoch)",
    )


STAGES: tuple[Stage, ...] = (
    Stage("data", load_data),
    Stage("base model", obtain_base),
    Stage("pruning", prune),
    Stage("measure", measure_pruned),
    Stage("re-initialize", reinitialize_for_regime),
    Stage("retraining", retrain),
    Stage("evaluation", evaluate_run),
    Stage("save model", save_model),
    Stage("assembly", assemble),
    Stage("write", write),
)
"""The stages of one run, in order."""
