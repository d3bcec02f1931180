"""One run over the processes of ``torchrun --nproc-per-node N pruning-suite run ...``.

:func:`launched` reads torchrun's ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``, picks the rank's device
(``cuda:LOCAL_RANK`` with NCCL, or the CPU with gloo) and joins the process group; the run's
training phases are then data-parallel (:mod:`pruning_suite.engine.distributed`: the protocol's
batch size is the global batch, split across the ranks). :func:`stages_for` gives each rank its
stages:

- rank 0 (the leader) runs the run as one process would: it alone takes the run's lock, reads
  and writes the base-model cache and the epoch checkpoints, runs the pruning stage, measures
  latency, and writes the submission;
- the other ranks (followers) load the data, train base model and retraining with it (reading,
  never writing, the same epoch checkpoints), and hear no observer. They take the leader's
  results instead of computing their own: the base model's weights, and the pruned model with
  the pruning stage's records and RNG state (the stage runs once, on rank 0, so the method's
  decision cannot differ between ranks, and a CUDA stage's nondeterminism cannot split them);
  at the end they wait for the submission and read it.

Each rank holds the data on its device. The cache folder must be one every rank sees (one
machine: always). When one rank fails, torchrun stops the others.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.distributed as dist

from ..engine import distributed
from ..engine.distributed import World
from ..engine.measure import measure, measure_effective
from ..engine.models import build_model
from ..engine.resume import EpochCheckpoint
from ..errors import PruningSuiteError
from ..record.jsonio import read_json
from ..record.submission import Submission
from .assemble import PrunedCounts
from .basecache import base_checkpoint, train_from_seed
from .cachekey import base_model_key
from .config import budget, max_batches, resolve_device
from .observe import muted
from .stages import (
    STAGES,
    RunState,
    Stage,
    _measure_dense,
    load_data,
    measure_pruned,
    obtain_base,
    prune,
    write,
)

__all__ = ["check_batches", "launched", "rank_device", "stages_for"]


@contextmanager
def launched(requested: str | None) -> Iterator[tuple[torch.device, World | None]]:
    """The run's device and world; inside torchrun, in its process group for the block.

    Args:
        requested: The ``--device`` asked for (None: CUDA when present, else the CPU).

    Yields:
        ``(device, world)``; world is None outside torchrun or for one process.

    Raises:
        PruningSuiteError: A bad device (:func:`rank_device`) or torchrun environment.
    """
    world = World.from_environment()
    if world is None:
        yield resolve_device(requested), None
        return
    device = rank_device(requested, world)
    with distributed.joined(world, device), nullcontext() if world.is_main else muted():
        yield device, world


def rank_device(requested: str | None, world: World) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` for ``None``/``"cuda"`` with CUDA present, else the CPU.

    Raises:
        PruningSuiteError: ``requested`` names one GPU (``cuda:1``), CUDA is missing, or the
            machine has fewer GPUs than torchrun's processes on it.
    """
    device = resolve_device(requested)
    if device.type == "cpu":
        return device
    if requested is not None and device.index is not None:
        raise PruningSuiteError(
            f"--device {requested} names one GPU, but under torchrun each process trains on "
            "cuda:LOCAL_RANK",
            "pass --device cuda, or leave --device out",
        )
    if world.local_rank >= torch.cuda.device_count():
        raise PruningSuiteError(
            f"torchrun started local rank {world.local_rank}, but this machine has "
            f"{torch.cuda.device_count()} GPUs",
            "run with --nproc-per-node at most the number of GPUs",
        )
    return torch.device("cuda", world.local_rank)


def stages_for(world: World | None) -> tuple[Stage, ...]:
    """The stages this process runs: :data:`~.stages.STAGES`, with a torchrun rank's own steps."""
    if world is None:
        return STAGES
    steps = _LEADER if world.is_main else _FOLLOWER
    return tuple(Stage(stage.name, steps.get(stage.name, stage.step)) for stage in STAGES)


