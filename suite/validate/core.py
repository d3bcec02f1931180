"""The engine of ``pruning-suite validate``: every problem of every submission file, with its path.

A file goes through four stages; a stage runs only when the one before found nothing, so each
problem is reported once, at the stage that can explain it best:

1. :func:`~pruning_suite.record.jsonio.read_json`: size, UTF-8, depth, syntax, NaN, duplicate keys,
   lone surrogates.
2. ``schema_version``: a version the suite does not know is one problem, not fifty.
3. The packaged JSON Schema (Draft 2020-12): every violation, sorted by JSON path.
4. The pydantic model (what the schema cannot say), then the consistency checks in
   :data:`CONSISTENCY_CHECKS`, which recompute each derived number (and the run id) from the raw
   fields and, for a protocol shipped with the suite, check the run against its recipe. Each
   check's docstring starts with its rule id (see RULES.md).

Folders are searched recursively for ``*.json``; a symlink that leads out of the folder is skipped
with a warning, never followed; a folder without any ``*.json`` file is an error. Across files,
duplicate run ids are reported.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from jsonschema import Draft202012Validator, ValidationError
from pydantic import ValidationError as PydanticValidationError

from ..errors import SubmissionError
from ..protocol.spec import ComparisonProtocol, canonical_json, list_protocols
from ..record.jsonio import file_sha256, json_path, read_json
from ..record.schema import load_packaged_schema
from ..record.submission import SCHEMA_VERSION, Submission
from ..rules.setups import SETUP_RULES, certify, scratch_epochs, scratch_recipe

__all__ = [
    "CONSISTENCY_CHECKS",
    "MAX_PROBLEMS_PER_FILE",
    "SUPPORTED_SCHEMA_VERSIONS",
    "CheckContext",
    "FileResult",
    "Finding",
    "Problem",
    "check_file",
    "check_across_files",
    "check_paths",
    "expected_run_id",
    "format_problems",
    "has_errors",
    "json_path",
    "known_protocol",
    "rule_of",
    "results_to_json",
    "shipped_protocol",
    "strict_results",
    "validate_file",
    "validate_paths",
]

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (SCHEMA_VERSION,)
"""Submission ``schema_version`` values this suite can validate."""

MAX_PROBLEMS_PER_FILE = 100
"""A broken file reports at most this many problems, then one line saying how many were left out."""

_SKIPPED = "skipped: "
_NO_FILES = "no submission files found under "
_NO_FILES_HINT = "submission files end in .json; check the folder"
_EMPTY_PATH = "the path is empty (an empty argument would otherwise mean the current folder)"
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")
_REL_TOL_SPEEDUP = 1e-6
_ABS_TOL = 1e-9
_REL_TOL_LR = 1e-9
_SCHEMA_RULE = "R-SCHEMA-1"

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file.

    Attributes:
        path: The file, as given or found (``str`` so that it serializes as is).
        where: JSON path inside the file, e.g. ``$.final.test_top1`` or ``$.retraining[3].lr``;
            ``$`` for the file as a whole.
        message: What is wrong, one line.
        severity: ``"error"`` (the file is invalid) or ``"warning"`` (reported, not fatal).
        hint: How to fix it, one line; may be empty.
        rule: The rule id (RULES.md) the problem violates, e.g. ``"R-RETRAIN-2"``;
            ``"R-SCHEMA-1"`` for problems of reading and format; empty for a path that is not a
            submission file (a skipped symlink, a folder without files).
    """

    path: str
    where: str
    message: str
    severity: Severity = "error"
    hint: str = ""
    rule: str = ""

    def format(self) -> str:
        """``path: where: severity [rule]: message`` (and the hint on an indented second line)."""
        rule = f" [{self.rule}]" if self.rule else ""
        line = f"{self.path}: {self.where}: {self.severity}{rule}: {self.message}"
        return f"{line}\n  hint: {self.hint}" if self.hint else line

    def report_line(self) -> str:
        """The one line ``pruning-suite report`` prints on stderr for this problem.

        An error keeps its file out of the ranking (``not ranked: path: where: message``); a
        warning does not (``warning: path: where: message``).
        """
        prefix = "not ranked" if self.severity == "error" else "warning"
        return f"{prefix}: {self.path}: {self.where}: {self.message}"


@dataclass
class FileResult:
    """The outcome of validating one file.

    Attributes:
        path: The file.
        problems: Every problem found, errors and warnings.
        data: The parsed JSON when the file could be read, else None.
        submission: The validated model when stages 1-3 passed (consistency errors may remain).
    """

    path: Path
    problems: list[Problem] = field(default_factory=list)
    data: Any = None
    submission: Submission | None = None

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)


# --------------------------------------------------------------------------- consistency checks


class Finding(NamedTuple):
    """What a consistency check yields: a JSON path, a one-line message and an optional hint."""

    where: str
    message: str
    severity: Severity = "error"
    hint: str = ""
    rule: str = ""


@dataclass(frozen=True)
class CheckContext:
    """What a consistency check sees.

    Attributes:
        submission: The schema- and model-valid submission.
        path: The file it was read from, or None for a submission not read from a file.
        protocol: The protocol the run claims, when the suite knows it (shipped, or given to
            ``validate --protocol FILE``) and its content hash matches; else None.
        given: The protocols given to ``validate --protocol FILE`` (or by a study).
    """

    submission: Submission
    path: Path | None = None
    protocol: ComparisonProtocol | None = None
    given: tuple[ComparisonProtocol, ...] = ()


Check = Callable[[CheckContext], Iterable[Finding]]


def _num(value: float) -> str:
    return f"{value:.10g}"


