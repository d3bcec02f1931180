"""A full or read-only disk (issue 14): too little room fails before training, a submission that
cannot be written is kept where the error says, and a cache that cannot be written leaves no
partial file and loses no training."""

from __future__ import annotations

import errno
import json
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from pruning_suite.errors import OutputError
from pruning_suite.run import basecache, stages
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(folder))
    return folder


def _smoke(out: Path) -> RunConfig:
    return RunConfig(plugin="l1norm", smoke=True, out=out, device="cpu")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_too_little_room_fails_before_training_in_one_line(tmp_path, cache, monkeypatch) -> None:
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 12_300_000, 12_300_000)
    )
    with pytest.raises(OutputError) as info:
        run(_smoke(tmp_path / "out"))
    assert "only 12.3 MB free on the disk of the cache" in info.value.message
    assert "needs about 52.4 MB" in info.value.message  # the 50 MiB floor: digits is tiny
    assert "\n" not in info.value.message
    assert not (cache / "base").exists() and not list((cache / "work").glob("*.pt"))


def test_a_submission_that_cannot_be_written_is_kept_and_the_rerun_resumes_at_the_end(
    tmp_path, cache, monkeypatch
) -> None:
    out, real = tmp_path / "out", stages.write_json_atomic

    def disk_full(path, data) -> None:
        if out in Path(path).parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(stages, "write_json_atomic", disk_full)
    with pytest.raises(OutputError) as info:
        run(_smoke(out))
    kept = cache / "recovered" / "digits-convnet" / "l1norm"
    (recovered,) = kept.glob("*.json")
    assert info.value.message.startswith("cannot write the submission ")
    assert f"(No space left on device); it was kept in {recovered}" in info.value.message
    assert info.value.hint.startswith(f"free space or fix the folder, then: mv {recovered} ")
    assert (cache / "work" / f"run-{recovered.stem}-retraining.pt").is_file()  # nothing lost

    monkeypatch.setattr(stages, "write_json_atomic", real)
    target = Path(info.value.hint.split()[-1])
    shutil.move(recovered, target)
    assert validate_file(target) == []
    kept_data = json.loads(target.read_text())
    again = run(_smoke(out))  # space freed: the rerun resumes retraining after its last epoch
    assert again.path == target
    fresh = json.loads(target.read_text())
    for data in (kept_data, fresh):
        for key in ("created", "timings", "latency"):
            data.pop(key, None)
        data["base_model"].pop("source")
    assert fresh == kept_data
    assert not list((cache / "work").glob("*.pt"))


def test_an_unwritable_cache_leaves_no_partial_file_and_keeps_the_training(
    tmp_path, cache, monkeypatch, capsys
) -> None:
    real_write_atomic = basecache.write_atomic

    def read_only(path, write, unwritable, **kwargs):  # the cache's disk refuses the write
        def refused(handle):
            raise OSError(errno.EROFS, "Read-only file system")

        return real_write_atomic(path, refused, unwritable, **kwargs)

    monkeypatch.setattr(basecache, "write_atomic", read_only)
    with pytest.raises(OutputError) as info:
        run(_smoke(tmp_path / "out"))
    assert "into the base-model cache: Read-only file system" in info.value.message
    assert "\n" not in info.value.message
    assert _files(cache / "base") == []  # no partial model, no temporary file
    (checkpoint,) = (cache / "work").glob("base-*.pt")  # the finished training is kept

    monkeypatch.undo()
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(cache))
    capsys.readouterr()
    again = run(_smoke(tmp_path / "out"))
    assert "base training resumes after epoch 2 of 2" in capsys.readouterr().err
    assert again.submission.base_model.source == "trained"
    assert not checkpoint.exists()