def check_batches(state: RunState) -> None:
    """Refuse a run whose base training or retraining batches the ranks cannot share.

    Raises:
        PruningSuiteError: See :func:`pruning_suite.engine.distributed.check_batches`.
    """
    protocol, smoke = state.plan.protocol, state.config.smoke
    examples, cap = len(state.data.train), max_batches(smoke)
    if protocol.base_model.pretrained is None:
        recipe = budget(protocol.base_model.recipe, smoke)
        distributed.check_batches(examples, recipe.batch_size, cap, "base training")
    distributed.check_batches(examples, state.plan.retraining.batch_size, cap, "retraining")


def _send(value: Any) -> None:
    dist.broadcast_object_list([value], src=0)


def _receive() -> Any:
    box: list[Any] = [None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _packed(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _load_checked(state: RunState) -> None:
    load_data(state)
    check_batches(state)


def _lead_base(state: RunState) -> None:
    """The base model as in one process; the followers train with it, then get its weights."""
    state.on_base_training = lambda: _send("train")
    obtain_base(state)
    weights = {name: t.detach().cpu() for name, t in state.model.state_dict().items()}
    _send(_packed(weights))


def _follow_base(state: RunState) -> None:
    protocol = state.plan.protocol
    spec = protocol.dataset
    model = build_model(
        protocol.architecture, spec.input_shape, spec.num_classes, state.registry.architectures
    ).to(state.device)
    message = _receive()
    if message == "train":
        _train_with_leader(state, model)
        message = _receive()
    weights = torch.load(io.BytesIO(message), map_location=state.device, weights_only=True)
    model.load_state_dict(weights, strict=True)
    state.model = model
    _measure_dense(state)


def _train_with_leader(state: RunState, model: torch.nn.Module) -> None:
    """Base training as the leader's (``basecache``): same init, recipe and epoch checkpoint,
    which this rank reads and never writes."""
    protocol, smoke = state.plan.protocol, state.config.smoke
    recipe = budget(protocol.base_model.recipe, smoke)
    checkpoint = EpochCheckpoint(
        base_checkpoint(base_model_key(protocol, recipe, state.data.sha256, smoke, state.device))
    )
    train_from_seed(model, protocol, state.data, recipe, None, max_batches(smoke), checkpoint)


def _lead_prune(state: RunState) -> None:
    """The pruning stage on rank 0 alone; the pruned model and its records go to the others."""
    with distributed.single_process():
        prune(state)
    device = state.device
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    result = (state.model, state.decision, state.outcome, state.stage_record, state.target_ratios)
    _send(_packed({"result": result, "rng": torch.get_rng_state(), "cuda_rng": cuda_rng}))


def _follow_prune(state: RunState) -> None:
    # the leader's own process sent it (the method's code ran in a child, or --in-process)
    sent = torch.load(io.BytesIO(_receive()), map_location=state.device, weights_only=False)
    state.model, state.decision, state.outcome, state.stage_record, state.target_ratios = sent[
        "result"
    ]
    torch.set_rng_state(sent["rng"])
    if sent["cuda_rng"] is not None:
        torch.cuda.set_rng_state(sent["cuda_rng"], state.device)


def _lead_measure(state: RunState) -> None:
    measure_pruned(state)
    dist.barrier()  # the others start retraining only after the latency is timed


def _follow_measure(state: RunState) -> None:
    """Counts of the pruned model (the scratch regime's budget needs them); no latency."""
    shape, model = state.plan.protocol.dataset.input_shape, state.model
    pruned, effective = measure(model, shape), measure_effective(model, shape)
    state.counts = PrunedCounts(state.dense, pruned, effective, state.outcome.layers)
    dist.barrier()


def _lead_write(state: RunState) -> None:
    write(state)
    _send(state.kept_stored)


def _follow_write(state: RunState) -> None:
    """Wait for the leader's submission and read it."""
    state.kept_stored = bool(_receive())
    state.submission = Submission.model_validate(read_json(state.out_path))


def _nothing(state: RunState) -> None:
    """A stage only rank 0 runs (evaluation evidence, saving, assembly)."""


_LEADER = {
    "data": _load_checked,
    "base model": _lead_base,
    "pruning": _lead_prune,
    "measure": _lead_measure,
    "write": _lead_write,
}
_FOLLOWER = {
    "data": _load_checked,
    "base model": _follow_base,
    "pruning": _follow_prune,
    "measure": _follow_measure,
    "evaluation": _nothing,
    "save model": _nothing,
    "assembly": _nothing,
    "write": _follow_write,
}
