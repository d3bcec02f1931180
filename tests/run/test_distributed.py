"""Data-parallel runs (issue 13, item 5): N processes give one process's numbers.

Two CPU processes on gloo against one process with the same global batch: the engine's train()
directly (spawned ranks, 127.0.0.1), and the whole command line under ``torchrun``. The models are
BatchNorm-free: torch has no SyncBatchNorm on the CPU, so a BatchNorm model's CPU ranks normalize
with their own part of the batch (pruning_suite.engine.distributed).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pruning_suite.data.datasets import DataSplits, Split
from pruning_suite.data.shards import batch_part
from pruning_suite.engine import distributed
from pruning_suite.engine.distributed import World
from pruning_suite.errors import PruningSuiteError

ROOT = Path(__file__).parents[2]
LOSS_RTOL = 1e-5
"""Relative tolerance of training losses: the ranks sum gradients in another order (measured
below 1e-7: 6e-8 and 1e-8 for the digits MLP's two smoke retraining epochs)."""


def test_the_parts_of_a_batch_cover_it_in_order() -> None:
    for length in (0, 1, 7, 64):
        for size in (1, 2, 3, 8):
            parts = [batch_part(length, rank, size) for rank in range(size)]
            assert [i for p in parts for i in range(length)[p]] == list(range(length))
            assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


def test_the_world_comes_from_torchrun_variables() -> None:
    assert World.from_environment({}) is None
    assert World.from_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    world = World.from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert world == World(3, 4, 1) and not world.is_main
    with pytest.raises(PruningSuiteError, match="do not fit"):
        World.from_environment({"WORLD_SIZE": "2", "RANK": "2"})


def test_batches_the_ranks_cannot_share_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distributed, "_active", World(0, 3))
    with pytest.raises(PruningSuiteError, match="do not divide the retraining batch size 64"):
        distributed.check_batches(1257, 64, None, "retraining")
    monkeypatch.setattr(distributed, "_active", World(0, 4))
    distributed.check_batches(1257, 64, None, "retraining")  # last batch 41: 10 or 11 each
    with pytest.raises(PruningSuiteError, match="last base training batch .* holds 2 examples"):
        distributed.check_batches(130, 64, None, "base training")
    distributed.check_batches(130, 64, 2, "base training")  # smoke: only the full batches


def _data() -> DataSplits:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        images = torch.randint(0, 17, (n, 1, 8, 8), generator=generator, dtype=torch.uint8)
        labels = (images[:, 0, 2:6, 2:6].float().mean((1, 2)) > 8).long()  # learnable
        return Split(images, labels, 16.0, (0.3,), (0.4,))

    return DataSplits(split(203), split(61), split(67), "0" * 64, "synthetic")


def _train() -> list[dict[str, float]]:
    """3 epochs of a small conv net; 203 examples in batches of 32: the last one (11) splits
    5 + 6 over two ranks; random crops and flips."""
    from pruning_suite.engine.train import train
    from pruning_suite.protocol.spec import TrainRecipe

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 2))
    recipe = TrainRecipe(
        epochs=3, batch_size=32, lr_schedule="0:0.1,2:0.01", momentum=0.9, weight_decay=5e-4,
        augmentation={"random_crop_padding": 1, "horizontal_flip": True},
    )  # fmt: skip
    return [row.as_dict() for row in train(model, _data(), recipe, seed=3)]


def _rank(rank: int, port: int, queue: object) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    with distributed.joined(World(rank, 2, rank), torch.device("cpu")):
        queue.put((rank, _train()))  # type: ignore[attr-defined]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_same_log(one: list[dict], two: list[dict]) -> None:
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        assert (a["epoch"], a["lr"], a["val_top1"], a["test_top1"]) == (
            b["epoch"], b["lr"], b["val_top1"], b["test_top1"]
        )  # fmt: skip
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=LOSS_RTOL)


@pytest.mark.slow
def test_two_ranks_train_as_one_process_with_the_same_global_batch() -> None:
    import torch.multiprocessing as mp

    one = _train()
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = _free_port()
    ranks = [context.Process(target=_rank, args=(r, port, queue)) for r in range(2)]
    for process in ranks:
        process.start()
    logs = dict(queue.get() for _ in ranks)
    for process in ranks:
        process.join(60)
        assert process.exitcode == 0
    assert logs[0] == logs[1]  # the ranks agree exactly
    _assert_same_log(one, logs[0])
    assert one[-1]["test_top1"] > 80  # it learned: the comparison is not of chance numbers


def _mlp_protocol(folder: Path) -> Path:
    """digits-convnet with a BatchNorm-free MLP (64-32 hidden units, ReLU)."""
    text = (ROOT / "suite" / "protocol" / "files" / "digits-convnet.toml").read_text()
    for old, new in (
        ('id = "digits-convnet"', 'id = "digits-mlp"'),
        ('name = "digits_convnet"', 'name = "mlp"\nkwargs = { widths = [64, 32], activation = "relu" }'),
        ('prunable_layers = ["conv1", "conv2", "fc1"]', 'prunable_layers = ["layers.0", "layers.1"]'),
    ):  # fmt: skip
        assert old in text
        text = text.replace(old, new)
    path = folder / "digits-mlp.toml"
    path.write_text(text)
    return path


def _numbers(submission: dict) -> dict:
    return {
        "base": (submission["base_model"]["dense_val_top1"], submission["base_model"]["dense_test_top1"]),
        "pruning": submission["pruning"],
        "final": submission["final"],
    }  # fmt: skip


@pytest.mark.slow
def test_torchrun_writes_one_submission_with_one_process_numbers(tmp_path: Path) -> None:
    from pruning_suite.run.runner import RunConfig, run

    protocol = _mlp_protocol(tmp_path)
    one = run(RunConfig(plugin="l1norm", protocol=str(protocol), smoke=True, device="cpu",
                        out=tmp_path / "one", jsv=False)).submission.model_dump(mode="json")  # fmt: skip
    env = {**os.environ, "PRUNING_SUITE_CACHE": str(tmp_path / "cache")}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    command += ["-m", "pruning_suite", "run", "--plugin", "l1norm", "--protocol", str(protocol)]
    command += ["--smoke", "--device", "cpu", "--out", str(tmp_path / "two"), "--no-jsv"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("written to") == 1  # rank 0 alone reports
    files = [p for p in (tmp_path / "two").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".json"
    two = json.loads(files[0].read_text())
    assert (one["environment"]["world_size"], two["environment"]["world_size"]) == (1, 2)
    assert two["run_id"] == one["run_id"]
    assert _numbers(two) == _numbers(one)
    _assert_same_log(one["retraining"], two["retraining"])
