"""Judging a study's runs: claims with a verdict, seed noise, and the verdict paragraph.

A difference between two arms counts only when it exceeds the larger sample standard deviation
over seeds of the two (so a tie within seed noise is reported as one); smoke runs and arms with
one seed are not judged at all.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..record.submission import Submission
from .base import StudyResult

__all__ = [
    "Claim",
    "claims_paragraph",
    "mean_top1",
    "seed_noise",
    "short_number",
    "unjudgeable",
]


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, judged on a study's runs.

    Attributes:
        claim: The claim, e.g. ``"a larger retraining LR wins within the same epochs (M1)"``.
        verdict: ``"holds"``, ``"does not hold"`` or ``"cannot be judged"``.
        evidence: The measured numbers behind the verdict, one sentence.
    """

    claim: str
    verdict: str
    evidence: str


def unjudgeable(result: StudyResult) -> str:
    """Why no claim can be judged on ``result`` (smoke runs, one seed), or ``""``."""
    if any(s.smoke for subs in result.arms.values() for s in subs):
        return (
            "Smoke runs (reduced budget): not a result; rerun without --smoke to test the claims."
        )
    seeds = min(len(subs) for subs in result.arms.values())
    if seeds < 2:
        return f"{seeds} seed per arm: too few to judge a difference; run with --seeds 3."
    return ""


def claims_paragraph(result: StudyResult, judged: Sequence[Claim]) -> list[str]:
    """One paragraph of verdicts (a sentence per verdict), then the evidence as a list (markdown)."""
    sentences = [f"Measured on {_runs_phrase(result)}."]
    for verdict in ("holds", "does not hold", "cannot be judged"):
        names = [c.claim for c in judged if c.verdict == verdict]
        if names:
            sentences.append(f"{verdict[0].upper()}{verdict[1:]} here: " + "; ".join(names) + ".")
    sentences.append(
        "A difference counts only when it exceeds the seeds' sample standard deviation; the "
        "evidence follows."
    )
    return [
        " ".join(sentences),
        "",
        *(f"- {c.claim[0].upper()}{c.claim[1:]}: {c.verdict}. {c.evidence}" for c in judged),
    ]


def _runs_phrase(result: StudyResult) -> str:
    seeds = sorted({len(subs) for subs in result.arms.values()})
    count = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    return f"{len(result.arms)} arms, {count} seeds each"


def short_number(value: float) -> str:
    """Two decimals, or three significant digits below 0.1 (a collapsed JSV of 0.00741)."""
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def seed_noise(*groups: Sequence[float]) -> float:
    """The larger sample standard deviation of the groups with two or more values (else 0)."""
    stds = [statistics.stdev(g) for g in groups if len(g) > 1]
    return max(stds) if stds else 0.0


def mean_top1(subs: Sequence[Submission]) -> float:
    """Mean final-epoch test top-1 of the runs, percent."""
    return statistics.fmean(s.final.test_top1 for s in subs)
