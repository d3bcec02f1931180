"""The base-model cache: the suite trains each protocol's dense base model once and reuses it.

Every method under a protocol starts from the same base model (setup S2 of Wang et al., arXiv
2301.05219). A base model is cached under a content hash of everything that can change its
weights: architecture, dataset spec and checksum, base recipe, base seed, pretrained weights (when
the protocol names them), smoke budget, and how this process trains: the digest of the training
code, device type, precision, threads... (:mod:`pruning_suite.run.cachekey`; an imported base
model's key leaves out how it was trained). Cache folder: ``$PRUNING_SUITE_CACHE`` or
``~/.cache/pruning-suite``; files ``base/<key>.pt`` (a state_dict, read with
``weights_only=True``) and ``base/<key>.json`` (metadata: protocol, how the model was obtained,
checkpoint sha256, dense accuracies, ``trained_on``: :func:`~.cachekey.trained_with`). A run that
trains a base model beside others of its protocol made by other code, settings or data says so.

How a base model is obtained (``source``, recorded in every submission):

- ``"trained"``: trained by this call with the protocol's base recipe, then cached; ``"cached"``:
  trained by the suite earlier; ``"imported"``: a user's checkpoint registered with
  ``pruning-suite base import`` (cached unchanged: the sha256 is that of the user's file);
- ``"pretrained"``: published weights the protocol names (``base_model.pretrained``, e.g.
  torchvision's ResNet-50), from the cache or torch's hub cache, verified by the protocol's sha256.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.datasets import DataSplits
from ..engine.models import reinitialize
from ..engine.resume import EpochCheckpoint, announce_resume
from ..engine.train import EpochStats, evaluate, train
from ..errors import CheckpointError, OutputError, TrainingError
from ..protocol.spec import ComparisonProtocol, TrainRecipe
from ..record.jsonio import file_sha256, write_json_atomic
from ..record.safefiles import check_free_space, exclusive, note, write_atomic
from .cachekey import base_model_key, import_key, others_note, trained_with
from .statedicts import (
    check_sha,
    existing_file,
    load_state_dict_strict,
    pretrained_hint,
    pretrained_path,
    read_state_dict,
)

__all__ = [
    "SOURCES",
    "base_checkpoint",
    "base_lock",
    "BaseModel",
    "CacheEntry",
    "cache_dir",
    "entry_paths",
    "file_sha256",
    "import_base_model",
    "list_cache",
    "load_cached_base_model",
    "load_state_dict_strict",
    "obtain_base_model",
    "pretrained_path",
    "read_state_dict",
    "room_needed",
    "state_bytes",
    "train_from_seed",
    "work_dir",
]

SOURCES = ("trained", "cached", "imported", "pretrained")
"""How a base model was obtained (see the module docstring)."""


@dataclass(frozen=True)
class BaseModel:
    """A dense base model and where it came from.

    Attributes:
        checkpoint: The state_dict file the weights were read from or written to.
        checkpoint_sha256: sha256 of that file's bytes.
        source: One of :data:`SOURCES`.
        seconds: Wall-clock seconds spent training (0 unless trained by this call).
        log: The base training's per-epoch rows (empty unless trained by this call).
    """

    checkpoint: Path
    checkpoint_sha256: str
    source: str
    seconds: float
    log: tuple[EpochStats, ...]


@dataclass(frozen=True)
class CacheEntry:
    """One base model in the cache, as its metadata file describes it.

    Attributes:
        key: The content hash (file stem).
        protocol: Id of the protocol it was trained or imported for (others may share it).
        protocol_version: That protocol's version.
        source: ``"trained"``, ``"imported"`` or ``"pretrained"`` (how it entered the cache).
        checkpoint: The ``.pt`` file.
        checkpoint_sha256: sha256 of the ``.pt`` file, as recorded.
        smoke: A smoke-budget base model (never used by real runs); only JSON ``true`` is one.
        dense_val_top1: Validation top-1 of the dense model, percent (None: not recorded).
        dense_test_top1: Test top-1, percent (None: not recorded).
        original: For imports, the path of the imported file.
        malformed: Other fields of the wrong JSON type (a top-1 not from 0 to 100), read as unset.
        trained_on: How a trained one was made (:func:`~.cachekey.trained_with`; None: older).
    """

    key: str
    protocol: str
    protocol_version: int
    source: str
    checkpoint: Path
    checkpoint_sha256: str
    smoke: bool = False
    dense_val_top1: float | None = None
    dense_test_top1: float | None = None
    original: str | None = None
    malformed: tuple[str, ...] = ()
    trained_on: dict[str, Any] | None = None


def cache_dir() -> Path:
    """``$PRUNING_SUITE_CACHE`` or ``~/.cache/pruning-suite``."""
    return Path(os.environ.get("PRUNING_SUITE_CACHE") or Path.home() / ".cache" / "pruning-suite")


def work_dir() -> Path:
    """``<cache>/work``: per-epoch checkpoints of unfinished training phases and the lock files
    (``base-<key>.pt`` / ``.lock`` per base model, ``run-<run id>...`` per run)."""
    return cache_dir() / "work"


def state_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s state_dict (parameters and buffers): the size of a saved model."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def room_needed(model: nn.Module) -> int:
    """Bytes a training phase of ``model`` may write into the cache: its epoch checkpoint
    (weights and momentum) twice while it is replaced, and the finished model: 5x
    :func:`state_bytes`."""
    return 5 * state_bytes(model)


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
    """Load the protocol's base model into ``model``: pretrained, cached or imported; else train it.

    Args:
        model: A freshly built model of the protocol's architecture, on the data's device.
            Its weights are replaced in place.
        protocol: Supplies the architecture, dataset spec, base seed and pretrained weights.
        data: The protocol's data (its checksum is part of the key).
        recipe: The base recipe: the protocol's, or its smoke-budget version.
        smoke: A smoke-budget base model is cached separately and never used for real runs
            (pretrained weights are the same in both).
        on_epoch: Called after each base-training epoch.
        max_batches: Smoke runs cap each epoch at this many batches.
        on_train_start: Called once when no cached model fits and training begins.

    One process at a time looks up and trains a key (``flock``; a second says which pid it waits
    for); training saves every epoch to ``<cache>/work/base-<key>.pt``, which a rerun resumes
    (:mod:`pruning_suite.engine.resume`).

    Returns:
        Where the checkpoint is and how it was obtained. A cache entry whose file no longer
        matches its recorded sha256 is ignored and the model is retrained.

    Raises:
        CheckpointError: The protocol's pretrained weights are missing, do not match its sha256,
            or do not fit the architecture.
        OutputError: Before training, the cache's disk has too little room
            (:func:`room_needed`, at least 50 MB); after it, the model cannot be cached (no
            partial file is left; the epoch checkpoint is kept, so a rerun resumes at the end).
    """
    if protocol.base_model.pretrained is not None:
        return _load_pretrained(model, protocol, data.sha256)
    key = base_model_key(protocol, recipe, data.sha256, smoke, _device(model))
    with base_lock(key):
        imported = None if smoke else _load_imported(model, protocol, data.sha256)
        cached = imported or _load_cached(model, *entry_paths(key))
        if cached is not None:
            return cached
        if said := others_note(protocol, key, smoke, list_cache(), trained_with(_device(model))):
            note(said)
        if on_train_start is not None:
            on_train_start()
        return _train_base(model, protocol, data, recipe, smoke, key, on_epoch, max_batches)


def _train_base(
    model: nn.Module,
    protocol: ComparisonProtocol,
    data: DataSplits,
    recipe: TrainRecipe,
    smoke: bool,
    key: str,
    on_epoch: Callable[[EpochStats], None] | None,
    max_batches: int | None,
) -> BaseModel:
    """Train the base model (resuming from its epoch checkpoint), cache it, drop the checkpoint."""
    check_free_space(cache_dir(), room_needed(model), "the cache")
    epochs = EpochCheckpoint(
        base_checkpoint(key), on_resume=announce_resume("base training", recipe)
    )
    started = time.perf_counter()
    try:
        log = train_from_seed(model, protocol, data, recipe, on_epoch, max_batches, epochs)
    except TrainingError:
        epochs.discard()  # it diverges again from there: nothing to resume
        raise
    seconds = time.perf_counter() - started
    meta = {"source": "trained", "smoke": smoke, "trained_on": trained_with(_device(model)),
            **_accuracies(log[-1].val_top1, log[-1].test_top1)}  # fmt: skip
    checkpoint, meta_path = entry_paths(key)
    sha = _save(model, checkpoint, meta_path, protocol, key, meta)
    epochs.discard()
    return BaseModel(checkpoint, sha, "trained", seconds, tuple(log))


def train_from_seed(
    model: nn.Module,
    protocol: ComparisonProtocol,
    data: DataSplits,
    recipe: TrainRecipe,
    on_epoch: Callable[[EpochStats], None] | None,
    max_batches: int | None,
    checkpoint: EpochCheckpoint,
) -> list[EpochStats]:
    """Base training proper, as every rank of a distributed run does it: the protocol's base
    seed, PyTorch's default init (:func:`reinitialize`), ``recipe`` on the training split,
    resuming from ``checkpoint``. Returns the per-epoch log.

    Raises:
        TrainingError: The loss diverged.
    """
    torch.manual_seed(protocol.base_model.seed)
    reinitialize(model)
    normalization = (protocol.dataset.mean, protocol.dataset.std)
    return train(model, data, recipe, protocol.base_model.seed, on_epoch, max_batches,
                 normalization, checkpoint=checkpoint)  # fmt: skip


def base_checkpoint(key: str) -> Path:
    """The epoch checkpoint of base model ``key``'s training, in :func:`work_dir`."""
    return work_dir() / f"base-{key}.pt"


