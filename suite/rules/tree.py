"""Rules across the files of a tree (``validate DIR``, ``report DIR``).

R-SEED-1 and R-SEED-2 (the seeds of one ranking row), R-PROTO-3 (one protocol at several
versions), R-BASE-3 (one base model per protocol version) and R-ID-3 (one file per run id). A
ranking row is :func:`pruning_suite.record.identity.ranking_key`, the key ``report`` ranks by.
Each check takes the tree's :class:`~pruning_suite.rules.rule.TreeEntry` items and yields
findings naming their file. This module does not import torch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from ..protocol.catalogue import any_protocol
from ..protocol.spec import ComparisonProtocol
from ..record.identity import RankingKey, ranking_key
from ..text import inline
from .rule import Finding, TreeContext, TreeEntry

__all__ = [
    "check_base_models",
    "check_duplicate_run_ids",
    "check_protocol_versions",
    "check_seed_count",
    "check_seeds_distinct",
]


def _rows(entries: Sequence[TreeEntry]) -> dict[RankingKey, list[TreeEntry]]:
    """The model-valid runs that are not smoke runs, by ranking row (valid or not)."""
    rows: dict[RankingKey, list[TreeEntry]] = defaultdict(list)
    for entry in entries:
        sub = entry.submission
        if sub is not None and not sub.smoke:
            rows[ranking_key(sub, entry.division, entry.setup)].append(entry)
    return rows


def _seeds(entries: Sequence[TreeEntry]) -> list[int]:
    """The seeds of the valid runs among ``entries``."""
    return [e.submission.seed for e in entries if e.ok and e.submission is not None]


def check_seeds_distinct(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-SEED-1: within one ranking row no seed is used by two valid runs."""
    for members in _rows(entries).values():
        seeds = _seeds(members)
        shown = ", ".join(str(seed) for seed in sorted(seeds))
        for member in members:
            seed = member.submission.seed  # type: ignore[union-attr]
            if member.ok and seeds.count(seed) > 1:
                yield Finding(
                    "$.seed",
                    f"seed {seed} is used by more than one run of this method and configuration "
                    f"(seeds {shown}); the mean over seeds would count it twice",
                    "rerun with a distinct seed and delete the copy",
                    file=member.path,
                )


