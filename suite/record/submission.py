"""The submission: one JSON file per run, with full provenance.

The pydantic models here are the single source of truth; ``schemas/submission.schema.json`` (JSON
Schema 2020-12, ``python -m pruning_suite.record.schema``) lets anyone validate a file without us.

Units: accuracies are top-1 in percent [0, 100]; sparsity and pruning ratios are fractions [0, 1];
MACs are multiply-accumulates and FLOPs = 2 x MACs, both per single input example at the
protocol's input size; times are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..protocol.spec import SEED_RANGE

__all__ = [
    "SCHEMA_VERSION",
    "BaseModelInfo",
    "Certification",
    "EpochRow",
    "Environment",
    "FinalMetrics",
    "LatencyMeasurement",
    "LayerWidth",
    "Measurements",
    "MethodRef",
    "PruneRound",
    "RunEvidence",
    "PrunedModelFile",
    "PruningStage",
    "RecipeRecord",
    "ScratchInfo",
    "ProtocolRef",
    "SuiteInfo",
    "Submission",
    "TargetInfo",
    "Timings",
    "TrainabilityInfo",
]

SCHEMA_VERSION = 1
"""Bump on any change of the submission format; old versions stay readable or are refused by name."""

Percent = float
_HEX64 = r"^[0-9a-f]{64}$"
_ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
"""ISO 8601 date and time with seconds and a UTC offset, e.g. ``2024-05-01T12:00:00+00:00``."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class SuiteInfo(_Strict):
    """The suite that produced the file."""

    version: str
    git_commit: str | None = Field(
        None, description="commit of the suite's source tree, when known"
    )


class ProtocolRef(_Strict):
    """The comparison protocol the run followed."""

    id: str
    version: int = Field(ge=1)
    content_hash: str = Field(pattern=_HEX64, description="sha256 of the protocol's canonical JSON")
    dataset_sha256: str = Field(pattern=_HEX64, description="checksum of the data actually loaded")


class MethodRef(_Strict):
    """The pruning method (plugin) and its configuration."""

    name: str
    version: str
    distribution: str = Field(description="installed distribution that provided the method")
    code_sha256: str | None = Field(None, pattern=_HEX64, description="code digest; in the run id")
    granularity: Literal["filter", "weight"]
    config: dict[str, Any]
    reinit: Literal["orthp"] | None = Field(
        None,
        description="re-initialization right after pruning (OrthP, arXiv 2301.05219); part of the run id",
    )


class Environment(_Strict):
    """Where the run happened."""

    python: str
    torch: str
    torch_pruning: str
    platform: str
    device: str = Field(description="torch device string, e.g. 'cpu' or 'cuda:0'")
    device_name: str
    num_threads: int = Field(ge=1)
    world_size: int = Field(1, ge=1, description="processes that trained together (torchrun --nproc-per-node, the protocol's batch split across them); 1 = one process")  # fmt: skip
    cpu_numerics: str | None = Field(None, max_length=200, description="what decided the CPU arithmetic: ATen's capability in force and MKL_CBWR / DNNL_MAX_CPU_ISA (pinned to AVX2 so a seed gives the same bits on any x86-64 CPU); None in files made before it was recorded")  # fmt: skip


class BaseModelInfo(_Strict):
    """The dense base model every method under the protocol starts from (setup S2)."""

    checkpoint_sha256: str = Field(pattern=_HEX64)
    source: Literal["trained", "cached", "imported", "pretrained"] = Field(
        description="trained by this run; cached (trained by the suite earlier); imported (a user's checkpoint, 'pruning-suite base import'); pretrained (published weights the protocol names, sha256-verified)"
    )
    seed: int = Field(
        ge=SEED_RANGE[0], lt=SEED_RANGE[1], description="the protocol's base-model seed"
    )
    dense_val_top1: Percent = Field(ge=0, le=100, description="dense model's val top-1, percent")
    dense_test_top1: Percent = Field(ge=0, le=100, description="dense model's test top-1, percent")
    params: int = Field(ge=1, description="parameters of the dense model (= pruning.params_dense)")


