"""Crash safety of training (issue 14): every epoch is checkpointed, and a rerun after kill -9
resumes from the last complete epoch and ends bit-identical to a run never interrupted."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pruning_suite import hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.data.datasets import load_dataset
from pruning_suite.engine.models import build_model
from pruning_suite.engine.resume import EpochCheckpoint, fingerprint
from pruning_suite.engine.train import train
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run.runner import RunConfig, run

from .crash_kit import EPOCHS, comparable, finish, kill_9, start, wait_for

PHASES = {"base": "base training", "retraining": "retraining"}


class Crash(Exception):
    """Stands for the process dying inside an epoch's callback."""


def _setup(epochs: int = 4):
    protocol = load_protocol("digits-convnet")
    data = load_dataset(protocol.dataset)
    recipe = protocol.base_model.recipe.model_copy(
        update={"epochs": epochs, "lr_schedule": "0:0.05,2:0.005"}
    )
    torch.manual_seed(0)
    model = build_model(protocol.architecture, protocol.dataset.input_shape, 10)
    norm = (protocol.dataset.mean, protocol.dataset.std)
    return model, data, recipe, norm


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_resumes_bit_identical_after_a_crash_in_epoch_2(tmp_path) -> None:
    model, data, recipe, norm = _setup()
    whole = train(model, data, recipe, 7, max_batches=5, normalization=norm)
    expected, rng_after = _state(model), torch.get_rng_state()

    def crash_at_2(row) -> None:
        if row.epoch == 2:
            raise Crash

    box = EpochCheckpoint(tmp_path / "work" / "phase.pt")
    model, *_ = _setup()
    with pytest.raises(Crash):
        train(model, data, recipe, 7, crash_at_2, max_batches=5, normalization=norm, checkpoint=box)
    saved = torch.load(box.path, weights_only=True)
    assert saved["epochs_done"] == 2  # epoch 2 finished but its callback died: not saved
    assert [row["epoch"] for row in saved["log"]] == [0, 1]

    model, *_ = _setup()
    torch.manual_seed(12345)  # a different global RNG: the checkpoint's state must win
    rows = []
    resumed = train(
        model, data, recipe, 7, rows.append, max_batches=5, normalization=norm, checkpoint=box
    )
    assert [row.epoch for row in rows] == [2, 3]  # only the missing epochs were trained
    assert resumed == whole  # every logged float
    assert all(torch.equal(expected[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_after)


def test_a_checkpoint_of_another_start_is_never_resumed(tmp_path) -> None:
    model, data, recipe, norm = _setup(epochs=2)
    box = EpochCheckpoint(tmp_path / "phase.pt")
    train(model, data, recipe, 7, max_batches=3, normalization=norm, checkpoint=box)
    assert torch.load(box.path, weights_only=True)["epochs_done"] == 2
    model, *_ = _setup(epochs=2)
    rows = []
    train(model, data, recipe, 8, rows.append, max_batches=3, normalization=norm, checkpoint=box)
    assert [row.epoch for row in rows] == [0, 1]  # seed 8 is another start: trained in full
    box.path.write_bytes(b"garbage")
    model, *_ = _setup(epochs=2)
    rows.clear()
    train(model, data, recipe, 8, rows.append, max_batches=3, normalization=norm, checkpoint=box)
    assert [row.epoch for row in rows] == [0, 1]  # a damaged file is ignored, then replaced
    assert torch.load(box.path, weights_only=True)["epochs_done"] == 2


def test_fingerprint_changes_with_one_weight_and_with_the_recipe() -> None:
    model, _, recipe, _ = _setup()
    first = fingerprint(model, recipe.model_dump_json(), 0)
    assert fingerprint(model, recipe.model_dump_json(), 0) == first
    assert fingerprint(model, recipe.model_dump_json(), 1) != first
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-7
    assert fingerprint(model, recipe.model_dump_json(), 0) != first


def test_an_unwritable_checkpoint_warns_and_training_goes_on(tmp_path) -> None:
    model, data, recipe, norm = _setup(epochs=2)
    (tmp_path / "file").write_text("")
    box = EpochCheckpoint(tmp_path / "file" / "phase.pt")  # its folder is a file
    with pytest.warns(RuntimeWarning, match="without epoch checkpoints"):
        log = train(model, data, recipe, 7, max_batches=3, normalization=norm, checkpoint=box)
    assert len(log) == 2


# ------------------------------------------------------------------------------------------------
# The run: interrupted in-process (fast), and kill -9 of the real command line (slow)


class Killed(BaseException):
    """Not an Exception, so it goes through the observer guard as SIGKILL would."""


class DieAt:
    """An observer plugin that dies at the end of one epoch of one phase."""

    def __init__(self, phase: str, epoch: int) -> None:
        self.phase, self.epoch = phase, epoch

    @hookimpl
    def on_epoch_end(self, phase: str, row: dict) -> None:
        if (phase, row["epoch"]) == (self.phase, self.epoch):
            raise Killed


@pytest.mark.parametrize("phase", ["base", "retraining"])
def test_an_interrupted_run_resumes_and_ends_bit_identical(tmp_path, monkeypatch, phase) -> None:
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))
    config = RunConfig(plugin="l1norm", smoke=True, save_model=True, out=tmp_path / "whole")
    whole = run(config)
    if phase == "base":  # the base model must be trained again
        for file in (tmp_path / "cache" / "base").iterdir():
            file.unlink()
    config = replace(config, out=tmp_path / "crashed")
    with pytest.raises(Killed):
        run(config, load_registry(extra_plugins=(DieAt(phase, 1),)))
    (checkpoint,) = (tmp_path / "cache" / "work").glob("*.pt")
    assert torch.load(checkpoint, weights_only=True)["epochs_done"] == 1
    again = run(config)
    assert comparable(again.path.parent) == comparable(whole.path.parent)
    assert not checkpoint.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "epoch"), [("base", 3), ("retraining", 2)])
def test_kill_9_mid_phase_loses_at_most_one_epoch_and_the_rerun_is_bit_identical(
    tmp_path, phase, epoch
) -> None:
    """The real command line, killed with SIGKILL while it reports epoch ``epoch`` (3 of 5 base
    epochs, 2 of 5 retraining epochs), then run again: 3 subprocess runs, about 15 s on a free
    2-core CPU."""
    cache, work = tmp_path / "cache", tmp_path / "cache" / "work"
    finish(start(tmp_path / "whole", tmp_path / "cache-whole"))
    expected = comparable(tmp_path / "whole")

    out = tmp_path / "crashed"
    proc = start(out, cache, f"halt:{phase}:{epoch}")
    wait_for(out / "halted", proc)
    kill_9(proc)
    (checkpoint,) = work.glob("*.pt")
    assert torch.load(checkpoint, weights_only=True)["epochs_done"] == epoch  # 0..epoch-1 kept
    assert not list(out.rglob("*.json"))

    err = finish(start(out, cache))
    assert f"{PHASES[phase]} resumes after epoch {epoch} of {EPOCHS}" in err
    assert comparable(out) == expected
    assert not list(work.glob("*.pt")), "the checkpoint outlived the stored result"
    assert not list(tmp_path.rglob("*.tmp"))