def base_lock(key: str) -> AbstractContextManager[None]:
    """Held while base model ``key`` is looked up, trained or removed: one process at a time."""
    return exclusive(base_checkpoint(key).with_suffix(".lock"), f"the training of base model {key}")


def _device(model: nn.Module) -> torch.device:
    return next(iter(model.parameters())).device


def load_cached_base_model(
    model: nn.Module, protocol: ComparisonProtocol, dataset_sha256: str
) -> BaseModel | None:
    """Load the protocol's base model into ``model`` if there is one here, without training.

    The cached (full-budget) or imported base model; for a protocol with pretrained weights,
    those weights when they are found and verified.

    Returns:
        The base model, or None when it has not been trained, imported or downloaded here.
    """
    if protocol.base_model.pretrained is not None:
        try:
            return _load_pretrained(model, protocol, dataset_sha256)
        except CheckpointError:
            return None
    recipe = protocol.base_model.recipe
    key = base_model_key(protocol, recipe, dataset_sha256, False, _device(model))
    return _load_imported(model, protocol, dataset_sha256) or _load_cached(model, *entry_paths(key))


def import_base_model(
    model: nn.Module,
    protocol: ComparisonProtocol,
    data: DataSplits,
    file: Path | str,
    replace: bool = False,
) -> CacheEntry:
    """Register an existing checkpoint as the protocol's base model (``pruning-suite base import``).

    The file must be a state_dict (a mapping of names to tensors, optionally wrapped as
    ``{"state_dict": ...}``), read with ``torch.load(weights_only=True)``; it is loaded strictly
    into ``model``, evaluated on the data's validation and test splits, and its bytes are copied
    unchanged into the cache under the protocol's (full-budget) base-model key, so later runs find
    it and record the file's own sha256. For a protocol with pretrained weights the file must
    also match their sha256.

    Args:
        model: A freshly built model of the protocol's architecture, on the data's device.
        protocol: The protocol whose base model this becomes.
        data: The protocol's data (for the key and the dense accuracies).
        file: The checkpoint.
        replace: Overwrite a base model already cached under the key.

    Returns:
        The new cache entry (source ``"imported"``, or ``"pretrained"`` for verified published
        weights).

    Raises:
        CheckpointError: The file cannot be read, pickles Python objects (e.g. a whole
            ``nn.Module``) instead of a state_dict, does not fit the architecture, does not match
            the protocol's pretrained sha256, or a base model is cached already (without
            ``replace``).
    """
    file = Path(file).expanduser()
    sha = file_sha256(existing_file(file))
    weights = protocol.base_model.pretrained
    if weights is not None:
        check_sha(file, sha, weights)
    load_state_dict_strict(model, read_state_dict(file), file, protocol)
    key = import_key(protocol, data.sha256)
    checkpoint, meta_path = entry_paths(key)
    if checkpoint.exists() and not replace:
        raise CheckpointError(
            f"protocol {protocol.id!r} already has a cached base model {checkpoint}",
            "pass --replace to overwrite it (runs made with the old one keep its sha256)",
        )
    val, test = evaluate(model, data.val), evaluate(model, data.test)
    source = "imported" if weights is None else "pretrained"
    with open(file, "rb") as original:
        _write_atomic(checkpoint, lambda handle: shutil.copyfileobj(original, handle))
    meta = {"source": source, "smoke": False, "original": str(file), **_accuracies(val, test)}
    _write_meta(meta_path, protocol, key, file_sha256(checkpoint), meta)
    return _entry(meta_path)


