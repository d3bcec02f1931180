"""The base-model cache key: a content hash of everything that determines a base model's weights.

Every method under a protocol starts from the same base model (setup S2 of Wang et al., arXiv
2301.05219), cached by :mod:`pruning_suite.run.basecache` under this key: architecture, dataset
spec and checksum, base recipe, base seed, pretrained weights (when the protocol names them),
smoke budget, and the digest of the code that trains it (:func:`training_code_sha256`).

The cache is shared by every checkout and installed version that uses the same cache folder. A
base model trained by other code (an older suite, a checkout with edits to the training loop)
has other weights for the same protocol, recipe and seed. With a hand-bumped version number in
the key, such a model was once taken for this code's: the digits-convnet results committed on
2026-12-05 record base model ``9f09bd606d61``, which neither the commit that made them nor
later code trains (both train ``27f915691f12``), so a fresh clone could not reproduce them.
With the digest in the key, a base model trained by other code is another cache entry, and its
epoch checkpoint is never resumed. An imported or published base model was not trained by this
code: its key (:func:`import_key`) leaves the digest out, so it outlives an upgrade.

The digest covers the source of :data:`TRAINING_MODULES` and of every module of the suite they
refer to (:func:`~pruning_suite.contract.codedigest.reached_modules`): the training loop, the
architectures, the data pipeline and the cache itself (seeding and initialization).

A trained base model's key also holds how this process trains (:func:`trained_with`): device
type, precision, torch version, processes, and on the CPU the thread count and the CPU numerics
settings. Each changes the bits: measured on this project's 2-core machine, the
fashion-mnist-lenet5 smoke base model came out as ``e120873dddff`` with 1 thread,
``e3a4f5c2627a`` with 2 and ``3055ae5552f3`` with 3. A run on another device, or with other
threads, therefore trains its own base model rather than taking one it could not have made;
every run with the same settings still starts from the same one (S2). The smoke budget's batch
cap is in the key too.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
from collections.abc import Iterable
from typing import Any

import torch

from ..contract.codedigest import modules_sha256, reached_modules
from ..data.fastpath import precision
from ..engine import distributed
from ..engine.numerics import cpu_numerics
from ..protocol.spec import ComparisonProtocol, TrainRecipe, canonical_json
from .config import SMOKE_MAX_BATCHES

__all__ = [
    "TRAINING_MODULES",
    "base_model_key",
    "import_key",
    "others_note",
    "trained_with",
    "training_code_sha256",
]

_SUITE = __name__.partition(".")[0]

TRAINING_MODULES = ("engine.train", "engine.models", "data.datasets", "run.basecache")
"""Where base training starts, relative to the suite's package."""


def base_model_key(
    protocol: ComparisonProtocol,
    recipe: TrainRecipe,
    dataset_sha256: str,
    smoke: bool,
    device: torch.device,
) -> str:
    """Content hash (16 hex digits) of everything that determines the weights of the base model
    this code trains on ``device``: the protocol's part, the digest of the training code
    (:func:`training_code_sha256`) and how this process trains (:func:`trained_with`)."""
    return _key(protocol, recipe, dataset_sha256, smoke, trained_with(device))


def trained_with(device: torch.device) -> dict[str, Any]:
    """How this process trains on ``device``, beyond the protocol, as the key holds it and a
    trained base model's metadata records it (``trained_on``).

    Returns:
        ``code`` (:func:`training_code_sha256`), ``device`` (type, e.g. ``"cpu"``), ``precision``
        (:func:`~pruning_suite.data.fastpath.precision`), ``torch`` (version), ``world_size``
        (processes training together); on the CPU also ``threads`` (intra-op threads now) and
        ``cpu_numerics`` (:func:`~pruning_suite.engine.numerics.cpu_numerics`: ATen's capability
        in force, the MKL and oneDNN settings, and whether they were pinned too late). A GPU's
        model is left out, so runs spread over several kinds of GPU share one base model.
    """
    trained: dict[str, Any] = {
        "code": training_code_sha256(),
        "device": device.type,
        "precision": precision(device),
        "torch": torch.__version__,
        "world_size": distributed.world_size(),
    }
    if device.type == "cpu":
        trained["threads"] = torch.get_num_threads()
        trained["cpu_numerics"] = cpu_numerics()
    return trained


