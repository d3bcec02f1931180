"""Helpers of the crash-safety tests: a short digits protocol and the real command line run in a
subprocess through ``crash_driver.py`` (which can halt or pause it at a chosen epoch)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
DRIVER = Path(__file__).with_name("crash_driver.py")
EPOCHS = 5


def short_protocol(folder: Path) -> Path:
    """digits-convnet with 5 base and 5 retraining epochs (each about 0.1 s on a free CPU)."""
    path = folder / "digits-short.toml"
    if not path.exists():
        text = (ROOT / "suite" / "protocol" / "files" / "digits-convnet.toml").read_text()
        for old, new in (
            ('id = "digits-convnet"', 'id = "digits-short"'),
            ("epochs = 30", f"epochs = {EPOCHS}"),
            ("epochs = 20", f"epochs = {EPOCHS}"),
            ('"0:0.05,20:0.005"', '"0:0.05,3:0.005"'),
            ('"0:0.01,10:0.001"', '"0:0.01,3:0.001"'),
        ):
            assert old in text
            text = text.replace(old, new)
        path.write_text(text)
    return path


def start(
    out: Path, cache: Path, where: str | None = None, plugin: str = "l1norm"
) -> subprocess.Popen:
    """``pruning-suite run --plugin PLUGIN`` on the short protocol, ``--save-model``, in a
    subprocess (``where``: ``halt:PHASE:EPOCH`` / ``pause:PHASE:EPOCH``, marker ``out/halted``).
    Its stderr goes to ``out/stderr.txt``."""
    env = {**os.environ, "PRUNING_SUITE_CACHE": str(cache)}
    args = [sys.executable, str(DRIVER), where or "-", str(out / "halted")]
    args += ["run", "--plugin", plugin, "--protocol", str(short_protocol(out.parent))]
    args += ["--quiet", "--out", str(out), "--save-model", "--device", "cpu"]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "stderr.txt", "w") as err:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Until ``path`` exists; fails when ``proc`` ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended first: {stderr_of(proc)}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def finish(proc: subprocess.Popen, timeout: float = 600.0) -> str:
    """Wait for the run; its stderr. Fails when it failed."""
    proc.wait(timeout=timeout)
    assert proc.returncode == 0, stderr_of(proc)
    return stderr_of(proc)


def stderr_of(proc: subprocess.Popen) -> str:
    out = Path(proc.args[3]).parent
    return (out / "stderr.txt").read_text()


def submission(out: Path) -> dict:
    (path,) = out.rglob("*.json")
    return json.loads(path.read_text())


def comparable(out: Path) -> tuple[dict, str]:
    """The submission without what differs between identical runs (times, latency, commit,
    the base model's source), and the sha256 of the saved model."""
    data = submission(out)
    for key in ("created", "timings", "latency"):
        data.pop(key, None)
    data["base_model"].pop("source")
    data["suite"].pop("git_commit")
    (model,) = out.rglob("*.pt")
    return data, hashlib.sha256(model.read_bytes()).hexdigest()