def list_cache() -> list[CacheEntry]:
    """Every base model in the cache, sorted by protocol, then key; unreadable entries skipped."""
    entries = [_entry(path) for path in sorted((cache_dir() / "base").glob("*.json"))]
    return sorted((e for e in entries if e is not None), key=lambda e: (e.protocol, e.key))


def _load_pretrained(
    model: nn.Module, protocol: ComparisonProtocol, dataset_sha256: str
) -> BaseModel:
    weights = protocol.base_model.pretrained
    assert weights is not None
    imported, hub = entry_paths(import_key(protocol, dataset_sha256))[0], pretrained_path(weights)
    path = imported if imported.is_file() else hub
    if not path.is_file():
        raise CheckpointError(
            f"protocol {protocol.id!r} starts from the published weights {weights.file_name}"
            f"{f' ({weights.torchvision_weights})' if weights.torchvision_weights else ''}, found "
            f"neither in torch's hub cache {hub} nor imported in {imported}",
            pretrained_hint(weights, protocol),
        )
    sha = file_sha256(path)
    check_sha(path, sha, weights)
    load_state_dict_strict(model, read_state_dict(path), path, protocol)
    return BaseModel(path, sha, "pretrained", 0.0, ())


def entry_paths(key: str) -> tuple[Path, Path]:
    """Cache entry ``key``'s files: ``(<cache>/base/<key>.pt, <cache>/base/<key>.json)``."""
    folder = cache_dir() / "base"
    return folder / f"{key}.pt", folder / f"{key}.json"


