"""Data-parallel training: one run's training phases over the processes of ``torchrun``.

``torchrun --nproc-per-node N`` starts N processes (ranks) of one :class:`World`; inside
:func:`joined` (the process group: NCCL on CUDA, ``cuda:LOCAL_RANK`` per rank; gloo on the CPU)
:func:`pruning_suite.engine.train.train` trains data-parallel, with the update of one process
training on the recipe's batch size, up to the order of float sums:

- Batches: every rank draws the same shuffling order and augmentation from the run's seeded
  generator and keeps its contiguous part of every global batch
  (:func:`~pruning_suite.data.shards.batch_part`). In-memory splits gather and augment the whole
  global batch on every rank (a small cost on the device) and slice it (:func:`local_part`);
  image folders decode only the rank's part (``FolderSplit.train_batches(shard=...)``).
- Gradients: torch's ``DistributedDataParallel``, whose communication hook weights rank r's
  gradient by its share ``b_r / B`` of the global batch and sums, so the result is the gradient
  of the global batch's mean loss even when the last batch of an epoch splits unevenly (DDP's
  default averages over ranks).
- BatchNorm: on CUDA, ``SyncBatchNorm`` while training (batch statistics over the global batch,
  as in one process). torch has no ``SyncBatchNorm`` on the CPU: there each rank normalizes with
  its part's statistics and the running statistics are rank 0's (DDP broadcasts buffers before
  every forward pass), so the numbers of a BatchNorm model differ from one process's.
- Dropout draws its masks per rank from the global RNG: not one process's masks.
- Evaluation: every rank evaluates a contiguous shard of the split; correct counts are summed.
- Epoch checkpoints: rank 0 alone writes them; every rank resumes from the same file.

Code that must run in one process (the pruning stage, run by rank 0) runs inside
:func:`single_process`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.datasets import DataSplits, Split
from ..data.shards import batch_part
from ..errors import PruningSuiteError, TrainingError

__all__ = [
    "COLLECTIVE_TIMEOUT",
    "World",
    "active",
    "agreed",
    "batch_shard",
    "check_batches",
    "data_parallel",
    "epoch_evaluator",
    "is_main",
    "joined",
    "local_part",
    "single_process",
    "summed",
    "world_size",
]

COLLECTIVE_TIMEOUT = timedelta(hours=24)
"""How long a rank waits for the others in one collective (rank 0's pruning stage, a base model
another run is training). When a rank fails, torchrun stops the others at once."""

Evaluator = Callable[[nn.Module, Split], float]


@dataclass(frozen=True)
class World:
    """The processes of one data-parallel run.

    Attributes:
        rank: This process's rank in ``[0, size)``; rank 0 alone writes files.
        size: Processes in the run (``torchrun``'s ``WORLD_SIZE``).
        local_rank: Rank on this machine; a CUDA rank trains on ``cuda:local_rank``.
    """

    rank: int
    size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: writes the submission, the base-model cache and the checkpoints."""
        return self.rank == 0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> World | None:
        """The world ``torchrun`` describes in ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.

        Returns:
            None outside torchrun, or when it runs one process.

        Raises:
            PruningSuiteError: A variable is not an integer, or the ranks do not fit the size.
        """
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return None
        try:
            size, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError as err:
            raise PruningSuiteError(
                f"torchrun's WORLD_SIZE/RANK/LOCAL_RANK are not integers ({err})",
                "start data-parallel runs with 'torchrun --nproc-per-node N pruning-suite run ...'",
            ) from None
        if not (0 <= rank < size and 0 <= local_rank <= rank):
            raise PruningSuiteError(
                f"RANK={rank}, LOCAL_RANK={local_rank} do not fit WORLD_SIZE={size}",
                "start data-parallel runs with 'torchrun --nproc-per-node N pruning-suite run ...'",
            )
        return None if size == 1 else cls(rank, size, local_rank)


_active: World | None = None


def active() -> World | None:
    """The world this process trains in now; None in one process (or in :func:`single_process`)."""
    return _active


def world_size() -> int:
    """Processes training together now: 1 unless inside :func:`joined`."""
    return 1 if _active is None else _active.size


def is_main() -> bool:
    """Whether this process writes files: rank 0, or a process on its own."""
    return _active is None or _active.is_main


@contextmanager
def _acting(world: World | None) -> Iterator[None]:
    global _active
    before, _active = _active, world
    try:
        yield
    finally:
        _active = before


@contextmanager
def joined(world: World, device: torch.device) -> Iterator[None]:
    """Join the process group for the block (``env://``: torchrun's ``MASTER_ADDR``/``PORT``).

    Args:
        world: This process's place in the run.
        device: ``cuda:LOCAL_RANK`` (NCCL) or the CPU (gloo).
    """
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        rank=world.rank,
        world_size=world.size,
        timeout=COLLECTIVE_TIMEOUT,
        device_id=device if cuda else None,
    )
    try:
        with _acting(world):
            yield
    finally:
        dist.destroy_process_group()


@contextmanager
def single_process() -> Iterator[None]:
    """Train and evaluate in this process alone for the block (rank 0's pruning stage)."""
    with _acting(None):
        yield


