"""Re-execution of a submission: ``pruning-suite audit`` (tamper evidence by reproduction).

A submission records everything that selects its run (protocol, target, method, config, seed,
retraining override, re-initialization, smoke budget) and the intra-op thread count it trained
with. :func:`audit_file` reruns exactly that configuration into a scratch folder and compares
every field the run determines: on the CPU the rerun is bit-identical (the suite's runs are
deterministic for a seed and a thread count), so any difference means the file was edited, or
ran on other code or data; on a GPU, floats are compared within ``atol``. A file made under other
settings than the rerun (device, CPU numerics, torch version, threads, processes) may differ
without an edit: the result's ``note`` says so (:func:`settings_note`).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..contract.plugins import PluginRegistry
from ..errors import SubmissionError
from ..record.compare import VOLATILE, compare_runs, settings_note
from ..record.jsonio import read_json
from ..record.submission import Submission
from .config import RunConfig, cpu_threads_set_to
from .runner import run

__all__ = [
    "VOLATILE",
    "AuditResult",
    "audit_config",
    "audit_file",
    "compare_runs",
    "sample_files",
    "settings_note",
]


@dataclass(frozen=True)
class AuditResult:
    """One audited file.

    Attributes:
        path: The submission audited.
        rerun: Where the rerun's submission was kept: None when it reproduced the file (its
            scratch folder is removed then, as after a failed rerun).
        differences: ``"$.path: recorded != rerun"`` for every field that differs; empty when
            the rerun reproduced the file.
        note: One line when the file was made under other settings than the rerun, so that
            differences are expected (:func:`settings_note`); else None.
    """

    path: Path
    rerun: Path | None
    differences: list[str]
    note: str | None = None

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

    The rerun goes to a scratch folder under the system's temporary folder, which is removed
    unless the rerun differs (then the result names it, for a look at the differences).

    Raises:
        SubmissionError: The file cannot be read as a submission.
        PruningSuiteError: The rerun itself fails (unknown plugin, missing data...).
    """
    sub = _submission(path)
    out = Path(tempfile.mkdtemp(prefix="pruning-suite-audit-"))
    try:
        with cpu_threads_set_to(sub.environment.num_threads):
            result = run(audit_config(sub, out, data_dir, protocol), registry)
        recorded = sub.model_dump(mode="json")
        differences = compare_runs(recorded, result.submission.model_dump(mode="json"), atol)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    note = settings_note(recorded, result.submission.model_dump(mode="json"))
    if not differences:
        shutil.rmtree(out, ignore_errors=True)
        return AuditResult(path, None, differences, note)
    return AuditResult(path, result.path, differences, note)


def _submission(path: Path) -> Submission:
    """The submission at ``path``.

    Raises:
        SubmissionError: It cannot be read, or is not a submission of this schema.
    """
    try:
        return Submission.model_validate(read_json(path))
    except ValidationError as err:
        raise SubmissionError(
            f"{path} is not a submission: {err.error_count()} fields do not fit the schema",
            f"run 'pruning-suite validate {path}' to see which",
        ) from err


def sample_files(paths: Sequence[Path], n: int | None, seed: int = 0) -> list[Path]:
    """The submission files under ``paths`` (files or folders), or ``n`` of them drawn with a
    seeded generator (the same ``seed`` draws the same files)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(p for p in path.rglob("*.json") if p.is_file()) if path.is_dir() else [path]
    if n is None or n >= len(files):
        return files
    return sorted(random.Random(seed).sample(files, n))