class TargetInfo(_Strict):
    """The protocol target the run aimed at."""

    id: str
    layer_ratios: dict[str, float] = Field(
        description="the target's fnmatch patterns over module names -> pruning ratio (fraction)"
    )
    sparsity: float | None = Field(
        None,
        ge=0,
        le=1,
        description="sparsity the target's ratios give under the count rule (measured by the "
        "runner on the architecture); the reference of R-TARGET-1",
    )
    speedup: float | None = Field(
        None,
        gt=0,
        description="speedup the target's ratios give (effective for weight granularity)",
    )


class LayerWidth(_Strict):
    """Units of one prunable layer before and after pruning, as measured on the model.

    Units are filters (output channels) or neurons for filter granularity, weight entries for
    weight granularity (``after`` = weights kept by the mask).
    """

    name: str
    before: int = Field(ge=1, description="units before pruning: filters/neurons, or weights")
    after: int = Field(ge=1, description="units after pruning: filters/neurons, or weights kept")
    target_ratio: float = Field(ge=0, lt=1, description="pruning ratio the target asked for")
    achieved_ratio: float = Field(ge=0, lt=1, description="(before - after) / before")


class Measurements(_Strict):
    """What the core measured after pruning (it never trusts a plugin's claim)."""

    input_shape: list[int] = Field(description="(channels, height, width) of one example")
    granularity: Literal["filter", "weight"] = Field(
        "filter",
        description="filter: units removed physically (pruned figures shrink); weight: weights "
        "masked to zero (pruned = dense figures; the effective ones count non-zero weights)",
    )
    params_dense: int = Field(ge=1)
    params_pruned: int = Field(ge=1, description="entries of the pruned model's parameters")
    params_nonzero: int | None = Field(
        None, ge=1, description="non-zero parameters right after pruning (absent in old files)"
    )
    sparsity: float = Field(
        ge=0,
        le=1,
        description="filter: 1 - params_pruned / params_dense; "
        "weight: 1 - params_nonzero / params_dense",
    )
    macs_dense: int = Field(ge=1, description="multiply-accumulates per example, dense model")
    macs_pruned: int = Field(ge=1, description="multiply-accumulates per example, pruned model")
    flops_dense: int = Field(ge=1, description="= 2 x macs_dense")
    flops_pruned: int = Field(ge=1, description="= 2 x macs_pruned")
    speedup: float = Field(gt=0, description="macs_dense / macs_pruned")
    macs_effective: int | None = Field(
        None, ge=1, description="MACs with a non-zero weight, per example (absent in old files)"
    )
    flops_effective: int | None = Field(None, ge=1, description="= 2 x macs_effective")
    effective_speedup: float | None = Field(None, gt=0, description="macs_dense / macs_effective")
    layers: list[LayerWidth] = Field(
        min_length=1, description="width of each layer the protocol lets a method prune"
    )


class LatencyMeasurement(_Strict):
    """Median inference latency of the dense and the pruned model on one device and batch size
    (``pruning_suite.engine.latency``); machine-dependent, so shown per device, never ranked."""

    device: str = Field(description="torch device type measured on: 'cpu' or 'cuda'")
    device_name: str = Field(description="the processor or GPU, e.g. 'NVIDIA H200'")
    num_threads: int = Field(ge=1, description="CPU intra-op threads during the measurement")
    batch_size: int = Field(ge=1, description="examples per forward pass")
    warmup: int = Field(ge=0, description="untimed forward passes before timing, per model")
    repeats: int = Field(ge=1, description="timed blocks per model; the median is recorded")
    dense_ms: float = Field(gt=0, description="median milliseconds per forward pass, dense model")
    pruned_ms: float = Field(gt=0, description="median milliseconds per forward pass, pruned model")
    speedup: float = Field(gt=0, description="measured speedup: dense_ms / pruned_ms")
    dense_throughput: float = Field(gt=0, description="examples per second, dense model")
    pruned_throughput: float = Field(gt=0, description="examples per second, pruned model")


