"""The comparison protocol: the frozen, versioned contract every compared run shares.

A protocol fixes everything that is not the pruning method (Wang et al., arXiv 2301.05219, Sec. 3:
"the performance advantage of a pruning paper should be attributed to the pruning stage"): the
dataset and its checksum, the validation split, the architecture, the base-model recipe, which
layers may be pruned, the pruning targets, the retraining recipe and the number of seeds.

Protocol files are TOML, one protocol per file, the file name equal to the protocol id; the suite
ships its own in ``pruning_suite/protocol/files/`` and plugins add folders of theirs
(:mod:`pruning_suite.protocol.catalogue` finds them). Bump ``version`` whenever a change can move a
number. The sections of a protocol live in :mod:`pruning_suite.protocol.sections`; import all of
it from :mod:`pruning_suite.protocol.spec`.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import ProtocolError
from .sections import (
    NAME_PATTERN,
    ArchitectureSpec,
    BaseModelSpec,
    BaseReference,
    DatasetSpec,
    Frozen,
    PruningBudget,
    PruningTarget,
    Reference,
    ScratchBudget,
    TargetTolerance,
    TrainRecipe,
)

__all__ = ["DEFAULT_PROTOCOL", "ComparisonProtocol", "canonical_json", "load_protocol_file"]

DEFAULT_PROTOCOL = "digits-convnet"
"""The zero-setup protocol, on scikit-learn's embedded ``load_digits``."""

_ID = re.compile(NAME_PATTERN)


class ComparisonProtocol(Frozen):
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
    seeds: int = Field(3, ge=1, le=1000, description="runs per method needed for a ranked result")
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


MAX_PROTOCOL_BYTES = 1 << 20
"""The largest protocol file read (1 MiB; the shipped ones are under 10 KiB)."""


def _bounded_text(path: Path) -> str:
    """The file's text, refusing a non-regular file (``/dev/zero``) or one over 1 MiB unread."""
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_file():
        raise ProtocolError(
            f"protocol file {path} is not a regular file", "name a .toml file holding a protocol"
        )
    with open(resolved, "rb") as handle:
        data = handle.read(MAX_PROTOCOL_BYTES + 1)
    if len(data) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(
            f"protocol file {path} is over {MAX_PROTOCOL_BYTES:,} bytes",
            "a protocol is a small TOML file; check the path",
        )
    return data.decode("utf-8")


def load_protocol_file(path: Path) -> ComparisonProtocol:
    """Load and validate one protocol TOML file.

    Raises:
        ProtocolError: The file cannot be read, is not TOML, or does not validate; the message
            lists every problem with its field path.
    """
    try:
        data = tomllib.loads(_bounded_text(Path(path)))
    except RecursionError as err:
        raise ProtocolError(
            f"protocol file {path} nests tables or arrays too deeply", "a protocol is flat TOML"
        ) from err
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