def check_batches(examples: int, batch_size: int, max_batches: int | None, phase: str) -> None:
    """Refuse a training phase whose batches cannot be shared by the world's processes.

    Args:
        examples: Training examples per epoch.
        batch_size: The recipe's (global) batch size.
        max_batches: Batches per epoch (smoke runs), None for all.
        phase: Names the phase in the message (``"base training"``, ``"retraining"``).

    Raises:
        PruningSuiteError: The world size does not divide ``batch_size``, or the epoch's last
            batch has fewer examples than there are processes.
    """
    size = world_size()
    if batch_size % size:
        raise PruningSuiteError(
            f"torchrun runs {size} processes, which do not divide the {phase} batch size "
            f"{batch_size} (each process takes an equal part of every batch)",
            f"run with a --nproc-per-node that divides {batch_size}",
        )
    if max_batches is not None:
        examples = min(examples, max_batches * batch_size)
    if 0 < examples % batch_size < size:
        raise PruningSuiteError(
            f"the last {phase} batch of an epoch holds {examples % batch_size} examples, fewer "
            f"than the {size} processes sharing it",
            "run with fewer processes (--nproc-per-node)",
        )


def local_part(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous part of a global batch; the whole batch in one process.

    Args:
        inputs: ``[B, ...]`` the global batch's inputs.
        labels: ``[B]`` its labels.
    """
    if _active is None:
        return inputs, labels
    part = batch_part(len(labels), _active.rank, _active.size)
    return inputs[part], labels[part]


def batch_shard() -> dict[str, tuple[int, int]]:
    """Keyword arguments of an image folder's ``train_batches``: ``{"shard": (rank, size)}``,
    nothing in one process."""
    return {} if _active is None else {"shard": (_active.rank, _active.size)}


def summed(total: torch.Tensor, seen: int) -> tuple[torch.Tensor, int]:
    """An epoch's loss sum (float64 scalar) and example count, summed over the ranks."""
    if _active is None:
        return total, seen
    both = torch.stack([total, torch.tensor(float(seen), dtype=torch.float64, device=total.device)])
    dist.all_reduce(both)
    return both[0], int(both[1])


def agreed(value: int, what: str = "epochs resumed from the checkpoint") -> int:
    """``value``, checked to be the same on every rank.

    Raises:
        TrainingError: Ranks differ (their models or checkpoint files do).
    """
    if _active is None:
        return value
    low, high = torch.tensor([value]), torch.tensor([-value])
    if dist.get_backend() == "nccl":
        low, high = low.cuda(), high.cuda()
    dist.all_reduce(low, dist.ReduceOp.MIN)
    dist.all_reduce(high, dist.ReduceOp.MIN)
    if int(low) != -int(high):
        raise TrainingError(
            f"the ranks disagree on the {what} ({int(low)} to {-int(high)})",
            "every rank must see the same cache folder (PRUNING_SUITE_CACHE); remove "
            "<cache>/work/*.pt and run again",
        )
    return value


def epoch_evaluator(
    data: DataSplits, evaluate: Evaluator
) -> Callable[[nn.Module], tuple[float, float]] | None:
    """An epoch's ``(val_top1, test_top1)``, each rank evaluating a shard; None in one process.

    Args:
        data: The run's splits.
        evaluate: Top-1 in percent of a model on a split (``pruning_suite.engine.train.evaluate``).
    """
    if _active is None:
        return None
    return lambda model: (_sharded(evaluate, model, data.val), _sharded(evaluate, model, data.test))


def _sharded(evaluate: Evaluator, model: nn.Module, split: Split) -> float:
    """Top-1 in percent over ``split``, this rank evaluating its contiguous shard; counts summed."""
    assert _active is not None
    part = batch_part(len(split), _active.rank, _active.size)
    if hasattr(split, "subset"):  # an image folder
        shard = split.subset(np.arange(part.start, part.stop, dtype=np.int64))
    else:
        shard = Split(split.images[part], split.labels[part], split.scale, split.mean, split.std)
    correct = round(evaluate(model, shard) * len(shard) / 100)  # the count behind the percent
    count = torch.tensor([correct], dtype=torch.int64, device=split.labels.device)
    dist.all_reduce(count)
    return 100.0 * int(count) / max(len(split), 1)


@contextmanager
def data_parallel(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` wrapped for data-parallel training in the block; ``model`` in one process.

    The wrapper shares ``model``'s parameters; on CUDA its BatchNorm layers are SyncBatchNorm in
    the block (same parameters and buffers) and plain again after it. Each step's gradient is
    the global batch's mean-loss gradient (see the module docstring).
    """
    if _active is None:
        yield model
        return
    device = next(iter(model.parameters())).device
    swapped = _sync_batchnorm(model) if device.type == "cuda" else []
    try:
        ids = [device] if device.type == "cuda" else None
        parallel = DistributedDataParallel(model, device_ids=ids)
        share = _Share(device)
        parallel.register_forward_pre_hook(share.count)
        parallel.register_comm_hook(share, _weighted_sum)
        yield parallel
    finally:
        for parent, name, original in swapped:
            setattr(parent, name, original)


class _Share:
    """This rank's share ``b_r / B`` of the current global batch, a tensor on the device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.weight = torch.ones((), device=device)

    def count(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        """Forward pre-hook: all-reduce the batch sizes of this step."""
        local = torch.tensor(float(len(args[0])), device=self.device)
        total = local.clone()
        dist.all_reduce(total)
        self.weight = local / total


def _weighted_sum(share, bucket):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
    """DDP communication hook: sum over ranks of each rank's gradient times its share.

    Unannotated: DDP refuses a hook whose annotations are strings (``from __future__ import
    annotations``); ``bucket`` is a ``dist.GradBucket``, the result a ``Future[Tensor]``."""
    buffer = bucket.buffer().mul_(share.weight.to(bucket.buffer().dtype))
    work = dist.all_reduce(buffer, async_op=True)
    assert work is not None
    return work.get_future().then(lambda fut: fut.value()[0])


def _sync_batchnorm(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every BatchNorm layer by a SyncBatchNorm sharing its parameters and buffers;
    returns ``(parent, name, original)`` to put back."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, nn.SyncBatchNorm
            ):
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
                swapped.append((parent, name, child))
    return swapped
