"""The base-model zoo: train, import and list the dense base models protocols start from.

Every method under a protocol starts from the same base model (setup S2 of Wang et al., arXiv
2301.05219), cached under a content hash by :mod:`pruning_suite.run.basecache`. ``pruning-suite run``
obtains it implicitly; these functions back the ``pruning-suite base`` commands:

- ``base train --protocol ID``: train the protocol's base model with its base recipe and cache it
  (or load the cached one, unless ``--force``; for a protocol with pretrained weights, find and
  verify them);
- ``base import FILE --protocol ID``: register an existing state_dict checkpoint as the base model;
- ``base list``: what is cached, how each model was obtained (trained / imported / pretrained),
  its sha256 and dense accuracy, and whether each shipped protocol's pretrained weights are here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.datasets import SMOKE_EVAL_EXAMPLES, DataSplits, load_dataset
from ..engine.models import build_model
from ..engine.resume import EpochCheckpoint
from ..engine.train import EpochStats, evaluate
from ..errors import CheckpointError, OutputError
from ..protocol.spec import ComparisonProtocol, TrainRecipe, list_protocols, load_protocol
from .basecache import (
    CacheEntry,
    base_checkpoint,
    base_lock,
    cache_dir,
    entry_paths,
    file_sha256,
    import_base_model,
    list_cache,
    obtain_base_model,
    pretrained_path,
)
from .cachekey import base_model_key, import_key
from .config import budget, cpu_threads_in_force, max_batches, resolve_device, smoke_recipe

__all__ = ["BaseRow", "import_base", "list_bases", "smoke_recipe", "train_base"]


@dataclass(frozen=True)
class BaseRow:
    """One base model, as ``pruning-suite base`` prints it.

    Attributes:
        protocol: Protocol id (``id@version``).
        key: Cache key (content hash), or ``"-"`` for pretrained weights outside the cache.
        source: ``"trained"``, ``"cached"``, ``"imported"`` or ``"pretrained"``.
        sha256: sha256 of the checkpoint file; None when the file is missing.
        dense_val_top1: Validation top-1 of the dense model, percent (None: not measured).
        dense_test_top1: Test top-1, percent (None: not measured).
        checkpoint: The checkpoint file (or where it is expected).
        note: Extra information (smoke budget, published accuracy, a missing file).
        seconds: Training time of this call, seconds.
    """

    protocol: str
    key: str
    source: str
    sha256: str | None
    dense_val_top1: float | None
    dense_test_top1: float | None
    checkpoint: Path
    note: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (``base list --json``)."""
        return {
            "protocol": self.protocol,
            "key": self.key,
            "source": self.source,
            "sha256": self.sha256,
            "dense_val_top1": self.dense_val_top1,
            "dense_test_top1": self.dense_test_top1,
            "checkpoint": str(self.checkpoint),
            "note": self.note,
        }


def train_base(
    protocol_id: str,
    data_dir: Path | None = None,
    device: str | None = None,
    smoke: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    force: bool = False,
) -> BaseRow:
    """Obtain the protocol's base model (``pruning-suite base train``) and measure it.

    Trains it with the protocol's base recipe and caches it, or loads it from the cache (trained
    or imported earlier); for a protocol with pretrained weights, finds and verifies them. The
    same cache entry ``pruning-suite run`` uses (``smoke`` matches ``run --smoke``; on the CPU it
    trains with a run's threads, :func:`~.config.cpu_threads_in_force`).

    Args:
        protocol_id: Shipped protocol id or ``.toml`` path.
        data_dir: Dataset root, as ``run --data-dir``.
        device: ``"cpu"``, ``"cuda"``...; None = CUDA when present.
        smoke: The smoke budget (at most 2 epochs of 20 batches, evaluated on
            :data:`~pruning_suite.data.datasets.SMOKE_EVAL_EXAMPLES` examples); cached apart, never used
            by real runs.
        on_epoch: Called after every base-training epoch.
        force: Train from scratch even if cached: the cached entry (and the epoch checkpoint of
            an unfinished training) is deleted first, under the base model's lock.

    Returns:
        What was obtained, with its dense validation and test accuracy.

    Raises:
        PruningSuiteError: Unknown protocol, missing data, missing or wrong pretrained weights.
        CheckpointError: ``force`` for a protocol with pretrained weights or an imported base
            model (nothing the suite trains).
        OutputError: ``force`` cannot remove the cached entry (a folder in its place).
    """
    protocol, data, model = _setup(protocol_id, data_dir, device, smoke)
    recipe = budget(protocol.base_model.recipe, smoke)
    with cpu_threads_in_force(data.train.device):  # the threads a run trains with
        if force:
            _forget_trained(model, protocol, data.sha256, recipe, smoke)
        base = obtain_base_model(model, protocol, data, recipe, smoke, on_epoch, max_batches(smoke))
    in_cache = base.checkpoint.parent == cache_dir() / "base"  # else torch's hub cache
    return BaseRow(
        protocol=f"{protocol.id}@{protocol.version}",
        key=base.checkpoint.stem if in_cache else "-",
        source=base.source,
        sha256=base.checkpoint_sha256,
        dense_val_top1=evaluate(model, data.val),
        dense_test_top1=evaluate(model, data.test),
        checkpoint=base.checkpoint,
        note="smoke budget" if smoke else "",
        seconds=base.seconds,
    )


