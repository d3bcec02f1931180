"""A cached base model records the device it was trained on; a run on another device type uses
it and says so (issue 13: a base trained on CUDA in bf16 was reused by a CPU run without a word)."""

from __future__ import annotations

import json

from pruning_suite.run.runner import RunConfig, run


def test_a_base_model_trained_on_another_device_is_used_and_named(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))
    config = RunConfig(plugin="l1norm", smoke=True, out=tmp_path / "out", device="cpu")
    first = run(config)
    (meta_path,) = (tmp_path / "cache" / "base").glob("*.json")
    meta = json.loads(meta_path.read_text())
    assert meta["trained_on"] == {"device": "cpu", "precision": "float32"}
    capsys.readouterr()
    run(config)
    assert "was trained on" not in capsys.readouterr().err  # same device: nothing to say
    meta["trained_on"] = {"device": "cuda", "precision": "bf16 autocast"}
    meta_path.write_text(json.dumps(meta))
    again = run(config)
    err = capsys.readouterr().err
    assert "was trained on cuda (bf16 autocast); this run on cpu uses it as it is" in err
    assert (
        again.submission.base_model.checkpoint_sha256
        == first.submission.base_model.checkpoint_sha256
    )