class EpochRow(_Strict):
    """One retraining epoch, logged after the epoch ends."""

    epoch: int = Field(ge=0, description="0-based epoch of the retraining phase")
    lr: float = Field(gt=0, description="learning rate of this epoch")
    train_loss: float = Field(ge=0)
    val_top1: Percent = Field(ge=0, le=100, description="validation top-1 after the epoch, percent")
    test_top1: Percent = Field(ge=0, le=100, description="test top-1 after the epoch, percent")


class FinalMetrics(_Strict):
    """The reported result: the final retraining epoch's accuracies, or those of the epoch with
    the best validation top-1 at or after the last pruning step; never a best test epoch."""

    test_top1: Percent = Field(ge=0, le=100, description="test top-1 of the reported epoch")
    val_top1: Percent = Field(ge=0, le=100, description="validation top-1 of the reported epoch")
    selection: Literal["final-epoch", "best-val"] = Field(
        "final-epoch",
        description="final-epoch: the last retraining epoch; best-val: the retraining epoch with "
        "the highest validation top-1 (earliest on ties)",
    )
    selected_epoch: int | None = Field(
        None, ge=0, description="the reported retraining epoch (0-based); None = the last"
    )
    pruned_test_top1_before_retraining: Percent = Field(
        ge=0, le=100, description="test top-1 right after pruning, before any retraining, percent"
    )
    delta_top1: float = Field(
        description="test_top1 - base_model.dense_test_top1, percentage points"
    )
    test_correct: int | None = Field(
        None, ge=0, description="test examples the final model classifies right (None: older)"
    )
    test_examples: int | None = Field(None, ge=1, description="test examples evaluated, N")
    val_correct: int | None = Field(None, ge=0, description="validation examples right")
    val_examples: int | None = Field(None, ge=1, description="validation examples evaluated")


class RunEvidence(_Strict):
    """Digests binding the result to the final model (``pruning_suite.engine.evidence``)."""

    test_predictions_sha256: str = Field(
        pattern=_HEX64, description="sha256 of the final model's top-1 class per test example"
    )
    weights_sha256: str = Field(
        pattern=_HEX64, description="sha256 of the final model's state dict (names, shapes, bytes)"
    )