def _forget_trained(
    model: torch.nn.Module,
    protocol: ComparisonProtocol,
    dataset_sha256: str,
    recipe: TrainRecipe,
    smoke: bool,
) -> None:
    """Delete the trained base model :func:`~.basecache.obtain_base_model` would load (``--force``).

    Raises:
        CheckpointError: The protocol's base model is pretrained or imported, not trained here.
        OutputError: An entry's file cannot be removed.
    """
    if protocol.base_model.pretrained is not None:
        raise CheckpointError(
            f"protocol {protocol.id!r} starts from published weights: there is nothing to retrain",
            "leave out --force",
        )
    imported, imported_meta = entry_paths(import_key(protocol, dataset_sha256))
    if not smoke and imported.is_file():
        raise CheckpointError(
            f"protocol {protocol.id!r} starts from an imported base model ({imported}), which "
            "--force does not retrain",
            "import another with 'pruning-suite base import FILE --protocol ... --replace', or "
            f"delete {imported.name} and {imported_meta.name} in "
            f"{imported.parent} to train one",
        )
    key = base_model_key(protocol, recipe, dataset_sha256, smoke, next(model.parameters()).device)
    with base_lock(key):
        for path in reversed(entry_paths(key)):  # the metadata first: no entry without its .pt
            try:
                path.unlink(missing_ok=True)
            except OSError as err:  # a folder or a read-only cache
                raise OutputError(
                    f"cannot remove {path} from the base-model cache: {err.strerror or err}",
                    "remove it yourself (or fix the cache folder's permissions), then run again",
                ) from err
        EpochCheckpoint(base_checkpoint(key)).discard()


def import_base(
    file: Path | str,
    protocol_id: str,
    data_dir: Path | None = None,
    device: str | None = None,
    replace: bool = False,
) -> BaseRow:
    """Register a state_dict checkpoint as the protocol's base model (``pruning-suite base import``).

    See :func:`pruning_suite.run.basecache.import_base_model`: read with ``weights_only=True``,
    strictly loaded into the protocol's architecture, evaluated, cached unchanged.

    Raises:
        CheckpointError: Unreadable file, a pickled ``nn.Module`` instead of a state_dict, a
            state_dict of another architecture, a base model cached already (without
            ``replace``), or other weights than the protocol's pretrained ones.
        PruningSuiteError: Unknown protocol, missing data.
    """
    protocol, data, model = _setup(protocol_id, data_dir, device, smoke=False)
    return _cached_row(import_base_model(model, protocol, data, file, replace))


def list_bases() -> list[BaseRow]:
    """Every cached base model, then each shipped protocol's pretrained weights (found or not).

    Dense accuracies are those recorded when the model was trained or imported; the pretrained
    rows give the publisher's top-1 in ``note`` (the suite measures it in every run). ``note``
    also names metadata fields of the wrong type (shown as unset), a missing checkpoint file and
    what to do about it.
    """
    rows = [_cached_row(entry) for entry in list_cache()]
    return rows + [_pretrained_row(p) for p in list_protocols() if p.base_model.pretrained]


def _cached_row(entry: CacheEntry) -> BaseRow:
    """The row of a cached base model: trained here, or imported (``from`` its file)."""
    notes = (
        "smoke budget" if entry.smoke else "",
        f"from {entry.original}" if entry.original else "",
        f"malformed metadata: {', '.join(entry.malformed)}" if entry.malformed else "",
        _trained_on(entry.trained_on),
        "" if entry.checkpoint.is_file() else _missing_checkpoint(entry),
    )
    return BaseRow(
        protocol=f"{entry.protocol}@{entry.protocol_version}",
        key=entry.key,
        source=entry.source,
        sha256=entry.checkpoint_sha256,
        dense_val_top1=entry.dense_val_top1,
        dense_test_top1=entry.dense_test_top1,
        checkpoint=entry.checkpoint,
        note="; ".join(note for note in notes if note),
    )


def _trained_on(trained: dict[str, Any] | None) -> str:
    """``trained on cpu (float32), 2 threads, torch 2.14.1``: what most often tells two entries of
    a protocol apart (the key holds more: :func:`~.cachekey.trained_with`)."""
    if not trained:
        return ""
    threads = f", {trained['threads']} threads" if "threads" in trained else ""
    return (
        f"trained on {trained.get('device')} ({trained.get('precision')}){threads}, "
        f"torch {trained.get('torch')}"
    )


def _missing_checkpoint(entry: CacheEntry) -> str:
    """What a missing ``.pt`` of ``entry`` means for runs, and what to do."""
    if entry.source in ("imported", "pretrained"):
        return (
            "checkpoint missing: import it again "
            f"('pruning-suite base import FILE --protocol {entry.protocol}')"
        )
    return "checkpoint missing: runs retrain it"


def _pretrained_row(protocol: ComparisonProtocol) -> BaseRow:
    weights = protocol.base_model.pretrained
    assert weights is not None
    path = pretrained_path(weights)
    found = path.is_file()
    published = f"published top-1 {weights.top1}" if weights.top1 is not None else ""
    fetch = (
        f"put {weights.file_name} in {path.parent}, or register a copy with "
        f"'pruning-suite base import FILE --protocol {protocol.id}'"
    )
    note = published if found else f"missing (expected sha256 {weights.sha256}...): {fetch}"
    return BaseRow(
        protocol=f"{protocol.id}@{protocol.version}",
        key="-",
        source="pretrained",
        sha256=file_sha256(path) if found else None,
        dense_val_top1=None,
        dense_test_top1=None,
        checkpoint=path,
        note=note,
    )


def _setup(
    protocol_id: str, data_dir: Path | None, device: str | None, smoke: bool
) -> tuple[ComparisonProtocol, DataSplits, torch.nn.Module]:
    protocol = load_protocol(protocol_id)
    target_device = resolve_device(device)
    eval_limit = SMOKE_EVAL_EXAMPLES if smoke else None
    data = load_dataset(protocol.dataset, data_dir, device=target_device, eval_limit=eval_limit)
    spec = protocol.dataset
    model = build_model(protocol.architecture, spec.input_shape, spec.num_classes)
    return protocol, data, model.to(target_device)
