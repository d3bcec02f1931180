"""Comparison protocols: the frozen, versioned contract every compared run shares.

A protocol fixes everything that is not the pruning method (Wang et al., arXiv 2301.05219, Sec. 3:
"the performance advantage of a pruning paper should be attributed to the pruning stage"): the
dataset and its checksum, the validation split, the architecture, the base-model recipe, which
layers may be pruned, the pruning targets, the retraining recipe and the number of seeds.

Protocol files are TOML, shipped inside the package (``pruning_suite/protocol/files/*.toml``), one
protocol per file, the file name equal to the protocol id. Bump ``version`` whenever a change can
move a number.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ProtocolError
from .ratios import RatioSpec, ResNetStages, parse_ratio_spec
from .schedule import lr_at, parse_schedule, stage_ranges

__all__ = [
    "ArchitectureSpec",
    "Augmentation",
    "BaseModelSpec",
    "BaseReference",
    "ComparisonProtocol",
    "DatasetSpec",
    "PretrainedWeights",
    "PruningBudget",
    "PruningTarget",
    "Reference",
    "ScratchBudget",
    "TargetTolerance",
    "TrainRecipe",
    "DEFAULT_PROTOCOL",
    "list_protocols",
    "load_protocol",
    "load_protocol_file",
]

DEFAULT_PROTOCOL = "digits-convnet"
"""The zero-setup protocol, on scikit-learn's embedded ``load_digits``."""

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


SEED_RANGE = (0, 2**63)
"""Seeds are integers in [0, 2**63): torch generators take them without aliasing."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Augmentation(_Frozen):
    """Training-time augmentation, applied on the device in batches."""

    random_crop_padding: int = Field(
        0,
        ge=0,
        description="zero padding (pixels) before a random crop back to the input size; 0 = off",
    )
    horizontal_flip: bool = Field(
        False, description="flip each image left-right with probability 0.5"
    )


class TrainRecipe(_Frozen):
    """An SGD training recipe: the paper holds all of it equal across compared methods (S3.2)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
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


class DatasetSpec(_Frozen):
    """Which data, how it is split and normalized, and the checksum that pins it."""

    name: Literal[
        "digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet", "imagenet100"
    ]
    sha256: str = Field(
        pattern=r"^([0-9a-f]{64}|unpinned)$",
        description=(
            "sha256 of the decoded arrays (see pruning_suite.data.datasets; for image folders of the file "
            "paths and sizes, see pruning_suite.data.imagefolder), or 'unpinned' for a protocol "
            "whose data the maintainers could not checksum: loading then computes the checksum "
            "without verifying it, and every submission records the value computed"
        ),
    )
    num_classes: int = Field(ge=2)
    input_shape: tuple[int, int, int] = Field(
        description="(channels, height, width) fed to the model"
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
        if any(dim < 1 for dim in self.input_shape):
            raise ValueError(f"input_shape {list(self.input_shape)} must be positive (C, H, W)")
        channels = self.input_shape[0]
        if not len(self.mean) == len(self.std) == channels:
            raise ValueError(f"mean and std need one value per input channel ({channels})")
        if any(value <= 0 for value in self.std):
            raise ValueError("every std must be > 0")
        return self


class ArchitectureSpec(_Frozen):
    """A model from the suite's registry (``pruning_suite.engine.models``) and its keyword arguments."""

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)


class PretrainedWeights(_Frozen):
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


class BaseModelSpec(_Frozen):
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


