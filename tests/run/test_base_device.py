"""How a base model was trained is part of its cache key (issue 13: a base trained on CUDA in bf16
was reused by a CPU run without a word; 1 and 2 CPU threads train other bits)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import torch

from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run.audit import audit_file
from pruning_suite.run.cachekey import (
    base_model_key,
    others_note,
    trained_with,
    training_code_sha256,
)
from pruning_suite.run.runner import RunConfig, run

CPU = torch.device("cpu")


def test_the_key_holds_device_precision_threads_torch_and_processes(monkeypatch) -> None:
    protocol = load_protocol(None)
    recipe, sha = protocol.base_model.recipe, protocol.dataset.sha256

    def key(device: torch.device = CPU, smoke: bool = False) -> str:
        return base_model_key(protocol, recipe, sha, smoke, device)

    threads = torch.get_num_threads()
    here = key()
    assert key(torch.device("cuda")) != here and key(smoke=True) != here
    try:
        torch.set_num_threads(threads + 1)
        assert key() != here
    finally:
        torch.set_num_threads(threads)
    assert key() == here
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert key() != here
    monkeypatch.undo()
    monkeypatch.setattr("pruning_suite.engine.distributed.world_size", lambda: 2)
    assert key() != here

    assert trained_with(torch.device("cuda")) == {
        "code": training_code_sha256(),
        "device": "cuda",
        "precision": "bf16 autocast",
        "torch": torch.__version__,
        "world_size": 2,
    }


def test_a_run_with_other_threads_trains_its_own_base_model_and_says_why(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))
    config = RunConfig(plugin="l1norm", smoke=True, out=tmp_path / "out", device="cpu")
    first = run(config)
    (meta_path,) = (tmp_path / "cache" / "base").glob("*.json")
    meta = json.loads(meta_path.read_text())
    assert meta["trained_on"]["device"] == "cpu" and meta["trained_on"]["threads"] == 2
    assert meta["trained_on"]["precision"] == "float32"
    assert "other cached base models" not in capsys.readouterr().err

    monkeypatch.setenv("PRUNING_SUITE_CPU_THREADS", "1")
    again = run(config)
    err = capsys.readouterr().err
    assert f"has other cached base models ({meta_path.stem} (trained, other threads))" in err
    assert again.submission.base_model.source == "trained"
    assert again.submission.environment.num_threads == 1
    assert len(list((tmp_path / "cache" / "base").glob("*.json"))) == 2
    assert first.submission.base_model.source == "trained" and first.replaced is None
    assert again.path == first.path and again.replaced == (
        "it held other results of this run id; the file was made with CPU threads: 2; this "
        "rerun used CPU threads: 1: bit differences are expected, so a mismatch alone does not "
        "mean the file was edited"
    )

    monkeypatch.setenv("PRUNING_SUITE_CPU_THREADS", "2")  # audit reruns with the file's count
    audited = audit_file(again.path)
    assert audited.reproduced and audited.note is None, audited.differences
    assert os.environ["PRUNING_SUITE_CPU_THREADS"] == "2"


def test_the_note_names_how_each_other_base_model_was_made_otherwise() -> None:
    protocol, here = load_protocol(None), trained_with(CPU)

    def entry(key: str, source: str = "trained", smoke: bool = False, **trained_on) -> object:
        made = {**here, **trained_on} if source == "trained" else None
        return SimpleNamespace(
            protocol=protocol.id, protocol_version=protocol.version, smoke=smoke, key=key,
            source=source, trained_on=made,
        )  # fmt: skip

    entries = [entry("a", torch="0.0", threads=9), entry("b"), entry("c", "imported"),
               entry("d", smoke=True), entry("z")]  # fmt: skip
    said = others_note(protocol, "z", False, entries, here)
    assert said is not None and said.startswith(
        f"{protocol.id}@{protocol.version} has other cached base models (a (trained, other torch, "
        "threads), b (trained, other data or recipe), c (imported)), so this run trains its own; "
        "to start from an imported one, import its file again"
    )
    assert others_note(protocol, "z", False, entries[-1:], here) is None