_SETTINGS = {"code": "training code", "device": "device", "precision": "precision",
             "torch": "torch", "world_size": "processes", "threads": "threads",
             "cpu_numerics": "CPU numerics"}  # fmt: skip


def others_note(
    protocol: ComparisonProtocol,
    key: str,
    smoke: bool,
    entries: Iterable[Any],
    here: dict[str, Any],
) -> str | None:
    """The line a run prints before it trains base model ``key`` while the cache holds other base
    models of its protocol and budget: which, and how each was made otherwise.

    Args:
        protocol: The run's protocol.
        key: The base model it trains.
        smoke: Whether it is a smoke budget.
        entries: The cache's entries (``pruning_suite.run.basecache.CacheEntry``).
        here: How this process trains (:func:`trained_with`).

    Returns:
        None when there is no other; else e.g. ``... has other cached base models (5c5f... (trained,
        other threads)), so this run trains its own``. A trained entry whose recorded settings
        all match was made for other data or another recipe; an imported one gets a hint.
    """
    others = [
        entry
        for entry in entries
        if (entry.protocol, entry.protocol_version) == (protocol.id, protocol.version)
        and entry.smoke == smoke
        and entry.key != key
    ]
    if not others:
        return None
    named = ", ".join(f"{entry.key} ({entry.source}{_differs(entry, here)})" for entry in others)
    imported = any(entry.source in ("imported", "pretrained") for entry in others)
    hint = (
        "; to start from an imported one, import its file again "
        "('pruning-suite base import FILE --protocol ...')"
    )
    return (
        f"{protocol.id}@{protocol.version} has other cached base models ({named}), so this run "
        "trains its own" + (hint if imported else "")
    )


def _differs(entry: Any, here: dict[str, Any]) -> str:
    theirs = entry.trained_on
    if entry.source != "trained" or not isinstance(theirs, dict):
        return ""  # imported, or trained before its settings were recorded
    names = [label for name, label in _SETTINGS.items() if theirs.get(name) != here.get(name)]
    return f", other {', '.join(names)}" if names else ", other data or recipe"


def import_key(protocol: ComparisonProtocol, dataset_sha256: str) -> str:
    """Where an imported or published (pretrained) base model is cached: the full-budget
    :func:`base_model_key` without the training code, which did not make it."""
    return _key(protocol, protocol.base_model.recipe, dataset_sha256, False, None)


def _key(
    protocol: ComparisonProtocol,
    recipe: TrainRecipe,
    dataset_sha256: str,
    smoke: bool,
    trained: dict[str, Any] | None,
) -> str:
    content = {
        "architecture": protocol.architecture.model_dump(mode="json"),
        "dataset": _dataset_content(protocol),
        "dataset_sha256": dataset_sha256,
        "recipe": recipe.model_dump(mode="json"),
        "seed": protocol.base_model.seed,
        "smoke": {"max_batches": SMOKE_MAX_BATCHES} if smoke else False,
    }
    if trained is not None:
        content["trained_with"] = trained
    if protocol.base_model.pretrained is not None:
        content["pretrained"] = protocol.base_model.pretrained.model_dump(mode="json")
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()[:16]


def _dataset_content(protocol: ComparisonProtocol) -> dict[str, Any]:
    """The dataset spec as hashed; fields added later are left out at None, so old keys hold."""
    content = protocol.dataset.model_dump(mode="json")
    return {k: v for k, v in content.items() if not (k in _ADDED_DATASET_FIELDS and v is None)}


_ADDED_DATASET_FIELDS = ("eval_resize", "class_list")


@functools.cache
def training_code_sha256() -> str:
    """sha256 (64 hex digits) of the suite's base-training code, or of its version when that
    code's source cannot be read (an install without ``.py`` files)."""
    starts = [importlib.import_module(f"{_SUITE}.{name}") for name in TRAINING_MODULES]
    digest = modules_sha256(reached_modules(starts, _SUITE))
    if digest is not None:
        return digest
    from importlib.metadata import version

    return "version " + version("pruning-suite")