def check_flops_are_twice_macs(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-1: FLOPs = 2 x MACs, dense and pruned (MACs are multiply-accumulates)."""
    m = ctx.submission.pruning
    for kind, macs, flops in (
        ("dense", m.macs_dense, m.flops_dense),
        ("pruned", m.macs_pruned, m.flops_pruned),
    ):
        if flops != 2 * macs:
            yield Finding(
                f"$.pruning.flops_{kind}",
                f"flops_{kind} is {flops} but 2 x macs_{kind} is {2 * macs}; FLOPs = 2 x MACs",
            )


def check_speedup(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-2: speedup = macs_dense / macs_pruned (relative tolerance 1e-6)."""
    m = ctx.submission.pruning
    expected = m.macs_dense / m.macs_pruned
    if not math.isclose(m.speedup, expected, rel_tol=_REL_TOL_SPEEDUP):
        yield Finding(
            "$.pruning.speedup",
            f"speedup is {_num(m.speedup)} but macs_dense / macs_pruned is {_num(expected)}",
        )


def check_sparsity(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-3: sparsity = 1 - params_pruned / params_dense (filter granularity) or
    1 - params_nonzero / params_dense (weight granularity), absolute tolerance 1e-9."""
    m = ctx.submission.pruning
    if m.granularity == "weight":
        if m.params_nonzero is None:
            return  # R-MEAS-7 reports the missing count
        expected, formula = (
            1 - m.params_nonzero / m.params_dense,
            "1 - params_nonzero / params_dense",
        )
    else:
        expected, formula = 1 - m.params_pruned / m.params_dense, "1 - params_pruned / params_dense"
    if not math.isclose(m.sparsity, expected, rel_tol=0, abs_tol=_ABS_TOL):
        yield Finding(
            "$.pruning.sparsity",
            f"sparsity is {_num(m.sparsity)} but {formula} is {_num(expected)}",
        )


def check_effective_counts(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-7: masked zeros are not dense compute: weight granularity records effective counts.

    For weight granularity, ``params_nonzero``, ``macs_effective``, ``flops_effective`` and
    ``effective_speedup`` are present, the dense shapes are kept (``params_pruned ==
    params_dense``, ``macs_pruned == macs_dense``), and the method's granularity is the
    protocol's. Whenever present: ``flops_effective = 2 x macs_effective``, ``effective_speedup =
    macs_dense / macs_effective`` (relative 1e-6), effective figures <= the pruned ones.
    """
    sub = ctx.submission
    m = sub.pruning
    if sub.method.granularity != m.granularity:
        yield Finding(
            "$.method.granularity",
            f"method granularity is {sub.method.granularity!r} but pruning.granularity is "
            f"{m.granularity!r}",
        )
    fields = ("params_nonzero", "macs_effective", "flops_effective", "effective_speedup")
    missing = [name for name in fields if getattr(m, name) is None]
    if m.granularity == "weight":
        for name in missing:
            yield Finding(
                f"$.pruning.{name}",
                f"{name} is missing; weight granularity records effective counts",
            )
        for kind in ("params", "macs"):
            if getattr(m, f"{kind}_pruned") != getattr(m, f"{kind}_dense"):
                yield Finding(
                    f"$.pruning.{kind}_pruned",
                    f"{kind}_pruned differs from {kind}_dense; weight granularity keeps dense "
                    "shapes (the removed weights are counted by the effective figures)",
                )
    if m.macs_effective is not None and m.flops_effective is not None:
        if m.flops_effective != 2 * m.macs_effective:
            yield Finding(
                "$.pruning.flops_effective",
                f"flops_effective is {m.flops_effective} but 2 x macs_effective is "
                f"{2 * m.macs_effective}; FLOPs = 2 x MACs",
            )
    if m.macs_effective is not None and m.effective_speedup is not None:
        expected = m.macs_dense / m.macs_effective
        if not math.isclose(m.effective_speedup, expected, rel_tol=_REL_TOL_SPEEDUP):
            yield Finding(
                "$.pruning.effective_speedup",
                f"effective_speedup is {_num(m.effective_speedup)} but macs_dense / "
                f"macs_effective is {_num(expected)}",
            )
    for kind, effective, pruned in (
        ("params_nonzero", m.params_nonzero, m.params_pruned),
        ("macs_effective", m.macs_effective, m.macs_pruned),
    ):
        if effective is not None and effective > pruned:
            yield Finding(
                f"$.pruning.{kind}",
                f"{kind} is {effective} but the pruned model has {pruned}; non-zero counts "
                "cannot exceed the model's",
            )


def check_base_params(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-4: the base model's parameter count is the dense count the pruning stage measured."""
    sub = ctx.submission
    if sub.base_model.params != sub.pruning.params_dense:
        yield Finding(
            "$.base_model.params",
            f"base_model.params is {sub.base_model.params} but pruning.params_dense is "
            f"{sub.pruning.params_dense}; both count the same dense model",
        )


def check_layer_ratios(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-5: each layer's achieved_ratio = (before - after) / before (abs. tolerance 1e-9)."""
    for i, layer in enumerate(ctx.submission.pruning.layers):
        expected = (layer.before - layer.after) / layer.before
        if not math.isclose(layer.achieved_ratio, expected, rel_tol=0, abs_tol=_ABS_TOL):
            yield Finding(
                f"$.pruning.layers[{i}].achieved_ratio",
                f"layer {layer.name!r}: achieved_ratio is {_num(layer.achieved_ratio)} but "
                f"(before - after) / before is ({layer.before} - {layer.after}) / {layer.before}"
                f" = {_num(expected)}",
            )


def check_final_is_last_epoch(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVAL-1: the reported accuracy is the final retraining epoch's, or (``selection:
    best-val``) that of the retraining epoch with the best validation top-1, earliest on ties;
    never a best test epoch, and never an epoch before the last pruning step (the pruning stage's
    rows are not retraining rows)."""
    sub = ctx.submission
    rows = sub.retraining
    if sub.final.selection == "best-val":
        best = max(row.val_top1 for row in rows)
        chosen = next(i for i, row in enumerate(rows) if row.val_top1 == best)
        how = "the retraining epoch with the best validation top-1"
    else:
        chosen = len(rows) - 1
        how = "the last retraining epoch"
    if sub.final.selected_epoch is not None and sub.final.selected_epoch != chosen:
        yield Finding(
            "$.final.selected_epoch",
            f"selected_epoch is {sub.final.selected_epoch} but {how} is {chosen}",
        )
    for name in ("test_top1", "val_top1"):
        final, logged = getattr(sub.final, name), getattr(rows[chosen], name)
        if not math.isclose(final, logged, rel_tol=0, abs_tol=_ABS_TOL):
            yield Finding(
                f"$.final.{name}",
                f"final.{name} is {_num(final)} but {how} ($.retraining[{chosen}]) has "
                f"{_num(logged)}; report the final epoch (or the best-validation one), never the "
                "best test epoch",
            )


def check_delta_top1(ctx: CheckContext) -> Iterator[Finding]:
    """R-EVAL-2: final.delta_top1 = final.test_top1 - base_model.dense_test_top1 (abs. 1e-9)."""
    sub = ctx.submission
    expected = sub.final.test_top1 - sub.base_model.dense_test_top1
    if not math.isclose(sub.final.delta_top1, expected, rel_tol=0, abs_tol=_ABS_TOL):
        yield Finding(
            "$.final.delta_top1",
            f"delta_top1 is {_num(sub.final.delta_top1)} but final.test_top1 - "
            f"base_model.dense_test_top1 is {_num(expected)}",
        )


def check_epoch_numbers(ctx: CheckContext) -> Iterator[Finding]:
    """R-LOG-1: retraining epochs are numbered 0, 1, ..., n-1 in order."""
    for i, row in enumerate(ctx.submission.retraining):
        if row.epoch != i:
            yield Finding(
                f"$.retraining[{i}].epoch",
                f"epoch is {row.epoch} but row {i} must be epoch {i}; epochs are numbered 0..n-1",
            )


def check_rankable(ctx: CheckContext) -> Iterator[Finding]:
    """R-RANK-1: rankable == not smoke: smoke runs are never ranked, every other run is."""
    sub = ctx.submission
    if sub.rankable != (not sub.smoke):
        yield Finding(
            "$.rankable",
            f"rankable is {str(sub.rankable).lower()} but smoke is {str(sub.smoke).lower()}; "
            "rankable must equal not smoke",
        )


def check_run_id_file_name(ctx: CheckContext) -> Iterator[Finding]:
    """R-ID-1: a file named like a run id (``<12 hex digits>.json``) holds that run."""
    if ctx.path is None or not _RUN_ID.match(ctx.path.stem):
        return
    if ctx.path.stem != ctx.submission.run_id:
        yield Finding(
            "$.run_id",
            f"run_id is {ctx.submission.run_id!r} but the file is named {ctx.path.name!r}",
        )


def check_pruned_not_larger(ctx: CheckContext) -> Iterator[Finding]:
    """R-MEAS-6: pruning never adds: macs_pruned <= macs_dense, params_pruned <= params_dense."""
    m = ctx.submission.pruning
    for kind, dense, pruned in (
        ("macs", m.macs_dense, m.macs_pruned),
        ("params", m.params_dense, m.params_pruned),
    ):
        if pruned > dense:
            yield Finding(
                f"$.pruning.{kind}_pruned",
                f"{kind}_pruned is {pruned} but {kind}_dense is {dense}; a pruned model is not "
                "larger than its dense model",
            )


def check_pruned_model_file(ctx: CheckContext) -> Iterator[Finding]:
    """R-FILE-1: a saved model is ``<run_id>.pt`` in the submission's own folder, with its sha256.

    Only that one name is ever opened, and only when it is a regular file (not a symlink) in the
    folder of the submission file; a missing file is a warning (databases may omit big files).
    """
    sub = ctx.submission
    saved = sub.pruned_model
    if saved is None:
        return
    if saved.file != f"{sub.run_id}.pt":
        yield Finding(
            "$.pruned_model.file",
            f"pruned_model.file is {saved.file!r} but the run's model file is {sub.run_id}.pt",
        )
        return
    if ctx.path is None:
        return
    model_path = ctx.path.parent / saved.file
    if model_path.is_symlink() or not model_path.is_file():
        yield Finding(
            "$.pruned_model.file",
            f"{saved.file} is not a regular file beside the submission; its sha256 is unchecked",
            "warning",
            "copy the .pt file next to the .json, or drop pruned_model from the file",
        )
        return
    actual = file_sha256(model_path)
    if actual != saved.sha256:
        yield Finding(
            "$.pruned_model.sha256",
            f"{saved.file} has sha256 {actual[:12]}... but the submission says "
            f"{saved.sha256[:12]}...",
            hint="the model file was replaced or corrupted; rerun with --save-model",
        )


def expected_run_id(submission: Submission) -> str:
    """The run id the suite gives this run (``pruning_suite.run.runner.compute_run_id``, torch-free).

    It is the first 12 hex digits of the sha256 of the canonical JSON (sorted keys, no spaces) of
    ``{"protocol": [id, version], "method": [name, version, config], "target": target id,
    "seed": seed, "smoke": smoke}``.

    Args:
        submission: A model-valid submission.

    Returns:
        12 lower-case hex digits.
    """
    key = {
        "protocol": [submission.protocol.id, submission.protocol.version],
        "method": [submission.method.name, submission.method.version, submission.method.config],
        "target": submission.target.id,
        "seed": submission.seed,
        "smoke": submission.smoke,
    }
    if submission.retraining_override:
        key["retraining_override"] = submission.retraining_override
    if submission.method.reinit:
        key["reinit"] = submission.method.reinit
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:12]


def check_run_id(ctx: CheckContext) -> Iterator[Finding]:
    """R-ID-2: run_id is the hash of the file's own protocol, method, config, target, seed, smoke.

    See :func:`expected_run_id`. Catches a file edited after the run (e.g. a smoke run turned
    into ``smoke: false, rankable: true``) and a copy of one run filed under a new id.
    """
    sub = ctx.submission
    expected = expected_run_id(sub)
    if sub.run_id != expected:
        yield Finding(
            "$.run_id",
            f"run_id is {sub.run_id!r} but this file's protocol, method, config, target, seed "
            f"and smoke give run id {expected!r}",
            hint="a run id is computed, not chosen: the file was edited or copied after the "
            "run; rerun it with 'pruning-suite run'",
        )


def shipped_protocol(protocol_id: str, version: int) -> ComparisonProtocol | None:
    """The protocol shipped with this suite under ``protocol_id`` at ``version``, else None.

    Only the suite's own protocol files are looked up (never a path named by a submission).

    Args:
        protocol_id: A protocol id, e.g. ``"digits-convnet"``.
        version: The protocol version.

    Returns:
        The shipped protocol, or None for an id the suite does not ship or another version.
    """
    protocol = _shipped_protocols().get(protocol_id)
    return protocol if protocol is not None and protocol.version == version else None


def known_protocol(
    sub: Submission, protocols: Sequence[ComparisonProtocol] = ()
) -> ComparisonProtocol | None:
    """The protocol ``sub`` ran under, if the suite knows it with the same content hash.

    Looked up among ``protocols`` (given by the user) first, then the shipped ones; only a
    protocol with the submission's id, version and content hash counts.
    """
    ref = sub.protocol
    for protocol in (*protocols, shipped_protocol(ref.id, ref.version)):
        if (
            protocol is not None
            and (protocol.id, protocol.version) == (ref.id, ref.version)
            and protocol.content_hash == ref.content_hash
        ):
            return protocol
    return None


@cache
def _shipped_protocols() -> dict[str, ComparisonProtocol]:
    return {protocol.id: protocol for protocol in list_protocols()}


def check_protocol_content_hash(ctx: CheckContext) -> Iterator[Finding]:
    """R-PROTO-1: a run under a shipped protocol id and version records that protocol's hash
    (and so does a run under a protocol given with ``--protocol FILE``).

    A protocol id the suite does not ship, or a shipped id at another version, is a warning: the
    run cannot be checked against a recipe (R-RETRAIN-2, R-RETRAIN-3 are skipped).
    """
    ref = ctx.submission.protocol
    name = f"{_inline(ref.id)}@{ref.version}"
    shipped = _shipped_protocols().get(ref.id)
    if ctx.protocol is not None and ctx.protocol is not shipped:
        return  # a protocol the user gave (validate --protocol FILE) with this content hash
    changed = [p for p in ctx.given if (p.id, p.version) == (ref.id, ref.version)]
    if changed and shipped is None:
        yield Finding(
            "$.protocol.content_hash",
            f"content_hash is {ref.content_hash[:12]}... but the given protocol {name} hashes to "
            f"{changed[0].content_hash[:12]}...: the protocol changed after this run",
            hint="give a changed protocol a new version, so its runs are told apart",
        )
        return
    if shipped is None:
        yield Finding(
            "$.protocol.id",
            f"protocol {name} is not shipped with this suite; recipe not checked",
            "warning",
        )
    elif shipped.version != ref.version:
        yield Finding(
            "$.protocol.version",
            f"protocol {name} is not shipped with this suite (it ships {ref.id}@"
            f"{shipped.version}); recipe not checked",
            "warning",
        )
    elif ref.content_hash != shipped.content_hash:
        yield Finding(
            "$.protocol.content_hash",
            f"content_hash is {ref.content_hash[:12]}... but the shipped protocol {name} hashes "
            f"to {shipped.content_hash[:12]}...; the run did not follow the shipped protocol",
            hint=f"rerun under the shipped protocol, or give a changed protocol a new id "
            f"('pruning-suite protocols show {ref.id}')",
        )


def _setup_findings(ctx: CheckContext, rule: str) -> Iterator[Finding]:
    """The unmet requirements of one setup rule, as warnings: such a run is certified lower
    (open division), which R-CERT-1 holds the file to; it is not invalid."""
    if ctx.protocol is None or ctx.submission.smoke:
        return
    for setup, rule_id, check in SETUP_RULES:
        if ctx.submission.scratch is not None and setup != "S1":
            continue  # a scratch baseline is judged by its SX budget (R-SX-1), not S2..S4.2
        if rule_id == rule:
            for unmet in check(ctx.submission, ctx.protocol):
                message = f"not {setup}: {unmet.message}"
                yield Finding(unmet.where, message, "warning", unmet.hint, rule)


def check_dataset_checksum(ctx: CheckContext) -> Iterator[Finding]:
    """R-DATA-2: S1 needs the protocol's dataset checksum (``rules.check_dataset_checksum``)."""
    yield from _setup_findings(ctx, "R-DATA-2")


def check_target_tolerance(ctx: CheckContext) -> Iterator[Finding]:
    """R-TARGET-1: S1 needs sparsity and speedup within tolerance of the target's."""
    yield from _setup_findings(ctx, "R-TARGET-1")


def check_base_model(ctx: CheckContext) -> Iterator[Finding]:
    """R-BASE-2: S2 needs the protocol's base model (``rules.check_base_model``)."""
    yield from _setup_findings(ctx, "R-BASE-2")


def check_retraining_epochs(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-2: S3.1 needs the protocol's retraining epochs; a smoke run logs at most that many.

    A rankable run with other epochs is a warning (open division, certified at most S2); a smoke
    run logging more epochs than the protocol's is an error.
    """
    sub = ctx.submission
    if (
        ctx.protocol is not None
        and sub.smoke
        and len(sub.retraining) > ctx.protocol.retraining.epochs
    ):
        yield Finding(
            "$.retraining",
            f"{len(sub.retraining)} retraining epochs are logged but protocol {sub.protocol.id}@"
            f"{sub.protocol.version} retrains for {ctx.protocol.retraining.epochs}; a smoke run "
            "logs at most that many",
        )
    yield from _setup_findings(ctx, "R-RETRAIN-2")


def check_retraining_recipe(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-3: S3.2 needs the protocol's whole retraining recipe, LR of every epoch included."""
    yield from _setup_findings(ctx, "R-RETRAIN-3")


def check_pruning_stage_epochs(ctx: CheckContext) -> Iterator[Finding]:
    """R-STAGE-1: S4.1 needs pruning-stage epochs within the protocol's pruning budget."""
    yield from _setup_findings(ctx, "R-STAGE-1")


def check_pruning_stage_lr(ctx: CheckContext) -> Iterator[Finding]:
    """R-STAGE-2: S4.2 needs the pruning budget's LR schedule."""
    yield from _setup_findings(ctx, "R-STAGE-2")


def check_retraining_override(ctx: CheckContext) -> Iterator[Finding]:
    """R-RETRAIN-4: a declared retraining override is what ran, and a run that ran another
    recipe than its protocol's (a scratch baseline: than its budget's,
    :func:`pruning_suite.rules.setups.scratch_recipe`) declares it (so it is its own row and run id)."""
    sub = ctx.submission
    override, recipe = sub.retraining_override or {}, sub.retraining_recipe
    if recipe is None:
        return
    if sub.scratch is not None and override:
        yield Finding(
            "$.retraining_override",
            "a scratch baseline trains its SX budget's recipe; it cannot declare a retraining "
            "override",
        )
    for name, value in override.items():
        ran = getattr(recipe, name, None)
        if sub.smoke and name == "epochs" and isinstance(ran, int) and ran <= value:
            continue  # a smoke run cuts every phase short
        if ran != value:
            yield Finding(
                f"$.retraining_override.{name}",
                f"retraining_override says {name} {value!r} but the recorded recipe has "
                f"{getattr(recipe, name, None)!r}",
            )
    if ctx.protocol is not None and not sub.smoke:
        own, whose = ctx.protocol.retraining, "the protocol's"
        names: tuple[str, ...] = ("epochs", "lr_schedule")  # the rest: R-RETRAIN-2/3
        if sub.scratch is not None:  # trained from scratch for its budget (R-SX-1 checks it)
            own, whose = scratch_recipe(ctx.protocol, sub.scratch.epochs), "its scratch budget's"
            names = tuple(type(own).model_fields)  # S2..S4.2 checks skip scratch: all of it here
            for row in sub.retraining:
                if row.lr != own.lr_at(row.epoch):
                    yield Finding(
                        f"$.retraining[{row.epoch}].lr",
                        f"epoch {row.epoch} logged LR {row.lr:g} but its scratch budget's "
                        f"schedule {own.lr_schedule} gives {own.lr_at(row.epoch):g}",
                    )
                    break
        tail = "" if sub.scratch is not None else " but retraining_override does not declare it"
        for name in names:
            ran, expected = _plain(getattr(recipe, name)), _plain(getattr(own, name))
            if name not in override and ran != expected:
                yield Finding(
                    f"$.retraining_recipe.{name}",
                    f"retraining {name} {ran!r} differs from {whose} {expected!r}{tail}",
                )


def _plain(value: Any) -> Any:
    """A recipe field as plain data (a recorded and a protocol augmentation are other classes)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def check_certification(ctx: CheckContext) -> Iterator[Finding]:
    """R-CERT-1: the recorded setup and division are what the file's own fields support.

    Recomputed with :func:`pruning_suite.rules.setups.certify` under the known protocol; a file that
    claims a stricter setup or the closed division without meeting it is an error. A file without
    a certification (older format) is a warning: it is ranked as open division.
    """
    sub = ctx.submission
    if ctx.protocol is None:
        return
    expected = certify(sub, ctx.protocol)
    recorded = sub.certification
    if recorded is None:
        yield Finding(
            "$.certification",
            f"no certification recorded; the fields support {expected.setup or 'no setup'} "
            f"({expected.division} division)",
            "warning",
            "rerun with this suite to record it; until then the run is ranked as open division",
        )
        return
    if (recorded.setup, recorded.division) != (expected.setup, expected.division):
        yield Finding(
            "$.certification",
            f"certification says {recorded.setup} ({recorded.division} division) but the file's "
            f"fields support {expected.setup or 'no setup'} ({expected.division} division)",
            hint="; ".join(expected.unmet[:3]) or "do not edit a submission's certification",
        )


def check_scratch_budget(ctx: CheckContext) -> Iterator[Finding]:
    """R-SX-1: a scratch baseline trained exactly its SX-A / SX-B budget.

    ``scratch.epochs`` equals :func:`pruning_suite.rules.setups.scratch_epochs` of the recorded K1, P,
    K2, F1 and F2; F2 is the run's measured ``flops_pruned`` and F1 its ``flops_dense``; and under
    a known protocol, K1 and K2 are the protocol's and ``includes_retraining`` its choice.
    """
    sub = ctx.submission
    info = sub.scratch
    if info is None:
        return
    expected = scratch_epochs(
        info.setup,
        info.pretrain_epochs,
        info.retraining_epochs,
        info.flops_dense,
        info.flops_pruned,
        info.includes_retraining,
        info.pruning_epochs,
    )
    if info.epochs != expected:
        yield Finding(
            "$.scratch.epochs",
            f"scratch trained {info.epochs} epochs but its {info.setup} budget is {expected}",
            hint="train the scratch model for exactly its budget",
        )
    measured = (sub.pruning.flops_dense, sub.pruning.flops_pruned)
    if (info.flops_dense, info.flops_pruned) != measured:
        yield Finding(
            "$.scratch.flops_pruned",
            f"the budget uses F1/F2 = {info.flops_dense}/{info.flops_pruned} but the run measured "
            f"{measured[0]}/{measured[1]}",
        )
    if ctx.protocol is not None:
        wanted = (
            ctx.protocol.base_model.recipe.epochs,
            ctx.protocol.retraining.epochs,
            ctx.protocol.scratch.includes_retraining,
        )
        got = (info.pretrain_epochs, info.retraining_epochs, info.includes_retraining)
        if got != wanted:
            yield Finding(
                "$.scratch",
                f"K1, K2, includes_retraining are {got} but the protocol's are {wanted}",
            )


def _run_kind(sub: Submission) -> str:
    return "smoke run" if sub.smoke else "rankable run"


def _inline(text: str, limit: int = 60) -> str:
    """``text`` on one line: control characters escaped as in JSON, cut to ``limit``."""
    shown = json.dumps(text, ensure_ascii=False)[1:-1]
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


CONSISTENCY_CHECKS: tuple[Check, ...] = (
    check_flops_are_twice_macs,
    check_speedup,
    check_sparsity,
    check_base_params,
    check_layer_ratios,
    check_pruned_not_larger,
    check_effective_counts,
    check_final_is_last_epoch,
    check_delta_top1,
    check_epoch_numbers,
    check_rankable,
    check_run_id,
    check_run_id_file_name,
    check_pruned_model_file,
    check_protocol_content_hash,
    check_dataset_checksum,
    check_target_tolerance,
    check_base_model,
    check_retraining_epochs,
    check_retraining_recipe,
    check_pruning_stage_epochs,
    check_pruning_stage_lr,
    check_retraining_override,
    check_certification,
    check_scratch_budget,
)
"""Checks run on every model-valid submission, in order; add one by adding its function here."""


# --------------------------------------------------------------------------- one file


def validate_file(path: Path | str, protocols: Sequence[ComparisonProtocol] = ()) -> list[Problem]:
    """Validate one submission file.

    Args:
        path: The JSON file.
        protocols: Protocols besides the shipped ones to check runs against (your own files).

    Returns:
        Every problem found (empty when the file is valid). Never raises on bad input.
    """
    return check_file(Path(path), protocols).problems


def check_file(path: Path, protocols: Sequence[ComparisonProtocol] = ()) -> FileResult:
    """Validate one file and keep what was parsed (see :class:`FileResult`).

    Args:
        path: The JSON file.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).

    Returns:
        The problems, the parsed data and, when it is model-valid, the :class:`Submission`.
    """
    result = FileResult(path)
    try:
        result.data = read_json(path)
    except SubmissionError as err:
        message = err.message.removeprefix(f"{path}: ")  # the file is named once, by Problem
        result.problems.append(Problem(str(path), "$", message, hint=err.hint, rule=_SCHEMA_RULE))
        return result
    consistency = functools.partial(_consistency_problems, protocols=tuple(protocols))
    for stage in (_version_problems, _schema_problems, _model_problems, consistency):
        problems = [_with_rule(p) for p in stage(result)]
        if problems:
            result.problems.extend(_cap(path, problems))
            break
    return result


def _with_rule(problem: Problem) -> Problem:
    """A problem of reading or format (no rule of its own) is an R-SCHEMA-1 problem."""
    return problem if problem.rule else dataclasses.replace(problem, rule=_SCHEMA_RULE)


def _problem(path: Path, finding: Finding, rule: str = "") -> Problem:
    return Problem(
        str(path),
        finding.where,
        finding.message,
        finding.severity,
        finding.hint,
        finding.rule or rule,
    )


def rule_of(check: Callable[..., Any]) -> str:
    """The rule id a check function's docstring starts with (``"R-MEAS-1: ..."``), or ""."""
    match = re.match(r"\s*(R-[A-Z]+-\d+)", check.__doc__ or "")
    return match.group(1) if match else ""


def _cap(path: Path, problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS_PER_FILE:
        return problems
    left = len(problems) - MAX_PROBLEMS_PER_FILE
    more = Problem(
        str(path), "$", f"{left} more problems not shown", hint="fix the ones above first"
    )
    return [*problems[:MAX_PROBLEMS_PER_FILE], more]


def _version_problems(result: FileResult) -> list[Problem]:
    data, path = result.data, str(result.path)
    if not isinstance(data, dict):
        message = f"a submission is a JSON object, not {_json_type(data)}"
        return [Problem(path, "$", message, hint="is this a pruning-suite submission?")]
    supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
    hint = "is this a pruning-suite submission? a newer pruning-suite may read newer versions"
    if "schema_version" not in data:
        message = f"schema_version is missing; supported: {supported}"
        return [Problem(path, "$.schema_version", message, hint=hint)]
    version = data["schema_version"]
    if not _is_int(version) or version not in SUPPORTED_SCHEMA_VERSIONS:
        message = f"schema_version {_short(version)} is not supported; supported: {supported}"
        return [Problem(path, "$.schema_version", message, hint=hint)]
    return []


def _schema_problems(result: FileResult) -> list[Problem]:
    errors = _validator().iter_errors(result.data)
    findings = [f for error in errors for f in _describe_schema_error(error)]
    findings = sorted(dict.fromkeys(findings), key=lambda f: _path_sort_key(f.where))
    return [_problem(result.path, f) for f in findings]


@cache
def _validator() -> Draft202012Validator:
    schema = load_packaged_schema("submission")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _model_problems(result: FileResult) -> list[Problem]:
    try:
        result.submission = Submission.model_validate(result.data)
    except PydanticValidationError as err:
        return [
            Problem(
                str(result.path), json_path(e["loc"]), f"{e['msg']} (got {_short(e.get('input'))})"
            )
            for e in err.errors(include_url=False)
        ]
    return []


def _consistency_problems(
    result: FileResult, protocols: tuple[ComparisonProtocol, ...] = ()
) -> Iterator[Problem]:
    if result.submission is None:
        return
    protocol = known_protocol(result.submission, protocols)
    ctx = CheckContext(result.submission, result.path, protocol, tuple(protocols))
    for check in CONSISTENCY_CHECKS:
        rule = rule_of(check)
        try:
            findings = list(check(ctx))
        except (OverflowError, ZeroDivisionError, ValueError) as err:  # e.g. a 400-digit count
            findings = [
                Finding(
                    "$", f"a number is out of range for this check ({err})", hint="use real values"
                )
            ]
        for finding in findings:
            yield _problem(result.path, finding, rule)


# --------------------------------------------------------------------------- schema messages


def _describe_schema_error(error: ValidationError) -> Iterator[Finding]:
    """Turn one jsonschema error into short findings at the most precise path."""
    parts = list(error.absolute_path)
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind == "anyOf" and value is not None and error.context:
        # an optional field (``X | None``): explain why the value is not a valid X
        branches = [
            e for e in error.context if e.validator != "type" or e.validator_value != "null"
        ]
        for sub_error in branches:
            yield from _describe_schema_error(sub_error)
        if branches:
            return
    if kind == "required" and isinstance(value, dict):
        for name in limit:
            if name not in value:
                yield Finding(json_path([*parts, name]), f"required property {name!r} is missing")
    elif kind == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties", {})
        for name in value:
            if name not in known:
                yield Finding(
                    json_path([*parts, name]),
                    f"unknown property {name!r} (not in schema_version {SCHEMA_VERSION})",
                )
    else:
        yield Finding(json_path(parts), _schema_message(kind, limit, value, error.message))


_BOUNDS = {
    "minimum": "is less than the minimum {limit}",
    "maximum": "is greater than the maximum {limit}",
    "exclusiveMinimum": "must be greater than {limit}",
    "exclusiveMaximum": "must be less than {limit}",
    "minItems": "has fewer than {limit} items",
    "maxItems": "has more than {limit} items",
    "minLength": "is shorter than {limit} characters",
    "pattern": "does not match the pattern {limit}",
    "const": "must be {limit}",
    "enum": "must be one of {limit}",
}


def _schema_message(kind: str, limit: Any, value: Any, fallback: str) -> str:
    if kind == "type":
        wanted = limit if isinstance(limit, str) else " or ".join(limit)
        return f"expected {wanted}, got {_json_type(value)} {_short(value)}"
    if kind in _BOUNDS:
        shown = ", ".join(_short(v) for v in limit) if kind == "enum" else _short(limit)
        return f"{_short(value)} {_BOUNDS[kind].format(limit=shown)}"
    return fallback if len(fallback) <= 200 else fallback[:197] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any, limit: int = 60) -> str:
    """A one-line JSON rendering of ``value``, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _path_sort_key(where: str) -> list[tuple[int, Any]]:
    """Sort JSON paths by component, indices numerically: ``[2]`` before ``[10]``."""
    tokens = re.findall(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]', where)
    return [(1, int(i)) if i else (0, key or json.loads(quoted)) for key, i, quoted in tokens]


# --------------------------------------------------------------------------- files and folders


def validate_paths(
    paths: Sequence[Path | str], protocols: Sequence[ComparisonProtocol] = ()
) -> dict[Path, list[Problem]]:
    """Validate files and folders (recursively, ``*.json``), then check across files.

    Args:
        paths: Files and folders. In a folder, a symlink leading outside that folder is skipped
            with a warning and never followed; each real file is checked once.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).

    Returns:
        Every file (and every skipped or empty path) with its problems, in the order found; a
        valid file maps to an empty list.
    """
    return {r.path: r.problems for r in check_paths(paths, protocols)}


def check_paths(
    paths: Sequence[Path | str], protocols: Sequence[ComparisonProtocol] = ()
) -> list[FileResult]:
    """Like :func:`validate_paths`, keeping what was parsed (used by ``report``).

    Args:
        paths: Files and folders.
        protocols: Protocols besides the shipped ones (see :func:`validate_file`).

    Returns:
        One :class:`FileResult` per file or skipped path.
    """
    results: list[FileResult] = []
    seen: set[Path] = set()
    for given in paths:
        if not str(given).strip():  # Path("") would mean the current folder
            results.append(_not_a_file(Path(given), _EMPTY_PATH, "name a file or a folder"))
            continue
        root = Path(given)
        for path, skip_reason in _discover(root):
            if skip_reason.startswith(_NO_FILES):
                results.append(_not_a_file(path, skip_reason, _NO_FILES_HINT))
                continue
            if skip_reason:
                results.append(FileResult(path, [Problem(str(path), "$", skip_reason, "warning")]))
                continue
            real = path.resolve()
            if real not in seen:
                seen.add(real)
                results.append(check_file(path, protocols))
    check_across_files(results, protocols)  # first: a repeated seed is also a duplicate run id
    _check_duplicate_run_ids(results)
    return results


def _discover(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, "")`` for each file to check under ``root``, ``(path, reason)`` for skips."""
    if not root.is_dir():
        yield root, ""  # a file, or a missing path that read_json reports
        return
    real_root = root.resolve()
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".json"):
                path = Path(folder) / name
                (links if path.is_symlink() else files).append(path)
        for name in dirnames:
            reason = _outside(Path(folder) / name, real_root)
            if reason:
                yield Path(folder) / name, reason
    skipped_links = {path: _outside(path, real_root) for path in links}
    if not files and all(skipped_links.values()):
        yield root, f"{_NO_FILES}{root}"
    yield from ((path, "") for path in files)  # real files first, so a link to one is a duplicate
    yield from skipped_links.items()


def _outside(path: Path, real_root: Path) -> str:
    """Why ``path`` (a symlink) is skipped, or "" when it is not a symlink out of ``real_root``."""
    if not path.is_symlink():
        return ""
    target = path.resolve()
    if not target.exists():
        return f"{_SKIPPED}broken symlink to {target}"
    if not target.is_relative_to(real_root):
        return f"{_SKIPPED}symlink to {target}, outside {real_root}"
    return ""


def _not_a_file(path: Path, message: str, hint: str) -> FileResult:
    """A given path that names no submission file: an error, but no file counted as checked."""
    return FileResult(path, [Problem(str(path), "$", message, hint=hint)])


def check_across_files(
    results: list[FileResult], protocols: Sequence[ComparisonProtocol] = ()
) -> None:
    """The rules that need several files: R-SEED-1, R-SEED-2, R-PROTO-3, R-BASE-3.

    Appends its problems to the files' results. Runs are grouped by what a ranking row is made
    of: protocol id and version, target, method name, version, config and re-initialization,
    retraining override;
    smoke runs are left out (they are never ranked).
    """
    groups: dict[str, list[FileResult]] = defaultdict(list)
    for result in results:
        key = _row_key(result.data)
        if key is not None:
            groups[key].append(result)
    for members in groups.values():
        _check_seeds(members, protocols)
    _check_versions(results)
    _check_bases(results)


def _row_key(data: Any) -> str | None:
    """The ranking row a parsed file belongs to, from its raw fields (valid or not); None for
    smoke runs and files too broken to tell."""
    if not isinstance(data, dict) or data.get("smoke") is not False:
        return None
    try:
        key = [
            data["protocol"]["id"],
            data["protocol"]["version"],
            data["target"]["id"],
            data["method"]["name"],
            data["method"]["version"],
            data["method"]["config"],
            data["method"].get("reinit"),
            data.get("retraining_override"),
        ]
        return canonical_json(key)
    except (KeyError, TypeError, ValueError):
        return None


def _check_seeds(members: list[FileResult], protocols: Sequence[ComparisonProtocol]) -> None:
    """R-SEED-1 (seeds distinct within a row) and R-SEED-2 (the protocol's number of seeds)."""
    valid = [m for m in members if m.ok and m.submission is not None]
    seeds = [m.submission.seed for m in valid]  # type: ignore[union-attr]
    counts = {seed: seeds.count(seed) for seed in seeds}
    shown = ", ".join(str(seed) for seed in sorted(seeds))
    for member in valid:
        if counts[member.submission.seed] > 1:  # type: ignore[union-attr]
            member.problems.append(
                Problem(
                    str(member.path),
                    "$.seed",
                    f"seed {member.submission.seed} is used by more than one run of this method "  # type: ignore[union-attr]
                    f"and configuration (seeds {shown}); the mean over seeds would count it twice",
                    hint="rerun with a distinct seed and delete the copy",
                    rule="R-SEED-1",
                )
            )
    sample = next((m.data for m in members if isinstance(m.data, dict)), None)
    protocol = _protocol_of(sample, protocols)
    if protocol is None:
        return
    distinct = len(set(seeds))
    if distinct >= protocol.seeds:
        return
    severity: Severity = "error" if distinct == 0 else "warning"
    for member in members:
        member.problems.append(
            Problem(
                str(member.path),
                "$.seed",
                f"{distinct} of {protocol.seeds} required seeds of this method under "
                f"{protocol.id}@{protocol.version} are valid runs; a ranked mean needs "
                f"{protocol.seeds}",
                severity,
                f"run the missing seeds (e.g. --seed {_unused_seed(seeds)}) and fix the invalid "
                "files",
                "R-SEED-2",
            )
        )


def _unused_seed(seeds: list[int]) -> int:
    """The smallest seed >= 0 that no run uses (the hint's example of a missing seed)."""
    return next(seed for seed in range(len(seeds) + 1) if seed not in seeds)


def _protocol_of(data: Any, protocols: Sequence[ComparisonProtocol]) -> ComparisonProtocol | None:
    try:
        pid, version = data["protocol"]["id"], data["protocol"]["version"]
    except (KeyError, TypeError):
        return None
    for protocol in protocols:
        if (protocol.id, protocol.version) == (pid, version):
            return protocol
    return shipped_protocol(pid, version) if isinstance(pid, str) and _is_int(version) else None


def _check_versions(results: list[FileResult]) -> None:
    """R-PROTO-3: one protocol id at several versions in one tree is reported (warning)."""
    versions: dict[str, set[int]] = defaultdict(set)
    for result in results:
        if result.submission is not None:
            versions[result.submission.protocol.id].add(result.submission.protocol.version)
    for result in results:
        sub = result.submission
        if sub is not None and len(found := versions[sub.protocol.id]) > 1:
            result.problems.append(
                Problem(
                    str(result.path),
                    "$.protocol.version",
                    f"protocol {_inline(sub.protocol.id)} appears at versions "
                    f"{', '.join(map(str, sorted(found)))} in these files; results of different "
                    "versions are never ranked together",
                    "warning",
                    "rerun old runs under the newest version, or keep the versions in separate folders",
                    "R-PROTO-3",
                )
            )


def _check_bases(results: list[FileResult]) -> None:
    """R-BASE-3: rankable runs of one protocol version in one tree start from one base model.

    A run whose base checkpoint differs from the one most runs of its protocol version share is
    reported (warning): its table row is not comparable on the same base model (S2).
    """
    by_protocol: dict[tuple[str, int], list[FileResult]] = defaultdict(list)
    for result in results:
        sub = result.submission
        if sub is not None and result.ok and not sub.smoke:
            by_protocol[(sub.protocol.id, sub.protocol.version)].append(result)
    for (pid, version), members in by_protocol.items():
        shas = [m.submission.base_model.checkpoint_sha256 for m in members]  # type: ignore[union-attr]
        if len(set(shas)) < 2:
            continue
        common = max(sorted(set(shas)), key=shas.count)
        for member, sha in zip(members, shas, strict=True):
            if sha != common:
                member.problems.append(
                    Problem(
                        str(member.path),
                        "$.base_model.checkpoint_sha256",
                        f"base model {sha[:12]}... differs from {common[:12]}..., the one "
                        f"{shas.count(common)} of {len(shas)} runs under {_inline(pid)}@{version} "
                        "start from; runs on different base models are not S2-comparable",
                        "warning",
                        "rerun from the shared base model (the suite caches one per protocol)",
                        "R-BASE-3",
                    )
                )


def _check_duplicate_run_ids(results: list[FileResult]) -> None:
    by_id: dict[str, list[FileResult]] = defaultdict(list)
    for result in results:
        if isinstance(result.data, dict) and isinstance(run_id := result.data.get("run_id"), str):
            by_id[run_id].append(result)
    for run_id, same in by_id.items():
        if len(same) < 2:
            continue
        for result in same:
            others = ", ".join(str(o.path) for o in same if o is not result)
            result.problems.append(
                Problem(
                    str(result.path),
                    "$.run_id",
                    f"run_id {run_id!r} is also used by {others}",
                    hint="a run id names one run; delete the copy or rerun with another seed",
                    rule="R-ID-1",
                )
            )


# --------------------------------------------------------------------------- output


def strict_results(results: Mapping[Path, list[Problem]]) -> dict[Path, list[Problem]]:
    """``validate --strict``: every warning becomes an error (a skipped symlink included)."""
    return {
        path: [dataclasses.replace(p, severity="error") for p in problems]
        for path, problems in results.items()
    }


def has_errors(results: Mapping[Path, list[Problem]]) -> bool:
    """True when any problem is an error (the ``validate`` command then exits non-zero)."""
    return any(p.severity == "error" for problems in results.values() for p in problems)


def format_problems(results: Mapping[Path, list[Problem]]) -> str:
    """Human-readable output of ``pruning-suite validate``.

    Args:
        results: What :func:`validate_paths` returned.

    Returns:
        One line per problem (``file: $.path: error: message``, hint indented below), then a
        summary line, e.g. ``3 files checked: 2 valid, 1 invalid (2 errors, 0 warnings)``.
    """
    lines = [p.format() for problems in results.values() for p in problems]
    n_errors = sum(p.severity == "error" for ps in results.values() for p in ps)
    n_warnings = sum(p.severity == "warning" for ps in results.values() for p in ps)
    checked = [ps for ps in results.values() if not _only_skipped(ps)]
    invalid = sum(any(p.severity == "error" for p in ps) for ps in checked)
    valid = len(checked) - invalid
    lines.append(
        f"{_plural(len(checked), 'file')} checked: {valid} valid, {invalid} invalid"
        f" ({_plural(n_errors, 'error')}, {_plural(n_warnings, 'warning')})"
    )
    return "\n".join(lines)


def results_to_json(results: Mapping[Path, list[Problem]]) -> dict[str, Any]:
    """Machine-readable output of ``pruning-suite validate --json``.

    Args:
        results: What :func:`validate_paths` returned.

    Returns:
        ``{"valid": bool, "files": [{"path", "valid", "problems": [Problem fields]}]}``.
    """
    files = [
        {
            "path": str(path),
            "valid": not any(p.severity == "error" for p in ps),
            "problems": [asdict(p) for p in ps],
        }
        for path, ps in results.items()
    ]
    return {"valid": not has_errors(results), "files": files}


def _only_skipped(problems: list[Problem]) -> bool:
    """True for an entry that is not a checked file: a skipped link, an empty folder or path."""
    not_files = (_SKIPPED, _NO_FILES, _EMPTY_PATH)
    return bool(problems) and all(p.message.startswith(not_files) for p in problems)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
