"""The sections of a comparison protocol: data, architecture, recipes, targets, budgets, references.

Each is a frozen pydantic model with unknown keys refused; :class:`~pruning_suite.protocol.spec.
ComparisonProtocol` assembles them. Every field's description lands in ``schemas/protocol.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..contract.registry import NAME_PATTERN
from ..errors import ProtocolError
from .ratios import RatioSpec, ResNetStages, parse_ratio_spec
from .schedule import MAX_EPOCHS, lr_at, parse_schedule, stage_ranges

MAX_BATCH_SIZE = 1 << 20
"""The largest batch size a recipe may name (2**20 examples); more cannot fit any device."""

__all__ = [
    "ArchitectureSpec",
    "Augmentation",
    "BaseModelSpec",
    "BaseReference",
    "DatasetSpec",
    "Frozen",
    "PretrainedWeights",
    "PruningBudget",
    "PruningTarget",
    "Reference",
    "ScratchBudget",
    "SEED_RANGE",
    "TargetTolerance",
    "TrainRecipe",
]


SEED_RANGE = (0, 2**63)
"""Seeds are integers in [0, 2**63): torch generators take them without aliasing."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Augmentation(Frozen):
    """Training-time augmentation, applied on the device in batches."""

    random_crop_padding: int = Field(
        0,
        ge=0,
        description="zero padding (pixels) before a random crop back to the input size; 0 = off",
    )
    horizontal_flip: bool = Field(
        False, description="flip each image left-right with probability 0.5"
    )


