"""The submission: one JSON file per run, with full provenance.

The pydantic models here are the single source of truth; ``schemas/submission.schema.json``
(JSON Schema Draft 2020-12) is generated from them (``python -m pruning_suite.schema``) so that
third parties can validate a submission with any jsonschema implementation, without the suite.

Units: accuracies are top-1 in percent [0, 100]; sparsity and pruning ratios are fractions [0, 1];
MACs are multiply-accumulates and FLOPs = 2 x MACs, both per single input example at the
protocol's input size; times are seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "BaseModelInfo",
    "EpochRow",
    "Environment",
    "FinalMetrics",
    "LayerWidth",
    "Measurements",
    "MethodRef",
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
    granularity: Literal["filter"]
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
    seed: int
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
    """Width of one prunable layer before and after pruning, as measured on the model."""

    name: str
    before: int = Field(ge=1, description="filters (output channels) or neurons before pruning")
    after: int = Field(ge=1, description="filters (output channels) or neurons after pruning")
    target_ratio: float = Field(ge=0, lt=1, description="pruning ratio the target asked for")
    achieved_ratio: float = Field(ge=0, lt=1, description="(before - after) / before")


class Measurements(_Strict):
    """What the core measured after pruning (it never trusts a plugin's claim)."""

    input_shape: list[int] = Field(description="(channels, height, width) of one example")
    params_dense: int = Field(ge=1)
    params_pruned: int = Field(ge=1)
    sparsity: float = Field(ge=0, le=1, description="1 - params_pruned / params_dense")
    macs_dense: int = Field(ge=1, description="multiply-accumulates per example, dense model")
    macs_pruned: int = Field(ge=1, description="multiply-accumulates per example, pruned model")
    flops_dense: int = Field(ge=1, description="= 2 x macs_dense")
    flops_pruned: int = Field(ge=1, description="= 2 x macs_pruned")
    speedup: float = Field(gt=0, description="macs_dense / macs_pruned")
    layers: list[LayerWidth]


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
    created: str = Field(description="UTC time the run finished, ISO 8601")
    suite: SuiteInfo
    protocol: ProtocolRef
    method: MethodRef
    target: TargetInfo
    seed: int = Field(description="seed of this run; reports average over seeds")
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