class PruningTarget(_Frozen):
    """A pruning target: layer-wise pruning ratios (fraction of a layer's filters/neurons removed).

    Written in the suite's one ratio language (:mod:`pruning_suite.protocol.ratios`), in one of two forms:

    - ``layer_ratios``: fnmatch patterns over module names -> ratios in [0, 1); later patterns
      override earlier ones; a layer no pattern matches gets 0 (e.g. ``{"*layer*.conv1" = 0.9}``);
    - ``stage_ratios``: one ratio per stage of a ResNet-style network: stem, ``layer1`` ..
      ``layerK``, classifier (e.g. ResNet-50 at 2.31x: ``[0, 0.6, 0.6, 0.6, 0.21, 0]``).

    ``skip`` patterns always get 0. The protocol's ``prunable_layers`` still decides which layers
    may be pruned at all. The number removed from a layer of ``n`` units is
    ``min(ceil(ratio * n), n - 1)`` (:func:`pruning_suite.engine.pruning.units_to_remove`).
    """

    id: str
    description: str = ""
    layer_ratios: dict[str, float] | None = None
    stage_ratios: tuple[float, ...] | None = None
    skip: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_form(self) -> PruningTarget:
        if (self.layer_ratios is None) == (self.stage_ratios is None):
            raise ValueError(
                "give exactly one of layer_ratios (patterns) or stage_ratios (per stage)"
            )
        try:
            self.spec  # noqa: B018 -- parses and range-checks every ratio
        except ProtocolError as err:
            raise ValueError(err.message) from None
        return self

    @property
    def spec(self) -> RatioSpec:
        """The target as a :class:`~pruning_suite.protocol.ratios.RatioSpec`."""
        if self.stage_ratios is not None:
            return parse_ratio_spec(json.dumps(list(self.stage_ratios)), skip=self.skip)
        return RatioSpec.from_layer_ratios(self.layer_ratios or {}, skip=self.skip)

    def resolve(self, layer_names: Sequence[str]) -> dict[str, float]:
        """The ratio of each prunable layer under this target.

        Args:
            layer_names: Prunable module names, e.g. ``["layer1.0.conv1", ...]``.

        Returns:
            Layer name -> ratio in [0, 1), in the order given.

        Raises:
            ProtocolError: A per-stage list whose length does not fit the network's stages, or a
                layer outside every stage.
        """
        stage_of = None
        if self.stage_ratios is not None:
            stage_of = ResNetStages(num_layers=len(self.stage_ratios) - 2)
        return self.spec.resolve(list(layer_names), stage_of, strict=False)

    def ratio_for(self, layer_name: str) -> float:
        """The pruning ratio of ``layer_name`` under this target (0.0 when nothing matches)."""
        return self.resolve([layer_name])[layer_name]


class PruningBudget(_Frozen):
    """What a method may spend in its pruning stage (setups S4.1 / S4.2); 0 epochs = one-shot."""

    epochs: int = Field(0, ge=0)
    lr_schedule: str | None = None


class BaseReference(_Frozen):
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


class TargetTolerance(_Frozen):
    """How close the achieved sparsity and speedup must be to the target's (setup S1)."""

    sparsity: float = Field(
        0.01, ge=0, le=1, description="absolute, as a fraction: 0.01 = 1 percentage point"
    )
    speedup: float = Field(0.02, ge=0, description="relative: 0.02 = within 2% of the target's")


class ScratchBudget(_Frozen):
    """How the training budget of a scratch baseline is computed (SX-A / SX-B, arXiv 2301.05219)."""

    includes_retraining: bool = Field(
        True,
        description="SX-B: whether the retraining epochs K2 are added to K1 x F1/F2 "
        "(scratch epochs = K1 x F1/F2 + K2, or K1 x F1/F2 alone)",
    )


class Reference(_Frozen):
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