def _accuracies(val: float, test: float) -> dict[str, float]:
    return {"dense_val_top1": float(val), "dense_test_top1": float(test)}


def _load_imported(
    model: nn.Module, protocol: ComparisonProtocol, dataset_sha256: str
) -> BaseModel | None:
    """The imported or published base model cached for the protocol, or None."""
    found = _load_cached(model, *entry_paths(import_key(protocol, dataset_sha256)))
    return found if found is not None and found.source in ("imported", "pretrained") else None


def _load_cached(model: nn.Module, checkpoint: Path, meta_path: Path) -> BaseModel | None:
    if not (checkpoint.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        sha = file_sha256(checkpoint)
        if not isinstance(meta, dict) or sha != meta.get("checkpoint_sha256"):
            return None
        model.load_state_dict(read_state_dict(checkpoint), strict=True)
    except Exception:  # any unreadable or foreign cache entry is retrained, never trusted
        return None
    source = meta.get("source") if meta.get("source") in ("imported", "pretrained") else "cached"
    return BaseModel(checkpoint, sha, source, 0.0, ())


def _save(
    model: nn.Module,
    checkpoint: Path,
    meta_path: Path,
    protocol: ComparisonProtocol,
    key: str,
    meta: dict[str, Any],
) -> str:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    _write_atomic(checkpoint, lambda handle: torch.save(state, handle))
    sha = file_sha256(checkpoint)
    _write_meta(meta_path, protocol, key, sha, meta)
    return sha


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """``write(binary handle)`` into a fsynced temporary file, moved over ``path``.

    Raises:
        OutputError: The cache cannot be written (no temporary file is left behind).
    """
    write_atomic(
        path,
        write,
        lambda err: OutputError(
            f"cannot write {path} into the base-model cache: {err.strerror or err}",
            "free space on the cache's disk or set PRUNING_SUITE_CACHE to a writable folder, "
            "then run again (base training resumes from its last epoch)",
        ),
    )


def _write_meta(
    meta_path: Path, protocol: ComparisonProtocol, key: str, sha: str, extra: dict[str, Any]
) -> None:
    meta = {
        "key": key,
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "checkpoint_sha256": sha,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
    write_json_atomic(meta_path, meta)


def _entry(meta_path: Path) -> CacheEntry | None:
    """None when not a readable file, or key (the file's stem), protocol, version or sha256 is
    absent or of the wrong type."""
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}  # not a FIFO
        ids = [meta[name] for name in ("key", "protocol", "protocol_version", "checkpoint_sha256")]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        ids = []
    if [type(value) for value in ids] != [str, str, int, str] or ids[0] != meta_path.stem:
        return None
    fits = {"source": lambda v: type(v) is str, "smoke": lambda v: type(v) is bool,
            "original": lambda v: type(v) is str, "trained_on": lambda v: type(v) is dict,
            "dense_val_top1": lambda v: type(v) in (int, float) and 0 <= v <= 100}  # fmt: skip
    fits["dense_test_top1"] = fits["dense_val_top1"]
    given = {name: value for name, value in meta.items() if name in fits and value is not None}
    got = {name: value for name, value in given.items() if fits[name](value)}
    return CacheEntry(*ids[:3], checkpoint=meta_path.with_suffix(".pt"), checkpoint_sha256=ids[3],
                      malformed=tuple(sorted(given.keys() - got.keys())),
                      **{"source": "trained", **got})  # fmt: skip