def check_seed_count(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-SEED-2: a ranking row has the protocol's number of distinct valid seeds.

    Fewer is a warning (``2 of 3``); a row whose files are all invalid is an error (``0 of 3``).
    """
    for members in _rows(entries).values():
        sub = members[0].submission
        assert sub is not None
        protocol = _protocol_of(sub.protocol.id, sub.protocol.version, tree.given)
        seeds = _seeds(members)
        distinct = len(set(seeds))
        if protocol is None or distinct >= protocol.seeds:
            continue
        for member in members:
            yield Finding(
                "$.seed",
                f"{distinct} of {protocol.seeds} required seeds of this method under "
                f"{protocol.id}@{protocol.version} are valid runs; a ranked mean needs "
                f"{protocol.seeds}",
                f"run the missing seeds (e.g. --seed {_unused_seed(seeds)}) and fix the invalid "
                "files",
                severity="error" if distinct == 0 else None,
                file=member.path,
            )


def _unused_seed(seeds: list[int]) -> int:
    """The smallest seed >= 0 that no run uses (the hint's example of a missing seed)."""
    return next(seed for seed in range(len(seeds) + 1) if seed not in seeds)


def _protocol_of(
    protocol_id: str, version: int, given: Sequence[ComparisonProtocol]
) -> ComparisonProtocol | None:
    """The protocol ``protocol_id@version``: a given one first, else a shipped or plugin one."""
    for protocol in given:
        if (protocol.id, protocol.version) == (protocol_id, version):
            return protocol
    return any_protocol(protocol_id, version)


def check_protocol_versions(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-PROTO-3: one protocol id at several versions in one tree is reported (warning)."""
    versions: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        if entry.submission is not None:
            versions[entry.submission.protocol.id].add(entry.submission.protocol.version)
    for entry in entries:
        sub = entry.submission
        if sub is not None and len(found := versions[sub.protocol.id]) > 1:
            yield Finding(
                "$.protocol.version",
                f"protocol {inline(sub.protocol.id)} appears at versions "
                f"{', '.join(map(str, sorted(found)))} in these files; results of different "
                "versions are never ranked together",
                "rerun old runs under the newest version, or keep the versions in separate folders",
                file=entry.path,
            )


def check_protocol_contents(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-PROTO-4: one protocol id and version in one tree has one content hash.

    Results are ranked by protocol id and version, so two contents under one id and version (a
    custom protocol edited without a new version, run into two folders) would share a table.
    Each file of such an id and version is an error naming the hashes.
    """
    hashes: dict[tuple[str, int], set[str]] = defaultdict(set)
    for entry in entries:
        if entry.submission is not None:
            ref = entry.submission.protocol
            hashes[(ref.id, ref.version)].add(ref.content_hash)
    for entry in entries:
        sub = entry.submission
        if sub is None or len(found := hashes[(sub.protocol.id, sub.protocol.version)]) < 2:
            continue
        yield Finding(
            "$.protocol.content_hash",
            f"protocol {inline(sub.protocol.id)}@{sub.protocol.version} has {len(found)} contents "
            f"in these files ({', '.join(h[:12] for h in sorted(found))}); they would share one "
            "table",
            "give a changed protocol a new version (or id) and rerun its runs, or keep the "
            "contents in separate trees",
            file=entry.path,
        )


def check_base_models(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-BASE-3: rankable runs of one protocol version in one tree start from one base model.

    A run whose base checkpoint differs from the one most runs of its protocol version share is
    reported (warning): its table row is not comparable on the same base model (S2).
    """
    by_protocol: dict[tuple[str, int], list[TreeEntry]] = defaultdict(list)
    for entry in entries:
        sub = entry.submission
        if sub is not None and entry.ok and not sub.smoke:
            by_protocol[(sub.protocol.id, sub.protocol.version)].append(entry)
    for (pid, version), members in by_protocol.items():
        shas = [m.submission.base_model.checkpoint_sha256 for m in members]  # type: ignore[union-attr]
        if len(set(shas)) < 2:
            continue
        common = max(sorted(set(shas)), key=shas.count)
        for member, sha in zip(members, shas, strict=True):
            if sha != common:
                yield Finding(
                    "$.base_model.checkpoint_sha256",
                    f"base model {sha[:12]}... differs from {common[:12]}..., the one "
                    f"{shas.count(common)} of {len(shas)} runs under {inline(pid)}@{version} "
                    "start from; runs on different base models are not S2-comparable",
                    "rerun from the shared base model (the suite caches one per protocol)",
                    file=member.path,
                )


def check_base_model_figures(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-BASE-4: runs that start from the same base checkpoint (same sha256) record the same dense
    validation and test top-1 and parameter count: they measured the same model on the same
    splits. A file that differs from what most of them record was edited (its lowered base
    accuracy would otherwise move every row's delta in ``report``)."""
    by_sha: dict[str, list[TreeEntry]] = defaultdict(list)
    for entry in entries:
        sub = entry.submission
        if sub is not None and entry.ok and not sub.smoke:
            by_sha[sub.base_model.checkpoint_sha256].append(entry)
    for sha, members in by_sha.items():
        figures = [_base_figures(m) for m in members]
        if len(set(figures)) < 2:
            continue
        common = max(sorted(set(figures)), key=figures.count)
        for member, found in zip(members, figures, strict=True):
            if found != common:
                yield Finding(
                    "$.base_model",
                    f"base model {sha[:12]}... is recorded with dense val/test top-1 and params "
                    f"{found}, but {figures.count(common)} of {len(figures)} runs from it record "
                    f"{common}",
                    "a submission's numbers are not edited; rerun it (pruning-suite audit FILE)",
                    file=member.path,
                )


def _base_figures(entry: TreeEntry) -> tuple[float, float, int]:
    base = entry.submission.base_model  # type: ignore[union-attr]
    return (base.dense_val_top1, base.dense_test_top1, base.params)


def check_duplicate_run_ids(entries: Sequence[TreeEntry], tree: TreeContext) -> Iterator[Finding]:
    """R-ID-3: no two files of a tree hold the same run id (read from the raw JSON, so a file
    that is otherwise invalid counts too)."""
    by_id: dict[str, list[TreeEntry]] = defaultdict(list)
    for entry in entries:
        if isinstance(entry.data, dict) and isinstance(found := entry.data.get("run_id"), str):
            by_id[found].append(entry)
    for found, same in by_id.items():
        for entry in same if len(same) > 1 else ():
            others = ", ".join(str(o.path) for o in same if o is not entry)
            yield Finding(
                "$.run_id",
                f"run_id {found!r} is also used by {others}",
                "a run id names one run; delete the copy or rerun with another seed",
                file=entry.path,
            )
