"""Assemble the submission of a run from typed records (never from a dict of loose keys).

Each block of :class:`~pruning_suite.record.submission.Submission` is built by one function from
what the stages measured; :func:`assemble_submission` puts them together and certifies the result
(:func:`pruning_suite.rules.setups.certify`).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from .. import __version__
from ..contract.method import PruningMethod
from ..engine import distributed
from ..engine.evidence import Evidence
from ..engine.latency import LatencyResult
from ..engine.measure import Counts, sparsity
from ..engine.numerics import cpu_numerics
from ..engine.train import EpochStats
from ..protocol.spec import ComparisonProtocol, PruningTarget, TrainRecipe
from ..record.safefiles import note
from ..record.submission import (
    BaseModelInfo,
    Environment,
    EpochRow,
    FinalMetrics,
    LatencyMeasurement,
    LayerWidth,
    Measurements,
    MethodRef,
    ProtocolRef,
    PrunedModelFile,
    PruningStage,
    RecipeRecord,
    RunEvidence,
    ScratchInfo,
    Submission,
    SuiteInfo,
    TargetInfo,
    Timings,
    TrainabilityInfo,
)
from ..rules import certify
from ..rules.rule import rule_failed
from .config import RunConfig

__all__ = ["PrunedCounts", "RunRecords", "assemble_submission", "environment", "git_commit"]

LayerChange = tuple[str, int, int]
"""``(layer name, units before, units after)``."""


@dataclass(frozen=True)
class PrunedCounts:
    """Params / MACs / FLOPs of the dense and the pruned model, and the per-layer widths.

    Attributes:
        dense: The dense model's counts (per example at the protocol's input size).
        pruned: The pruned model's counts (tensor shapes).
        effective: The pruned model's counts over non-zero weights only.
        layers: ``(name, units before, units after)`` per prunable layer, in module order.
    """

    dense: Counts
    pruned: Counts
    effective: Counts
    layers: list[LayerChange]


@dataclass(frozen=True)
class RunRecords:
    """Everything a submission is assembled from, as the stages produced it.

    Attributes:
        run_id: The run id.
        config: The run's config (seed, smoke, orthp, retraining override).
        protocol: The protocol.
        target: The pruning target.
        method: The configured method.
        distribution: The distribution that installed the method.
        dataset_sha256: sha256 of the dataset files read.
        device: Where the run ran.
        base: The base model record.
        counts: What pruning achieved.
        target_figures: The target's reference sparsity and speedup (:func:`target_reference`).
        pruned_top1: Test top-1 right before retraining, percent.
        log: The retraining log.
        recipe: The recipe retraining (or scratch training) ran with.
        trainability: TA and the JSV log.
        scratch: The SX budget of a scratch regime, else None.
        pruning_stage: The pruning stage's record (epochs, rounds, samples seen).
        target_ratios: The target's per-layer ratios, resolved on the dense model
            (:func:`pruning_suite.engine.budget.target_ratios`).
        test_evidence: The final model's test predictions, counted and digested; and
            ``val_evidence`` on the validation split, ``weights_sha256`` of its weights.
        saved: The saved model file, else None.
        timings: Seconds per phase.
        latency: Measured latency of the dense and the pruned model per device and batch size.
        code_sha256: The digest of the method's code (``RunPlan.code_sha256``).
    """

    run_id: str
    config: RunConfig
    protocol: ComparisonProtocol
    target: PruningTarget
    method: PruningMethod
    distribution: str
    dataset_sha256: str
    device: torch.device
    base: BaseModelInfo
    counts: PrunedCounts
    target_figures: dict[str, float]
    pruned_top1: float
    log: list[EpochStats]
    recipe: TrainRecipe
    trainability: TrainabilityInfo
    scratch: ScratchInfo | None
    saved: PrunedModelFile | None
    timings: Timings
    pruning_stage: PruningStage = PruningStage()
    target_ratios: Mapping[str, float] = field(default_factory=dict)
    test_evidence: Evidence | None = None
    val_evidence: Evidence | None = None
    weights_sha256: str | None = None
    latency: Sequence[LatencyResult] = ()
    code_sha256: str | None = None


def assemble_submission(records: RunRecords) -> Submission:
    """The certified submission of a finished run.

    Raises:
        pydantic.ValidationError: A measured value breaks the submission format (a bug).
    """
    config = records.config
    submission = Submission(
        run_id=records.run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        suite=SuiteInfo(version=__version__, git_commit=git_commit()),
        protocol=_protocol_ref(records),
        method=_method_ref(records),
        target=_target_info(
            records.target, records.target_ratios, records.counts.layers, records.target_figures
        ),
        seed=config.seed,
        smoke=config.smoke,
        rankable=not config.smoke,
        environment=environment(records.device),
        base_model=records.base,
        pruning=_measurements(records.protocol, records.target_ratios, records.counts),
        retraining=[EpochRow(**row.as_dict()) for row in records.log],
        final=_final(records),
        timings=records.timings,
        pruned_model=records.saved,
        retraining_override=config.retraining_override,
        retraining_recipe=RecipeRecord.model_validate(records.recipe.model_dump(mode="json")),
        pruning_stage=records.pruning_stage,
        evidence=_evidence(records),
        trainability=records.trainability,
        scratch=records.scratch,
        latency=_latency(records.latency),
    )
    certification = certify(submission, records.protocol)
    for reason in certification.unmet:
        if rule_failed(reason):  # a rule's bug lowers the certification: say so
            note(f"warning: {reason} (the run is certified without it)")
    return submission.model_copy(update={"certification": certification})


def _protocol_ref(records: RunRecords) -> ProtocolRef:
    protocol = records.protocol
    return ProtocolRef(
        id=protocol.id,
        version=protocol.version,
        content_hash=protocol.content_hash,
        dataset_sha256=records.dataset_sha256,
    )


def _method_ref(records: RunRecords) -> MethodRef:
    method = records.method
    return MethodRef(
        name=method.name,
        version=method.version,
        distribution=records.distribution,
        code_sha256=records.code_sha256,
        granularity=method.granularity,
        config=method.config.model_dump(mode="json"),
        reinit="orthp" if records.config.orthp else None,
    )


def _target_info(
    target: PruningTarget,
    resolved: Mapping[str, float],
    layers: Sequence[LayerChange],
    figures: dict[str, float],
) -> TargetInfo:
    """The target as recorded: its pattern table, else the per-layer ratios it resolved to (a
    per-stage target; a budget target's uniform ratio that first reaches its speedup)."""
    if target.layer_ratios is not None:
        ratios = dict(target.layer_ratios)
    else:
        ratios = {name: resolved[name] for name, _, _ in layers}
    return TargetInfo(id=target.id, layer_ratios=ratios, **figures)


def _measurements(
    protocol: ComparisonProtocol, resolved: Mapping[str, float], counts: PrunedCounts
) -> Measurements:
    dense, pruned, effective = counts.dense, counts.pruned, counts.effective
    return Measurements(
        input_shape=list(protocol.dataset.input_shape),
        params_dense=dense.params,
        params_pruned=pruned.params,
        sparsity=sparsity(protocol.granularity, dense.params, pruned.params, effective.params),
        macs_dense=dense.macs,
        macs_pruned=pruned.macs,
        flops_dense=dense.flops,
        flops_pruned=pruned.flops,
        speedup=dense.macs / pruned.macs,
        granularity=protocol.granularity,
        params_nonzero=effective.params,
        macs_effective=effective.macs,
        flops_effective=effective.flops,
        effective_speedup=dense.macs / effective.macs,
        layers=_layer_widths(resolved, counts.layers),
    )


def _layer_widths(resolved: Mapping[str, float], layers: Sequence[LayerChange]) -> list[LayerWidth]:
    return [
        LayerWidth(
            name=name,
            before=before,
            after=after,
            target_ratio=resolved[name],
            achieved_ratio=(before - after) / before,
        )
        for name, before, after in layers
    ]


def _final(records: RunRecords) -> FinalMetrics:
    final = records.log[-1]
    test, val = records.test_evidence, records.val_evidence
    return FinalMetrics(
        test_top1=final.test_top1,
        val_top1=final.val_top1,
        pruned_test_top1_before_retraining=records.pruned_top1,
        delta_top1=final.test_top1 - records.base.dense_test_top1,
        test_correct=None if test is None else test.correct,
        test_examples=None if test is None else test.examples,
        val_correct=None if val is None else val.correct,
        val_examples=None if val is None else val.examples,
    )


def _evidence(records: RunRecords) -> RunEvidence | None:
    if records.test_evidence is None or records.weights_sha256 is None:
        return None
    return RunEvidence(
        test_predictions_sha256=records.test_evidence.predictions_sha256,
        weights_sha256=records.weights_sha256,
    )


def _latency(results: Sequence[LatencyResult]) -> list[LatencyMeasurement] | None:
    """Milliseconds per forward pass and examples per second, as the submission records them."""
    return [
        LatencyMeasurement(
            device=r.device,
            device_name=r.device_name,
            num_threads=r.num_threads,
            batch_size=r.batch_size,
            warmup=r.warmup,
            repeats=r.repeats,
            dense_ms=1000 * r.dense_seconds,
            pruned_ms=1000 * r.pruned_seconds,
            speedup=r.speedup,
            dense_throughput=r.batch_size / r.dense_seconds,
            pruned_throughput=r.batch_size / r.pruned_seconds,
        )
        for r in results
    ] or None


def _installed(name: str) -> str:
    """The installed distribution's version (``tp.__version__`` can lag it: 1.6.0 vs 1.6.1)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def environment(device: torch.device) -> Environment:
    """Versions, platform and device of this process, how many processes trained together
    (:func:`pruning_suite.engine.distributed.world_size`) and what decided its CPU arithmetic
    (:func:`pruning_suite.engine.numerics.cpu_numerics`), as a submission records them."""
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine() or "cpu"
    return Environment(
        python=sys.version.split()[0],
        torch=torch.__version__,
        torch_pruning=_installed("torch-pruning"),
        platform=platform.platform(),
        device=str(device),
        device_name=device_name,
        num_threads=torch.get_num_threads(),
        world_size=distributed.world_size(),
        cpu_numerics=cpu_numerics(),
    )


def git_commit() -> str | None:
    """The commit of the suite's own source checkout, ``+dirty`` when it has uncommitted changes.

    None when the suite is not running from its git checkout (an installed wheel).
    """
    source = Path(__file__).resolve().parents[1]

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
