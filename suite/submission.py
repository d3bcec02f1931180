"""The submission: one JSON file per run, with full provenance.

The pydantic models here are the single source of truth; ``schemas/submission.schema.json``
(JSON Schema Draft 2020-12) is generated from them (``python -m pruning_suite.schema``) so that
third parties can validate a submission with any jsonschema implementation, without the suite.

Units: accuracies are top-1 in percent [0, 100]; sparsity and pruning ratios are fractions [0, 1];
MACs are multiply-accumulates and FLOPs = 2 x MACs, both per single input example at the
protocol's input size; times are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .protocol import SEED_RANGE

__all__ = [
    "SCHEMA_VERSION",
    "BaseModelInfo",
    "EpochRow",
    "Environment",
    "FinalMetrics",
    "LayerWidth",
    "Measurements",
    "MethodRef",
    "PrunedModelFile",
    "ProtocolRef",
    "SuiteInfo",
    "Submission",
    "TargetInfo",
    "Timings",
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
    granularity: Literal["filter", "weight"]
    config: dict[str, Any]


class Environment(_Strict):
    """Where the run happened."""

    python: str
    torch: str
    torch_pruning: str
    platform: str
    device: str = Field(description="torch device string, e.g. 'cpu' or 'cuda:0'")
    device_name: str
    num_threads: int = Field(ge=1)


class BaseModelInfo(_Strict):
    """The dense base model every method under the protocol starts from (setup S2)."""

    checkpoint_sha256: str = Field(pattern=_HEX64)
    source: Literal["trained", "cached"]
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


class EpochRow(_Strict):
    """One retraining epoch, logged after the epoch ends."""

    epoch: int = Field(ge=0, description="0-based epoch of the retraining phase")
    lr: float = Field(gt=0, description="learning rate of this epoch")
    train_loss: float = Field(ge=0)
    val_top1: Percent = Field(ge=0, le=100, description="validation top-1 after the epoch, percent")
    test_top1: Percent = Field(ge=0, le=100, description="test top-1 after the epoch, percent")


class FinalMetrics(_Strict):
    """The reported result: the final retraining epoch's accuracies (never a best epoch)."""

    test_top1: Percent = Field(ge=0, le=100, description="test top-1 of the last logged epoch")
    val_top1: Percent = Field(ge=0, le=100, description="validation top-1 of the last logged epoch")
    pruned_test_top1_before_retraining: Percent = Field(
        ge=0, le=100, description="test top-1 right after pruning, before any retraining, percent"
    )
    delta_top1: float = Field(
        description="test_top1 - base_model.dense_test_top1, percentage points"
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

    @field_validator("created")
    @classmethod
    def _real_datetime(cls, value: str) -> str:
        """The pattern fixes the form; this refuses dates that do not exist (2024-02-30)."""
        try:
            datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"not a real date and time: {err}") from err
        return value
