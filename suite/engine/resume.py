"""Per-epoch checkpoints of a training phase, so that ``kill -9`` costs at most one epoch.

:func:`pruning_suite.engine.train.train` given an :class:`EpochCheckpoint` writes, after every
epoch, one file holding everything the next epoch depends on: the model's state_dict (parameters
and BatchNorm buffers), the optimizer's state (momentum buffers), the state of the shuffling and
augmentation generator, torch's global CPU RNG state (and every CUDA device's, when CUDA is in
use), the epoch log and any plain data its caller keeps with it (``extra``: the JSV rows of a
retraining). An identical rerun restores all of it and trains only the epochs still missing, so
on the CPU it ends bit-identical to a run that was never interrupted.

The file is written atomically (a ``.<name>.<pid>.<8 hex>.tmp`` file and ``os.replace``) and read
with ``torch.load(weights_only=True)``: tensors and plain data only. It is not fsynced: a killed
process's writes survive in the page cache, and after a power loss a checkpoint that did not reach
the disk reads as damaged and is ignored (the phase starts over), while fsync would double the
cost of a small model's checkpoint (24 ms against 12 ms for digits-convnet's 0.33 MB, measured). It belongs to one
start: a *fingerprint* of the model's weights when training starts, the recipe, the seed, the
epochs, the data's checksum, the device type and the torch version. A file with another
fingerprint (other weights, a changed recipe, a damaged file) is ignored and replaced, never
resumed from.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import OutputError
from ..protocol.spec import TrainRecipe
from ..record.safefiles import note, write_atomic

__all__ = ["FORMAT", "EpochCheckpoint", "Resumed", "announce_resume", "fingerprint"]

FORMAT = 1
"""Version of the checkpoint's layout; a file of another version is ignored."""


def fingerprint(model: nn.Module, *parts: object) -> str:
    """sha256 (hex) of ``model``'s state_dict (names, dtypes, shapes, bytes) and ``repr`` of ``parts``.

    Args:
        model: The model as training starts.
        parts: Everything else the phase's result depends on (recipe JSON, seed, epochs, ...).
    """
    digest = hashlib.sha256(torch.__version__.encode())
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    for part in parts:
        digest.update(repr(part).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Resumed:
    """What a checkpoint gave back: the log rows (``EpochStats.as_dict()``) of the epochs done,
    each epoch's training examples (``seen``) and the caller's ``extra`` plain data."""

    log: list[dict[str, float]]
    seen: list[int]
    extra: Any


@dataclass
class EpochCheckpoint:
    """The per-epoch checkpoint file of one training phase.

    Attributes:
        path: The checkpoint file (e.g. ``<cache>/work/base-<key>.pt``).
        extra: Returns plain data (lists, dicts, str, int, float, bool, None, tensors) to keep
            with every epoch; given back in :attr:`Resumed.extra`.
        on_resume: Called with the restored :class:`Resumed` before training goes on (restore
            ``extra``; say where the phase resumes).
    """

    path: Path
    extra: Callable[[], Any] = lambda: None
    on_resume: Callable[[Resumed], None] = lambda resumed: None
    failed: bool = field(default=False, init=False)

    def load(self, stamp: str) -> dict[str, Any] | None:
        """The checkpoint's content when it exists, is readable and has fingerprint ``stamp``."""
        try:
            content = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # missing, damaged or foreign: start over
            return None
        ok = isinstance(content, dict) and content.get("format") == FORMAT
        return content if ok and content.get("fingerprint") == stamp else None

    def resume(
        self,
        stamp: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
    ) -> Resumed | None:
        """Restore model, optimizer, generator and global RNG states from the checkpoint.

        Returns:
            What was restored, or None (nothing restored) when there is no usable checkpoint.
        """
        content = self.load(stamp)
        if content is None:
            return None
        try:
            model.load_state_dict(content["model"], strict=True)
            optimizer.load_state_dict(content["optimizer"])
            generator.set_state(content["generator"])
            torch.set_rng_state(content["cpu_rng"])
            if content["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(content["cuda_rng"])
            resumed = Resumed(list(content["log"]), list(content["seen"]), content["extra"])
        except (KeyError, RuntimeError, TypeError, ValueError):
            return None  # does not fit this model: start over (the next save replaces it)
        self.on_resume(resumed)
        return resumed

    def save(
        self,
        stamp: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        log: list[dict[str, float]],
        seen: list[int],
    ) -> None:
        """Write the state after the last epoch of ``log``, atomically.

        A checkpoint that cannot be written (a full or read-only disk) does not stop the
        training: a ``RuntimeWarning`` says so once, and this phase writes no more checkpoints.
        """
        if self.failed:
            return
        content = {
            "format": FORMAT,
            "fingerprint": stamp,
            "epochs_done": len(log),
            "model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
            "optimizer": _to_cpu(optimizer.state_dict()),
            "generator": generator.get_state(),
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "log": list(log),
            "seen": list(seen),
            "extra": self.extra(),
        }
        try:
            _atomic_save(content, self.path)
        except OutputError as err:
            self.failed = True
            warnings.warn(
                f"{err.message}; training goes on without epoch checkpoints (a crash now "
                "restarts this phase)",
                RuntimeWarning,
                stacklevel=2,
            )

    def discard(self) -> None:
        """Delete the checkpoint (the phase's result is stored); a missing file is fine."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _atomic_save(content: dict[str, Any], path: Path) -> None:
    # no fsync: kill -9 keeps the page cache (see the module docstring)
    write_atomic(
        path, lambda h: torch.save(content, h), lambda err: _unwritable(path, err), fsync=False
    )


def _unwritable(path: Path, err: OSError) -> OutputError:
    return OutputError(
        f"cannot write the epoch checkpoint {path}: {err.strerror or err}",
        "free space on the cache's disk, or set PRUNING_SUITE_CACHE to a writable folder",
    )


def announce_resume(phase: str, recipe: TrainRecipe) -> Callable[[Resumed], None]:
    """An :class:`EpochCheckpoint` ``on_resume`` callback that says on stderr after which epoch
    ``phase`` resumes."""

    def say(resumed: Resumed) -> None:
        note(f"{phase} resumes after epoch {len(resumed.log)} of {recipe.epochs}")

    return say
