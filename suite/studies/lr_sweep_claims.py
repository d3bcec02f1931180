"""The claims an LR sweep tests (M1, Wang et al., arXiv 2301.05219, Sec. 4-5), judged from its runs.

M1: a larger retraining LR gives the higher final accuracy in the same epochs; its explanation
(the larger LR converges faster over the first LR stage); OrthP restores trainability and narrows
the gap between the LRs; the mean JSV collapses after pruning and recovers in retraining.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from ..record.submission import Submission
from .base import StudyResult
from .verdicts import Claim, claims_paragraph, mean_top1, seed_noise, short_number, unjudgeable

__all__ = ["claims", "claims_text"]

Arms = dict[str, list[Submission]]


def claims(result: StudyResult) -> list[Claim]:
    """The paper's claims an LR sweep can test, each judged from the runs' own numbers.

    A difference counts only when it exceeds the larger sample standard deviation over seeds of
    the two arms compared (so a tie within seed noise is reported as one). Judged here, from
    Wang et al. (arXiv 2301.05219, Sec. 4-5): M1 (the larger retraining LR gives the higher final
    accuracy in the same epochs); its explanation (the larger LR converges faster: mean test
    top-1 over the epochs both arms spend in their first LR stage); OrthP restores trainability
    (higher TA than the same schedule without it; TA compares only under one schedule); OrthP
    narrows the gap between the LRs; the mean JSV collapses after pruning and recovers.

    Returns:
        The claims, or none when the sweep has smoke runs, one seed per arm or a single LR.
    """
    plain = {
        label: subs
        for label, subs in result.arms.items()
        if "+OrthP" not in label and "epochs" not in label
    }
    if not plain:  # --orthp on: every arm has OrthP; compare the LRs among those
        plain = {label: subs for label, subs in result.arms.items() if "epochs" not in label}
    lrs = {label: subs[0].retraining[0].lr for label, subs in plain.items()}
    if unjudgeable(result) or len(lrs) < 2:
        return []
    high, low = max(lrs, key=lrs.get), min(lrs, key=lrs.get)
    out = [_m1(plain[high], plain[low], high, low), _converges_faster(plain, high, low)]
    with_orthp = {
        label.removesuffix(" +OrthP"): subs
        for label, subs in result.arms.items()
        if label.endswith("+OrthP") and label not in plain
    }
    if with_orthp:
        out.append(_orthp_trainability(plain, with_orthp))
    if high in with_orthp and low in with_orthp:
        out.append(_orthp_narrows(plain, with_orthp, high, low))
    jsv = _jsv_collapse(plain, with_orthp)
    return out + ([jsv] if jsv else [])


def claims_text(result: StudyResult) -> list[str]:
    """The claims section: one paragraph of verdicts, then the evidence as a list (markdown)."""
    why_not = unjudgeable(result)
    if why_not:
        return [why_not]
    judged = claims(result)
    if not judged:
        return [
            "This sweep has a single retraining LR (or its arms differ only in length): none of "
            "the paper's claims can be tested."
        ]
    return claims_paragraph(result, judged)


def _m1(high_subs: list[Submission], low_subs: list[Submission], high: str, low: str) -> Claim:
    gap = mean_top1(high_subs) - mean_top1(low_subs)
    noise = seed_noise(*([s.final.test_top1 for s in subs] for subs in (high_subs, low_subs)))
    if gap > noise:
        verdict, why = "holds", "beyond"
    else:
        verdict = "does not hold"
        why = "reversed beyond" if -gap > noise else "within"
    return Claim(
        "a larger retraining LR wins within the same epochs (M1)",
        verdict,
        f"Final test top-1 {high} {mean_top1(high_subs):.2f} vs {low} {mean_top1(low_subs):.2f} "
        f"({gap:+.2f} pp, {why} the seed std {noise:.2f}).",
    )


def _first_stage_length(sub: Submission) -> int:
    rows = sub.retraining
    return next((i for i, row in enumerate(rows) if row.lr != rows[0].lr), len(rows))


def _early_top1(sub: Submission, epochs: int) -> float:
    return statistics.fmean(row.test_top1 for row in sub.retraining[:epochs])


def _converges_faster(plain: Arms, high: str, low: str) -> Claim:
    window = min(_first_stage_length(s) for s in (*plain[high], *plain[low]))
    early = {label: [_early_top1(s, window) for s in plain[label]] for label in (high, low)}
    gap = statistics.fmean(early[high]) - statistics.fmean(early[low])
    noise = seed_noise(early[high], early[low])
    return Claim(
        "the larger LR converges faster (M1's explanation)",
        "holds" if gap > noise else "does not hold",
        f"Mean test top-1 over retraining epochs 0-{window - 1}: {high} "
        f"{statistics.fmean(early[high]):.2f} vs {low} {statistics.fmean(early[low]):.2f} "
        f"({gap:+.2f} pp, seed std {noise:.2f}).",
    )


def _ta(subs: Sequence[Submission]) -> list[float]:
    return [s.trainability.ta_test for s in subs if s.trainability is not None]


def _orthp_trainability(plain: Arms, with_orthp: Arms) -> Claim:
    parts, ups, judged = [], [], 0
    for label in plain:
        without, with_ = _ta(plain[label]), _ta(with_orthp.get(label, []))
        if not without or not with_:
            continue
        judged += 1
        gap = statistics.fmean(with_) - statistics.fmean(without)
        ups.append(gap > seed_noise(without, with_))
        parts.append(
            f"{label}: {statistics.fmean(with_):.2f} with OrthP vs "
            f"{statistics.fmean(without):.2f} without ({gap:+.2f} pp)"
        )
    name = "OrthP restores trainability (higher TA under the same LR schedule)"
    if not judged:
        return Claim(name, "cannot be judged", "No arm recorded TA both with and without OrthP.")
    return Claim(
        name, "holds" if all(ups) else "does not hold", "TA test " + "; ".join(parts) + "."
    )


def _orthp_narrows(plain: Arms, with_orthp: Arms, high: str, low: str) -> Claim:
    gap = mean_top1(plain[high]) - mean_top1(plain[low])
    gap_orthp = mean_top1(with_orthp[high]) - mean_top1(with_orthp[low])
    noise = seed_noise(*([s.final.test_top1 for s in plain[label]] for label in (high, low)))
    evidence = (
        f"Final top-1 gap {high} - {low}: {gap_orthp:+.2f} pp with OrthP, {gap:+.2f} pp without."
    )
    name = "OrthP narrows the gap between the LRs"
    if abs(gap) <= noise:
        return Claim(
            name,
            "cannot be judged",
            evidence + f" Without OrthP the LRs already tie within the seed std {noise:.2f}.",
        )
    return Claim(name, "holds" if abs(gap_orthp) < abs(gap) else "does not hold", evidence)


def _jsv_collapse(plain: Arms, with_orthp: Arms) -> Claim | None:
    parts, verdicts = [], []
    for label, subs in plain.items():
        rows = [s.trainability for s in subs if s.trainability and s.trainability.jsv]
        rows = [t for t in rows if t.jsv_dense and t.jsv[0].epoch == -1]
        if not rows:
            continue
        dense = statistics.fmean(t.jsv_dense.mean for t in rows)
        after = statistics.fmean(t.jsv[0].mean for t in rows)
        final = statistics.fmean(t.jsv[-1].mean for t in rows)
        verdicts.append(after < dense and final > after)
        parts.append(
            f"{label}: dense {short_number(dense)}, right after pruning {short_number(after)}, "
            f"after retraining {short_number(final)}"
        )
    if not parts:
        return None
    orthp = [
        t.jsv[0].mean
        for subs in with_orthp.values()
        for s in subs
        if (t := s.trainability) and t.jsv and t.jsv[0].epoch == -1
    ]
    tail = (
        f"; with OrthP right after pruning {short_number(statistics.fmean(orthp))}" if orthp else ""
    )
    return Claim(
        "the mean JSV collapses after pruning and recovers in retraining",
        "holds" if all(verdicts) else "does not hold",
        "Mean JSV " + "; ".join(parts) + tail + ".",
    )