class ComparisonProtocol(_Frozen):
    """One comparison protocol (see the module docstring). Frozen; unknown keys are errors."""

    id: str
    version: int = Field(ge=1)
    title: str
    description: str = ""
    dataset: DatasetSpec
    architecture: ArchitectureSpec
    granularity: Literal["filter", "weight"] = Field(
        "filter",
        description="filter: whole filters/neurons removed physically; weight: individual "
        "weights masked to zero and held at zero through retraining",
    )
    prunable_layers: tuple[str, ...] = Field(
        min_length=1,
        description="fnmatch patterns over module names; the output layer is never pruned",
    )
    targets: tuple[PruningTarget, ...] = Field(min_length=1)
    default_target: str
    base_model: BaseModelSpec
    retraining: TrainRecipe
    pruning_budget: PruningBudget = PruningBudget()
    base_reference: BaseReference | None = Field(
        None, description="the pinned base model (S2) and its dense accuracy, when known"
    )
    target_tolerance: TargetTolerance = TargetTolerance()
    scratch: ScratchBudget = ScratchBudget()
    seeds: int = Field(3, ge=1, description="runs per method needed for a ranked result")
    references: tuple[Reference, ...] = ()

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("protocol id must be lower-case letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _targets_consistent(self) -> ComparisonProtocol:
        ids = [t.id for t in self.targets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"target ids must be unique, got {ids}")
        if self.default_target not in ids:
            raise ValueError(
                f"default_target {self.default_target!r} is not one of the targets {ids}"
            )
        return self

    @model_validator(mode="after")
    def _folder_augmentation(self) -> ComparisonProtocol:
        """Image folders are augmented by RandomResizedCrop (+ flip); a padded crop would be ignored."""
        if self.dataset.name in ("imagenet", "imagenet100"):
            for name, recipe in (
                ("base_model.recipe", self.base_model.recipe),
                ("retraining", self.retraining),
            ):
                if recipe.augmentation.random_crop_padding:
                    raise ValueError(
                        f"{name}.augmentation.random_crop_padding must be 0 for image-folder data "
                        "(it is trained with RandomResizedCrop); remove it"
                    )
        return self

    @property
    def content_hash(self) -> str:
        """sha256 of the protocol's canonical JSON, recorded in every submission.

        Canonical: sorted keys, no whitespace, fields left at their default omitted, so adding an
        optional field to the protocol format does not change the hash of existing protocols.
        """
        content = self.model_dump(mode="json", exclude_defaults=True)
        return hashlib.sha256(canonical_json(content).encode()).hexdigest()

    def target(self, target_id: str | None) -> PruningTarget:
        """The target named ``target_id`` (the default target when None).

        Raises:
            ProtocolError: ``target_id`` is not one of this protocol's targets.
        """
        wanted = target_id or self.default_target
        for target in self.targets:
            if target.id == wanted:
                return target
        known = ", ".join(t.id for t in self.targets)
        raise ProtocolError(
            f"protocol {self.id!r} has no target {wanted!r}",
            f"use one of: {known} (see 'pruning-suite protocols show {self.id}')",
        )


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the input of every content hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def load_protocol_file(path: Path) -> ComparisonProtocol:
    """Load and validate one protocol TOML file.

    Raises:
        ProtocolError: The file cannot be read, is not TOML, or does not validate; the message
            lists every problem with its field path.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ProtocolError(
            f"protocol file {path} is not UTF-8 text", "save it as UTF-8 TOML"
        ) from err
    except OSError as err:
        raise ProtocolError(
            f"cannot read protocol file {path}: {err.strerror}", "check the path"
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise ProtocolError(
            f"protocol file {path} is not valid TOML: {err}", "fix the TOML syntax"
        ) from err
    try:
        return ComparisonProtocol.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        )
        raise ProtocolError(
            f"protocol file {path} is malformed: {problems}",
            "compare it with 'pruning-suite protocols show digits-convnet'",
        ) from err


def _protocol_files() -> dict[str, Any]:
    root = resources.files("pruning_suite.protocol.files")
    return {p.name[: -len(".toml")]: p for p in root.iterdir() if p.name.endswith(".toml")}


def _no_shadowing(protocol: ComparisonProtocol, path: str) -> ComparisonProtocol:
    """Refuse a protocol file that reuses a shipped protocol's id and version with other content.

    Results are filed and ranked by protocol id and version, so such a file would mix runs under
    another recipe into the shipped protocol's tables (and overwrite its run files).
    """
    if protocol.id not in _protocol_files():
        return protocol
    shipped = load_protocol(protocol.id)
    if shipped.version == protocol.version and shipped.content_hash != protocol.content_hash:
        raise ProtocolError(
            f"protocol file {path} reuses the id and version of the shipped protocol "
            f"{protocol.id}@{protocol.version} but differs from it",
            "give your protocol a new id (or bump its version) so its results are not ranked "
            "with the shipped protocol's",
        )
    return protocol


def list_protocols() -> list[ComparisonProtocol]:
    """Every protocol shipped with the suite, sorted by id."""
    return [load_protocol(pid) for pid in sorted(_protocol_files())]


def load_protocol(protocol_id: str | None) -> ComparisonProtocol:
    """Load a shipped protocol by id, or a protocol file by path (anything ending in ``.toml``).

    Args:
        protocol_id: A shipped protocol id, a path to a ``.toml`` file, or None for the default.

    Raises:
        ProtocolError: Unknown id ("did you mean" included), or a malformed file.
    """
    protocol_id = protocol_id or DEFAULT_PROTOCOL
    if protocol_id.endswith(".toml"):
        return _no_shadowing(load_protocol_file(Path(protocol_id)), protocol_id)
    files = _protocol_files()
    if protocol_id not in files:
        from difflib import get_close_matches

        close = get_close_matches(protocol_id, list(files), n=3)
        guess = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ProtocolError(
            f"unknown protocol {protocol_id!r}",
            f"{guess}known protocols: {', '.join(sorted(files))} ('pruning-suite protocols' lists them)",
        )
    with resources.as_file(files[protocol_id]) as path:
        protocol = load_protocol_file(path)
    if protocol.id != protocol_id:
        raise ProtocolError(
            f"protocol file {protocol_id}.toml declares id {protocol.id!r}", "make them equal"
        )
    return protocol