class RecipeRecord(_Strict):
    """The training recipe a phase actually ran with (``pruning_suite.protocol.spec.TrainRecipe``)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: str
    lr_schedule: str
    momentum: float = Field(ge=0)
    weight_decay: float = Field(ge=0)
    nesterov: bool
    augmentation: dict[str, Any]

    @field_validator("momentum", "weight_decay", mode="before")
    @classmethod
    def _whole_floats(cls, value: Any) -> Any:
        """0 in a recipe is 0.0 (JSON writers drop the '.0')."""
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class PruneRound(_Strict):
    """One prune step of the pruning stage, applied, verified and measured by the core."""

    round: int = Field(ge=1, description="1-based prune round")
    epoch: int = Field(ge=0, description="pruning-stage epochs completed when it was applied")
    widths: dict[str, int] = Field(
        description="units left in each prunable layer after the round (filters/neurons, or "
        "weights kept for weight granularity), in module order"
    )
    params: int = Field(ge=1, description="parameters of the model after the round")
    macs: int = Field(ge=0, description="MACs per example after the round (effective for weights)")


class PruningStage(_Strict):
    """The method's pruning stage (S4.1 / S4.2): 0 epochs for one-shot pruning.

    The suite runs its training and hands out its calibration data, and counts both; compute
    spent inside method code is metered (``pruning_suite.engine.meter``) and certified by
    R-STAGE-3.
    """

    epochs: int = Field(0, ge=0, description="training epochs spent inside the pruning stage")
    lr_schedule: str | None = Field(None, description="its LR schedule; None when 0 epochs")
    log: list[EpochRow] = Field(
        default_factory=list, description="one row per pruning-stage epoch (never reportable)"
    )
    rounds: list[PruneRound] = Field(
        default_factory=list, description="every prune round in order (absent in older files)"
    )
    ratio_schedule: Literal["linear", "geometric"] | None = Field(
        None, description="how the rounds' cumulative ratios grow (None in older files)"
    )
    allocation: Literal["layer", "global"] | None = Field(
        None, description="layer-wise or global allocation of the pruning (None in older files)"
    )
    training_samples: int = Field(
        0, ge=0, description="training examples the suite's pruning-stage loop passed forward"
    )
    calibration_samples: int | None = Field(
        None, ge=0, description="examples handed to the method through ctx.calibration_batches"
    )
    method_grad_samples: int | None = Field(
        None,
        ge=0,
        description="examples method code passed forward with gradients (scoring, hooks)",
    )
    method_optimizer_steps: int | None = Field(
        None, ge=0, description="optimizer steps taken inside method code (0 for a fair method)"
    )


class Certification(_Strict):
    """The strictest comparison setup the run satisfies and its division (``pruning_suite.rules.setups``)."""

    setup: Literal["S1", "S2", "S3.1", "S3.2", "S4.1", "S4.2", "SX-A", "SX-B"] | None = Field(
        description="strictest setup met (Wang et al., arXiv 2301.05219, Table 2); SX-A/SX-B for "
        "scratch baselines within their budget; None: not even S1"
    )
    division: Literal["closed", "open"] = Field(
        description="closed: S3.2 or stricter (the protocol's own retraining recipe); open: else"
    )
    unmet: list[str] = Field(default_factory=list, description="why stricter setups are unmet")
    ruleset: int | None = Field(
        None,
        ge=1,
        description="version of the rule set it was made under (pruning_suite.rules."
        "RULESET_VERSION); None: rule set 1 (files written before it was recorded)",
    )
    plugin_rules: list[str] = Field(
        default_factory=list, description="ids of the plugins' setup rules it was made under"
    )


class ScratchInfo(_Strict):
    """A scratch baseline's training budget (SX-A / SX-B; arXiv 2301.05219 Table 2)."""

    setup: Literal["SX-A", "SX-B"]
    pretrain_epochs: int = Field(ge=0, description="K1: the base model's training epochs")
    pruning_epochs: int = Field(0, ge=0, description="P: pruning-stage epochs (SX-A)")
    retraining_epochs: int = Field(ge=0, description="K2: the protocol's retraining epochs")
    flops_dense: int = Field(ge=1, description="F1: FLOPs per example, dense")
    flops_pruned: int = Field(ge=1, description="F2: FLOPs per example, the small model")
    includes_retraining: bool = Field(description="SX-B: K2 added to K1 x F1/F2")
    epochs: int = Field(ge=1, description="epochs the scratch model was trained")


class JSVSummary(_Strict):
    """Mean Jacobian singular values of logits w.r.t. input (dimensionless; arXiv 2301.05219)."""

    mean: float = Field(ge=0)
    std: float = Field(ge=0)
    max: float = Field(ge=0)
    min: float = Field(ge=0)
    cond_mean: float | None = Field(
        None, ge=0, description="mean condition number over non-zero singular values"
    )
    examples: int = Field(ge=1)
    rank_deficient: int = Field(ge=0)


class JSVRow(JSVSummary):
    """The JSV summary at one point of the run."""

    epoch: int = Field(ge=-1, description="-1: right after pruning; else the retraining epoch")


class TrainabilityInfo(_Strict):
    """Trainability (Wang et al., arXiv 2301.05219, Sec. 4): TA and mean JSV."""

    ta_val: Percent = Field(
        ge=0, le=100, description="mean val top-1 over the first LR stage of retraining"
    )
    ta_test: Percent = Field(
        ge=0, le=100, description="mean test top-1 over the first LR stage of retraining"
    )
    first_stage_epochs: int = Field(ge=1, description="epochs of the first LR stage")
    jsv_dense: JSVSummary | None = Field(
        None, description="the dense base model's JSV on the same examples (None when off)"
    )
    jsv: list[JSVRow] | None = Field(
        None,
        description="after pruning and after every retraining epoch, on 10 fixed training "
        "batches of 100; None when off (too costly for the model, or --no-jsv)",
    )


