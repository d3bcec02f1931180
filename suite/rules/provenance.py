"""Rules of a run's provenance: its identity, its files, its protocol and its certification.

R-ID-1 (file name), R-ID-2 (run id), R-FILE-1 (the saved model), R-PROTO-1 (the protocol's
content hash) and R-CERT-1 (the recorded certification). This module does not import torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..contract.plugins import load_registry
from ..contract.registry import broken_note
from ..protocol.catalogue import shipped_latest
from ..record.identity import RunIdentity, run_id
from ..record.jsonio import file_sha256
from ..text import inline
from .registry import load_rules
from .rule import CheckContext, Finding, rule_failed
from .setups import not_stricter, recheck

__all__ = [
    "check_certification",
    "check_protocol_content_hash",
    "check_pruned_model_file",
    "check_run_id",
    "check_run_id_file_name",
]

_RUN_ID = re.compile(r"^[0-9a-f]{12}$")


def check_run_id_file_name(ctx: CheckContext) -> Iterator[Finding]:
    """R-ID-1: a file named like a run id (``<12 hex digits>.json``) holds that run."""
    if ctx.path is None or not _RUN_ID.match(ctx.path.stem):
        return
    if ctx.path.stem != ctx.submission.run_id:
        yield Finding(
            "$.run_id",
            f"run_id is {ctx.submission.run_id!r} but the file is named {ctx.path.name!r}",
        )


def check_run_id(ctx: CheckContext) -> Iterator[Finding]:
    """R-ID-2: run_id is the hash of the file's own protocol, method, config, target, seed, smoke,
    retraining override and re-initialization.

    See :func:`pruning_suite.record.identity.run_id`. Catches a file edited after the run (e.g. a
    smoke run turned into ``smoke: false, rankable: true``) and a copy of one run filed under a
    new id.
    """
    sub = ctx.submission
    expected = run_id(RunIdentity.of(sub))
    if sub.run_id != expected:
        yield Finding(
            "$.run_id",
            f"run_id is {sub.run_id!r} but this file's protocol, method, config, target, seed "
            f"and smoke (with its retraining override and re-initialization) give run id {expected!r}",
            hint="a run id is computed, not chosen: the file was edited or copied after the "
            "run; rerun it with 'pruning-suite run'",
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
            "copy the .pt file next to the .json, or drop pruned_model from the file",
            severity="warning",
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


def check_protocol_content_hash(ctx: CheckContext) -> Iterator[Finding]:
    """R-PROTO-1: a run under a shipped protocol id and version records that protocol's hash
    (and so does a run under a protocol given with ``--protocol FILE``).

    A protocol id the suite does not ship, or a shipped id at another version, is a warning: the
    run cannot be checked against a recipe (R-RETRAIN-2, R-RETRAIN-3 are skipped).
    """
    ref = ctx.submission.protocol
    name = f"{inline(ref.id)}@{ref.version}"
    shipped = shipped_latest(ref.id)
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
            f"protocol {name} is not shipped with this suite nor registered by a plugin with this "
            "content; recipe not checked",
            "give its file with --protocol FILE, or install the plugin whose protocol folder "
            "holds it",
            severity="warning",
        )
    elif shipped.version != ref.version:
        yield Finding(
            "$.protocol.version",
            f"protocol {name} is not shipped with this suite (it ships {ref.id}@"
            f"{shipped.version}); recipe not checked",
            severity="warning",
        )
    elif ref.content_hash != shipped.content_hash:
        yield Finding(
            "$.protocol.content_hash",
            f"content_hash is {ref.content_hash[:12]}... but the shipped protocol {name} hashes "
            f"to {shipped.content_hash[:12]}...; the run did not follow the shipped protocol",
            hint=f"rerun under the shipped protocol, or give a changed protocol a new id "
            f"('pruning-suite protocols show {ref.id}')",
        )


def check_certification(ctx: CheckContext) -> Iterator[Finding]:
    """R-CERT-1: the recorded setup and division are what the file's own fields support.

    Recomputed with :func:`pruning_suite.rules.setups.recheck` under the known protocol: the
    suite's rules and the plugin setup rules the file was certified under that are installed
    here. A file that claims a stricter setup or the closed division without meeting them is an
    error, and so is one that claims less, unless a rule could not run when it was certified
    (its ``unmet`` says so): then it is a warning. When some of its plugin rules are not
    installed, a setup below the recomputed one is accepted (a plugin rule only lowers a
    certification), with a warning naming them. A file without a certification (older format)
    is a warning: it is ranked as open division.
    """
    sub = ctx.submission
    if ctx.protocol is None:
        return
    expected = recheck(sub, ctx.protocol, ctx.rules)
    recorded = sub.certification
    if recorded is None:
        yield Finding(
            "$.certification",
            f"no certification recorded; the fields support {expected.setup or 'no setup'} "
            f"({expected.division} division)",
            "rerun with this suite to record it; until then the run is ranked as open division",
            severity="warning",
        )
        return
    rules = load_rules() if ctx.rules is None else ctx.rules
    missing = [name for name in recorded.plugin_rules if name not in rules]
    if (recorded.setup, recorded.division) == (expected.setup, expected.division):
        return
    lower = recorded.division == "open" or expected.division == "closed"
    crashed = any(rule_failed(reason) for reason in recorded.unmet)
    if crashed and lower and not_stricter(recorded.setup, expected.setup):
        yield Finding(
            "$.certification",
            f"certification says {recorded.setup or 'no setup'} ({recorded.division} division), "
            f"less than the {expected.setup} its fields support here: a rule could not run when "
            "it was certified",
            "rerun it to record the certification its fields earn",
            severity="warning",
        )
        return
    if missing and not_stricter(recorded.setup, expected.setup):
        yield Finding(
            "$.certification.plugin_rules",
            f"certified under plugin rules not installed here ({', '.join(missing)}); the "
            f"suite's rules support {expected.setup or 'no setup'}, the file claims "
            f"{recorded.setup or 'no setup'}",
            "install the plugins that register them to recheck it fully"
            + broken_note(load_registry().broken),
            severity="warning",
        )
        return
    yield Finding(
        "$.certification",
        f"certification says {recorded.setup} ({recorded.division} division) but the file's "
        f"fields support {expected.setup or 'no setup'} ({expected.division} division)",
        hint="; ".join(expected.unmet[:3]) or "do not edit a submission's certification",
    )
