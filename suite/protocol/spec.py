"""Comparison protocols, the public face: the pydantic models, reading a file, the catalogue.

A protocol fixes everything that is not the pruning method (Wang et al., arXiv 2301.05219, Sec. 3):
the dataset and its checksum, the validation split, the architecture, the base-model recipe, which
layers may be pruned, the pruning targets, the retraining recipe and the number of seeds. The
models live in :mod:`~pruning_suite.protocol.sections` and :mod:`~pruning_suite.protocol.comparison`,
the lookup of protocols by id across every registered protocol folder in
:mod:`~pruning_suite.protocol.catalogue`; this module gathers them under one import.
"""

from __future__ import annotations

from .catalogue import (
    find_protocol,
    known_protocol,
    list_protocols,
    load_protocol,
    protocol_files,
    registered_protocol,
    shipped_latest,
    shipped_protocol,
)
from .comparison import DEFAULT_PROTOCOL, ComparisonProtocol, canonical_json, load_protocol_file
from .sections import (
    SEED_RANGE,
    ArchitectureSpec,
    Augmentation,
    BaseModelSpec,
    BaseReference,
    DatasetSpec,
    PretrainedWeights,
    PruningBudget,
    PruningTarget,
    Reference,
    ScratchBudget,
    TargetTolerance,
    TrainRecipe,
)

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
    "SEED_RANGE",
    "canonical_json",
    "find_protocol",
    "known_protocol",
    "list_protocols",
    "load_protocol",
    "load_protocol_file",
    "protocol_files",
    "registered_protocol",
    "shipped_latest",
    "shipped_protocol",
]