class PrunedModelFile(_Strict):
    """The retrained pruned model saved beside the submission (``run --save-model``)."""

    file: str = Field(
        pattern=r"^[0-9a-f]{12}\.pt$",
        description="bare file name '<run_id>.pt' in the submission's own folder, never a path",
    )
    sha256: str = Field(pattern=_HEX64, description="sha256 of the file's bytes")


class Timings(_Strict):
    """Wall-clock seconds of each stage."""

    base_model: float = Field(ge=0)
    pruning: float = Field(ge=0)
    retraining: float = Field(ge=0)
    total: float = Field(ge=0)


class Submission(_Strict):
    """One pruning run's result under a comparison protocol (pruning-suite, arXiv 2301.05219).

    Units: accuracies are top-1 in percent [0, 100]; sparsity and pruning ratios are fractions
    [0, 1]; MACs are multiply-accumulates and FLOPs = 2 x MACs, both per single input example;
    times are seconds.
    """

    schema_version: Literal[1] = Field(
        SCHEMA_VERSION, description="version of this file format; readers refuse unknown versions"
    )
    run_id: str = Field(
        pattern=r"^[0-9a-f]{12}$",
        description="short hash of protocol, method, config, target, seed, smoke",
    )
    created: str = Field(
        pattern=_ISO_DATETIME,
        description="time the run finished, ISO 8601 with seconds and UTC offset "
        "(e.g. 2024-05-01T12:00:00+00:00)",
    )
    suite: SuiteInfo
    protocol: ProtocolRef
    method: MethodRef
    target: TargetInfo
    seed: int = Field(
        ge=SEED_RANGE[0],
        lt=SEED_RANGE[1],
        description="seed of this run, in [0, 2**63); reports average over seeds",
    )
    smoke: bool = Field(description="reduced budget for checking a setup end to end; never ranked")
    rankable: bool = Field(
        description="false for smoke runs; report leaves such runs out of rankings"
    )
    environment: Environment
    base_model: BaseModelInfo
    pruning: Measurements
    retraining: list[EpochRow] = Field(min_length=1)
    final: FinalMetrics
    timings: Timings
    pruned_model: PrunedModelFile | None = Field(
        None, description="the saved retrained model, when the run saved it"
    )
    retraining_override: dict[str, Any] | None = Field(
        None,
        description="recipe fields the run changed from the protocol's (open division); part "
        "of the run id",
    )
    retraining_recipe: RecipeRecord | None = Field(
        None, description="the recipe retraining ran with (absent in older files)"
    )
    pruning_stage: PruningStage | None = Field(
        None, description="the method's pruning stage (absent in older files)"
    )
    evidence: RunEvidence | None = Field(
        None,
        description="digests of the final model's predictions and weights (absent in older files)",
    )
    certification: Certification | None = Field(
        None, description="strictest comparison setup met and division (absent in older files)"
    )
    trainability: TrainabilityInfo | None = Field(
        None, description="trainability accuracy and mean JSV (absent in older files)"
    )
    scratch: ScratchInfo | None = Field(
        None, description="set for scratch baselines only: their SX-A / SX-B budget"
    )
    latency: list[LatencyMeasurement] | None = Field(
        None,
        description="measured latency of the dense and pruned model, batch 1 and 64, on the CPU "
        "and on CUDA when present (absent in older files); never a rule input",
    )

    @field_validator("created")
    @classmethod
    def _real_datetime(cls, value: str) -> str:
        """The pattern fixes the form; this refuses dates that do not exist (2024-02-30)."""
        try:
            datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"not a real date and time: {err}") from err
        return value
