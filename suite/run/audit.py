"""Re-execution of a submission: ``pruning-suite audit`` (tamper evidence by reproduction).

A submission records everything that selects its run (protocol, target, method, config, seed,
retraining override, re-initialization, smoke budget) and the intra-op thread count it trained
with. :func:`audit_file` reruns exactly that configuration into a scratch folder and compares
every field the run determines: on the CPU the rerun is bit-identical (the suite's runs are
deterministic for a seed and a thread count), so any difference means the file was edited, or
ran on other code or data; on a GPU, floats are compared within ``atol``.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..contract.plugins import PluginRegistry
from ..record.jsonio import read_json
from ..record.submission import Submission
from .config import RunConfig
from .runner import run

__all__ = ["AuditResult", "audit_config", "audit_file", "compare_runs", "sample_files"]

VOLATILE = (
    "created", "timings", "environment", "suite", "pruned_model", "certification", "latency",
)  # fmt: skip
"""Top-level fields a rerun may change: when, how long, where, by which checkout, the
certification (recomputed by ``validate`` under the current rule set anyway) and the measured
latency (a property of the machine and its load, not of the run).

``base_model.source`` (trained, cached or imported) is ignored too: the checkpoint's sha256 says
whether it is the same base model."""


@dataclass(frozen=True)
class AuditResult:
    """One audited file.

    Attributes:
        path: The submission audited.
        rerun: Where the rerun's submission was written.
        differences: ``"$.path: recorded != rerun"`` for every field that differs; empty when
            the rerun reproduced the file.
    """

    path: Path
    rerun: Path
    differences: list[str]

    @property
    def reproduced(self) -> bool:
        return not self.differences


def audit_config(
    sub: Submission, out: Path, data_dir: Path | None = None, protocol: str | None = None
) -> RunConfig:
    """The :class:`RunConfig` that reruns ``sub`` into ``out`` on the CPU.

    Args:
        sub: The submission.
        out: Folder for the rerun's submission.
        data_dir: Where the dataset is looked for.
        protocol: A protocol file for runs of an unshipped protocol; default ``sub.protocol.id``.
    """
    override = sub.retraining_override or {}
    jsv = sub.trainability is not None and sub.trainability.jsv is not None
    return RunConfig(
        plugin=sub.method.name,
        protocol=protocol or sub.protocol.id,
        target=sub.target.id,
        seed=sub.seed,
        method_config=dict(sub.method.config),
        device="cpu",
        data_dir=data_dir,
        out=out,
        smoke=sub.smoke,
        retraining_epochs=override.get("epochs"),
        retraining_lr_schedule=override.get("lr_schedule"),
        jsv=jsv,
        orthp=sub.method.reinit == "orthp",
    )


def audit_file(
    path: Path,
    data_dir: Path | None = None,
    protocol: str | None = None,
    atol: float = 0.0,
    registry: PluginRegistry | None = None,
) -> AuditResult:
    """Rerun the submission at ``path`` on the CPU, with its recorded thread count, and compare.

    Raises:
        SubmissionError: The file cannot be read as a submission.
        PruningSuiteError: The rerun itself fails (unknown plugin, missing data...).
    """
    sub = Submission.model_validate(read_json(path))
    out = Path(tempfile.mkdtemp(prefix="pruning-suite-audit-"))
    threads = torch.get_num_threads()
    torch.set_num_threads(sub.environment.num_threads)
    try:
        result = run(audit_config(sub, out, data_dir, protocol), registry)
    finally:
        torch.set_num_threads(threads)
    recorded = sub.model_dump(mode="json")
    rerun = result.submission.model_dump(mode="json")
    return AuditResult(path, result.path, compare_runs(recorded, rerun, atol))


def compare_runs(recorded: dict[str, Any], rerun: dict[str, Any], atol: float = 0.0) -> list[str]:
    """Every field of ``recorded`` that ``rerun`` does not reproduce (``VOLATILE`` ignored).

    Floats are equal when ``|a - b| <= atol`` (0: bit-identical); everything else exactly. A
    field the recorded file does not hold (``None`` or absent: written by an older suite) is not
    compared.
    """
    differences: list[str] = []
    for key in sorted(set(recorded) | set(rerun)):
        if key not in VOLATILE:
            differences += _diff(recorded.get(key), rerun.get(key), f"$.{key}", atol)
    return differences


def _diff(a: Any, b: Any, where: str, atol: float) -> Iterator[str]:
    if where == "$.base_model.source":
        return
    if a is None and b is not None:
        return  # not recorded by the suite that wrote the file
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{where}.{key}", atol)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{where}[{i}]", atol)
    elif isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if not (a == b or math.isclose(a, b, rel_tol=0, abs_tol=atol)):
            yield f"{where}: {a!r} != {b!r}"
    elif a != b:
        yield f"{where}: {_short(a)} != {_short(b)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def sample_files(paths: Sequence[Path], n: int | None, seed: int = 0) -> list[Path]:
    """The submission files under ``paths`` (files or folders), or ``n`` of them drawn with a
    seeded generator (the same ``seed`` draws the same files)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.rglob("*.json")) if path.is_dir() else [path]
    if n is None or n >= len(files):
        return files
    return sorted(random.Random(seed).sample(files, n))
