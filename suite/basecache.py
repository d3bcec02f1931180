"""The base-model cache: the suite trains each protocol's dense base model once and reuses it.

Every method under a protocol starts from the same base model (setup S2 of Wang et al., arXiv
2301.05219). A base model is cached under a content hash of everything that can change its
weights: architecture, dataset spec and checksum, base recipe, base seed, smoke budget and the
version of the training code. Cache folder: ``$PRUNING_SUITE_CACHE`` or
``~/.cache/pruning-suite``; files ``base/<key>.pt`` (a state_dict, read with
``weights_only=True``) and ``base/<key>.json`` (metadata).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data import DataSplits
from .protocol import ComparisonProtocol, TrainRecipe, canonical_json
from .train import EpochStats, train

__all__ = [
    "BaseModel",
    "base_model_key",
    "cache_dir",
    "load_cached_base_model",
    "obtain_base_model",
]

TRAINING_CODE_VERSION = 1
"""Bump when the training loop changes in a way that can move a base model's weights."""


@dataclass(frozen=True)
class BaseModel:
    """A dense base model and where it came from.

    Attributes:
        checkpoint: The cached state_dict file.
        checkpoint_sha256: sha256 of that file's bytes.
        source: ``"trained"`` (by this call) or ``"cached"``.
        seconds: Wall-clock seconds spent training (0 when cached).
        log: The base training's per-epoch rows (empty when cached).
    """

    checkpoint: Path
    checkpoint_sha256: str
    source: str
    seconds: float
    log: tuple[EpochStats, ...]


def cache_dir() -> Path:
    """``$PRUNING_SUITE_CACHE`` or ``~/.cache/pruning-suite``."""
    return Path(os.environ.get("PRUNING_SUITE_CACHE") or Path.home() / ".cache" / "pruning-suite")


def base_model_key(
    protocol: ComparisonProtocol, recipe: TrainRecipe, dataset_sha256: str, smoke: bool
) -> str:
    """Content hash (16 hex digits) of everything that determines the base model's weights."""
    content = {
        "architecture": protocol.architecture.model_dump(mode="json"),
        "dataset": protocol.dataset.model_dump(mode="json"),
        "dataset_sha256": dataset_sha256,
        "recipe": recipe.model_dump(mode="json"),
        "seed": protocol.base_model.seed,
        "smoke": smoke,
        "training_code": TRAINING_CODE_VERSION,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def obtain_base_model(
    model: nn.Module,
    protocol: ComparisonProtocol,
    data: DataSplits,
    recipe: TrainRecipe,
    smoke: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    max_batches: int | None = None,
    on_train_start: Callable[[], None] | None = None,
) -> BaseModel:
    """Load the cached base model into ``model``, or train it and cache it.

    Args:
        model: A freshly built model of the protocol's architecture, on the data's device.
            Its weights are replaced in place.
        protocol: Supplies the architecture, dataset spec and base seed.
        data: The protocol's data (its checksum is part of the key).
        recipe: The base recipe: the protocol's, or its smoke-budget version.
        smoke: A smoke-budget base model is cached separately and never used for real runs.
        on_epoch: Called after each base-training epoch.
        max_batches: Smoke runs cap each epoch at this many batches.
        on_train_start: Called once when no cached model fits and training begins.

    Returns:
        Where the checkpoint is and how it was obtained. A cache entry whose file no longer
        matches its recorded sha256 is ignored and the model is retrained.
    """
    key = base_model_key(protocol, recipe, data.sha256, smoke)
    folder = cache_dir() / "base"
    checkpoint, meta_path = folder / f"{key}.pt", folder / f"{key}.json"
    cached = _load_cached(model, checkpoint, meta_path)
    if cached is not None:
        return cached
    if on_train_start is not None:
        on_train_start()
    torch.manual_seed(protocol.base_model.seed)
    _reset_parameters(model)
    started = time.perf_counter()
    normalization = (protocol.dataset.mean, protocol.dataset.std)
    log = train(model, data, recipe, protocol.base_model.seed, on_epoch, max_batches, normalization)
    seconds = time.perf_counter() - started
    sha = _save(model, checkpoint, meta_path, protocol, key)
    return BaseModel(checkpoint, sha, "trained", seconds, tuple(log))


def load_cached_base_model(
    model: nn.Module, protocol: ComparisonProtocol, dataset_sha256: str
) -> BaseModel | None:
    """Load the protocol's cached (full-budget) base model into ``model`` if there is one.

    Returns:
        The cache entry, or None when the base model has not been trained here yet.
    """
    key = base_model_key(protocol, protocol.base_model.recipe, dataset_sha256, smoke=False)
    folder = cache_dir() / "base"
    return _load_cached(model, folder / f"{key}.pt", folder / f"{key}.json")


def _reset_parameters(model: nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def _load_cached(model: nn.Module, checkpoint: Path, meta_path: Path) -> BaseModel | None:
    if not (checkpoint.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        sha = file_sha256(checkpoint)
        if not isinstance(meta, dict) or sha != meta.get("checkpoint_sha256"):
            return None
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    except Exception:  # any unreadable or foreign cache entry is retrained, never trusted
        return None
    return BaseModel(checkpoint, sha, "cached", 0.0, ())


def _save(
    model: nn.Module, checkpoint: Path, meta_path: Path, protocol: ComparisonProtocol, key: str
) -> str:
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with tempfile.NamedTemporaryFile(dir=checkpoint.parent, suffix=".tmp", delete=False) as handle:
        torch.save(state, handle)
    os.replace(handle.name, checkpoint)
    sha = file_sha256(checkpoint)
    meta = {
        "key": key,
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "checkpoint_sha256": sha,
    }
    with tempfile.NamedTemporaryFile(
        "w", dir=meta_path.parent, suffix=".tmp", delete=False
    ) as handle:
        handle.write(json.dumps(meta, indent=2))
    os.replace(handle.name, meta_path)
    return sha