class TrainRecipe(Frozen):
    """An SGD training recipe: the paper holds all of it equal across compared methods (S3.2)."""

    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(ge=1, le=MAX_BATCH_SIZE)
    optimizer: Literal["sgd"] = "sgd"
    lr_schedule: str = Field(
        description="piecewise-constant, 'epoch:lr,...', epochs counted from the phase start"
    )
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    nesterov: bool = False
    augmentation: Augmentation = Augmentation()

    @field_validator("lr_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def stages(self) -> tuple[tuple[int, float], ...]:
        """The parsed LR schedule, ``((epoch, lr), ...)``."""
        return parse_schedule(self.lr_schedule)

    def lr_at(self, epoch: int) -> float:
        """The LR of 0-based ``epoch`` of this phase."""
        return lr_at(self.stages, epoch)

    def first_stage_epochs(self) -> range:
        """Epochs of the first LR stage (the paper's trainability-accuracy window)."""
        return stage_ranges(self.stages, self.epochs)[0]


class DatasetSpec(Frozen):
    """Which data, how it is split and normalized, and the checksum that pins it."""

    name: str = Field(
        pattern=NAME_PATTERN,
        description=(
            "a registered dataset (hook register_datasets; built in: digits, fashion-mnist, "
            "mnist, cifar10, cifar100, imagenet, imagenet100)"
        ),
    )
    sha256: str = Field(
        pattern=r"^([0-9a-f]{64}|unpinned)$",
        description=(
            "sha256 of the decoded arrays (see pruning_suite.data.datasets; for image folders of the file "
            "paths and sizes, see pruning_suite.data.imagefolder), or 'unpinned' for a protocol "
            "whose data the maintainers could not checksum: loading then computes the checksum "
            "without verifying it, and every submission records the value computed"
        ),
    )
    num_classes: int = Field(ge=2, le=1_000_000)
    input_shape: tuple[int, int, int] = Field(
        description="(channels, height, width) fed to the model; each at most 4096"
    )
    mean: tuple[float, ...] = Field(
        description="per-channel normalization mean, on pixel values scaled to [0, 1]"
    )
    std: tuple[float, ...] = Field(
        description="per-channel normalization std, on pixel values scaled to [0, 1]"
    )
    val_size: int = Field(ge=1, description="validation examples carved from the training set")
    test_size: int | None = Field(
        None,
        ge=1,
        description="held-out test examples, only for data without an official test split",
    )
    split_seed: int = Field(
        0, description="seed of the train/validation(/test) split; fixed per protocol"
    )
    eval_resize: int | None = Field(
        None,
        ge=1,
        description=(
            "image folders only (required there): evaluation images' shorter side is resized to "
            "this, then center-cropped to input_shape's H x W (torchvision's Resize(256) + "
            "CenterCrop(224)); training images get RandomResizedCrop(H x W)"
        ),
    )
    class_list: str | None = Field(
        None,
        description=(
            "imagenet100 only: the committed class-list file (pruning_suite/protocol/files/<name>) "
            "whose classes are used, labelled by position; None = the dataset's default list"
        ),
    )

    @model_validator(mode="after")
    def _shapes_consistent(self) -> DatasetSpec:
        if any(not 1 <= dim <= 4096 for dim in self.input_shape):
            raise ValueError(
                f"input_shape {list(self.input_shape)} must be (C, H, W) with each in [1, 4096]"
            )
        channels = self.input_shape[0]
        if not len(self.mean) == len(self.std) == channels:
            raise ValueError(f"mean and std need one value per input channel ({channels})")
        if any(value <= 0 for value in self.std):
            raise ValueError("every std must be > 0")
        return self


class ArchitectureSpec(Frozen):
    """A model from the suite's registry (``pruning_suite.engine.models``) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class PretrainedWeights(Frozen):
    """Published weights the base model is loaded from instead of being trained by the suite.

    The file is looked for in the suite's base-model cache (``pruning-suite base import FILE``)
    and in torch's hub cache (``torch.hub.get_dir()/checkpoints``: ``$TORCH_HOME/hub`` or
    ``~/.cache/torch/hub``), where torchvision's ``weights.get_state_dict()`` downloads it.
    """

    file_name: str = Field(
        pattern=r"^[A-Za-z0-9._-]+$",
        description="the weights file's name, e.g. torchvision's 'resnet50-0676ba61.pth'",
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{8,64}$",
        description=(
            "expected sha256 of the file: all 64 hex digits, or a prefix of at least 8 (torchvision "
            "file names embed the first 8, which is all torch.hub's check_hash verifies); a prefix "
            "leaves the rest of the digest unverified"
        ),
    )
    torchvision_weights: str | None = Field(
        None,
        description="torchvision's weights enum, e.g. 'ResNet50_Weights.IMAGENET1K_V1' (how to get the file)",
    )
    top1: float | None = Field(
        None, ge=0, le=100, description="the publisher's top-1 accuracy of these weights, percent"
    )


class BaseModelSpec(Frozen):
    """The dense base model every compared method starts from (setup S2).

    Trained by the suite with ``recipe``; or, when ``pretrained`` is set, those published weights,
    and ``recipe`` then records how they were trained (the suite does not run it; it gives the
    pretraining epochs K1 of the scratch budgets SX-A / SX-B).
    """

    recipe: TrainRecipe
    seed: int = Field(
        0,
        ge=SEED_RANGE[0],
        lt=SEED_RANGE[1],
        description="one base model per protocol, shared by every run and method",
    )
    pretrained: PretrainedWeights | None = Field(
        None, description="start from these published weights instead of training (e.g. ImageNet)"
    )


class PruningTarget(Frozen):
    """A pruning target: layer-wise pruning ratios, or a MACs budget.

    Written in one of three forms (exactly one is given):

    - ``layer_ratios``: fnmatch patterns over module names -> ratios in [0, 1) (fraction of a
      layer's filters/neurons removed), in the suite's one ratio language
      (:mod:`pruning_suite.protocol.ratios`); later patterns override earlier ones; a layer no
      pattern matches gets 0 (e.g. ``{"*layer*.conv1" = 0.9}``);
    - ``stage_ratios``: one ratio per stage of a ResNet-style network: stem, ``layer1`` ..
      ``layerK``, classifier (e.g. ResNet-50 at 2.31x: ``[0, 0.6, 0.6, 0.6, 0.21, 0]``);
    - ``speedup`` (a budget target): only the cost is fixed, dense MACs / pruned MACs ``>=
      speedup`` (effective MACs for weight granularity), so methods with their own allocation
      (global ranking, learned ratios) are certified at equal MACs; R-TARGET-1 then requires only
      the speedup. Its layer ratios depend on the model: the core computes them
      (:func:`pruning_suite.engine.budget.target_ratios`, the uniform ratio that first reaches the
      speedup; :func:`pruning_suite.engine.budget.budget_ratios` for global allocation).

    ``skip`` patterns always get 0 (ratio forms only). The protocol's ``prunable_layers`` still
    decides which layers may be pruned at all. The number removed from a layer of ``n`` units is
    ``min(ceil(ratio * n), n - 1)`` (:func:`pruning_suite.engine.pruning.units_to_remove`).
    """

    id: str
    description: str = ""
    layer_ratios: dict[str, float] | None = None
    stage_ratios: tuple[float, ...] | None = None
    speedup: float | None = Field(
        None,
        gt=1.0,
        le=1e6,
        description="budget target: dense MACs / pruned MACs must reach this (effective MACs "
        "for weight granularity); layer ratios are then the method's or the core's allocation",
    )
    skip: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> PruningTarget:
        forms = (self.layer_ratios, self.stage_ratios, self.speedup)
        if sum(form is not None for form in forms) != 1:
            raise ValueError(
                "give exactly one of layer_ratios (patterns), stage_ratios (per stage) or "
                "speedup (a MACs budget)"
            )
        if self.speedup is not None:
            if self.skip:
                raise ValueError(
                    "skip applies to ratio targets; for a speedup target narrow the protocol's "
                    "prunable_layers instead"
                )
            return self
        try:
            self.spec  # noqa: B018 -- parses and range-checks every ratio
        except ProtocolError as err:
            raise ValueError(err.message) from None
        return self

    @property
    def is_budget(self) -> bool:
        """True for a budget target (``speedup`` only), whose ratios depend on the model."""
        return self.speedup is not None

    @property
    def spec(self) -> RatioSpec:
        """The target as a :class:`~pruning_suite.protocol.ratios.RatioSpec`.

        Raises:
            ProtocolError: A budget target (it has no ratios of its own).
        """
        self._refuse_budget()
        if self.stage_ratios is not None:
            return parse_ratio_spec(json.dumps(list(self.stage_ratios)), skip=self.skip)
        return RatioSpec.from_layer_ratios(self.layer_ratios or {}, skip=self.skip)

    def resolve(self, layer_names: Sequence[str]) -> dict[str, float]:
        """The ratio of each prunable layer under this (ratio) target.

        Args:
            layer_names: Prunable module names, e.g. ``["layer1.0.conv1", ...]``.

        Returns:
            Layer name -> ratio in [0, 1), in the order given.

        Raises:
            ProtocolError: A per-stage list whose length does not fit the network's stages, or a
                layer outside every stage; a budget target, whose ratios need the model
                (:func:`pruning_suite.engine.budget.target_ratios`).
        """
        stage_of = None
        if self.stage_ratios is not None:
            stage_of = ResNetStages(num_layers=len(self.stage_ratios) - 2)
        return self.spec.resolve(list(layer_names), stage_of, strict=False)

    def ratio_for(self, layer_name: str) -> float:
        """The pruning ratio of ``layer_name`` under this target (0.0 when nothing matches)."""
        return self.resolve([layer_name])[layer_name]

    def _refuse_budget(self) -> None:
        if self.speedup is not None:
            raise ProtocolError(
                f"target {self.id!r} fixes only a MACs speedup ({self.speedup:g}x); its layer "
                "ratios depend on the model",
                "resolve it with pruning_suite.engine.budget.target_ratios (or budget_ratios "
                "for global allocation)",
            )


MAX_TIME_LIMIT_S = 30 * 24 * 3600.0
"""The largest pruning-stage time limit a protocol may set: 30 days, in seconds."""


class PruningBudget(Frozen):
    """What a method may spend in its pruning stage (setups S4.1 / S4.2); 0 epochs = one-shot.

    The suite runs the pruning stage's training itself (``epochs`` epochs over the training split
    with the retraining recipe's batch size, optimizer and augmentation, and this ``lr_schedule``)
    and hands out calibration data itself, so both are counted in samples seen and certified
    (R-STAGE-1..3).
    """

    epochs: int = Field(0, ge=0, le=MAX_EPOCHS)
    lr_schedule: str | None = Field(
        None,
        description="'epoch:lr,...' for the pruning stage's training; required when epochs > 0",
    )
    calibration_samples: int = Field(
        2048,
        ge=0,
        le=10_000_000,
        description="training examples a method may draw through ctx.calibration_batches (and "
        "pass forward with gradients while scoring), over the whole pruning stage",
    )
    time_limit_s: float = Field(
        3600.0,
        gt=0,
        le=MAX_TIME_LIMIT_S,
        description="wall-clock seconds the pruning stage's process may run (the method's code "
        "and the stage's training), then it is stopped: a method that hangs ends the run",
    )

    @field_validator("lr_schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_schedule(value)
        return value

    @model_validator(mode="after")
    def _schedule_when_training(self) -> PruningBudget:
        if self.epochs > 0 and self.lr_schedule is None:
            raise ValueError("a pruning budget with epochs > 0 needs an lr_schedule ('0:0.01')")
        return self


class BaseReference(Frozen):
    """The protocol's own base model, pinned: setup S2 means starting from exactly this model.

    Deltas in ranking tables are computed against ``dense_test_top1`` when it is given, never
    against a number taken from a submission (Wang et al., arXiv 2301.05219, Sec. 3, S2).
    """

    checkpoint_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="sha256 of the base checkpoint (state_dict)"
    )
    dense_test_top1: float | None = Field(
        None, ge=0, le=100, description="the base model's dense test top-1, percent"
    )


class TargetTolerance(Frozen):
    """How close the achieved sparsity and speedup must be to the target's (setup S1)."""

    sparsity: float = Field(
        0.01, ge=0, le=1, description="absolute, as a fraction: 0.01 = 1 percentage point"
    )
    speedup: float = Field(0.02, ge=0, description="relative: 0.02 = within 2% of the target's")


class ScratchBudget(Frozen):
    """How the training budget of a scratch baseline is computed (SX-A / SX-B, arXiv 2301.05219)."""

    includes_retraining: bool = Field(
        True,
        description="SX-B: whether the retraining epochs K2 are added to K1 x F1/F2 "
        "(scratch epochs = K1 x F1/F2 + K2, or K1 x F1/F2 alone)",
    )


class Reference(Frozen):
    """A published number shown beside the suite's own results.

    ``method = "dense"`` with an empty ``target`` is the published accuracy of the dense base model.
    """

    source: str
    method: str
    target: str = Field("", description="the protocol target it belongs to; '' for the dense model")
    top1: float = Field(ge=0, le=100)
    std: float | None = Field(None, ge=0)
    note: str = ""
    statistic: str = Field(
        "",
        description=(
            "how the number was computed, e.g. 'best-epoch test accuracy, population std' "
            "(the suite ranks final-epoch or validation-selected accuracy, sample std)"
        ),
    )
    sparsity: float | None = Field(
        None, ge=0, le=1, description="the publication's reported sparsity, a fraction"
    )
    speedup: float | None = Field(
        None, gt=0, description="the publication's reported speedup (dense MACs / pruned MACs)"
    )
