"""The page of one run: result, provenance, certification, rule findings, latency and curves.

Read from the submission file as ``validate`` accepted it; the certification shown is the one
recomputed from the file's fields (:func:`pruning_suite.rules.setups.certify`), as the tables use
it, and the findings are the warnings ``validate`` gives the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..protocol.spec import ComparisonProtocol
from ..record.submission import Submission
from ..report.cells import format_macs
from ..rules.setups import recheck
from ..validate import Problem
from .charts import Series, line_chart

__all__ = ["run_context"]


def _result(sub: Submission) -> list[tuple[str, str]]:
    final = sub.final
    counted = (
        f" ({final.test_correct} of {final.test_examples} test examples)"
        if final.test_correct is not None
        else ""
    )
    return [
        ("test top-1 (%)", f"{final.test_top1:.2f}{counted}"),
        ("validation top-1 (%)", f"{final.val_top1:.2f}"),
        ("reported epoch", final.selection + (f" ({final.selected_epoch})" if final.selected_epoch is not None else "")),
        ("delta vs its dense model (pp)", f"{final.delta_top1:+.2f}"),
        ("test top-1 right after pruning (%)", f"{final.pruned_test_top1_before_retraining:.2f}"),
        ("dense test top-1 (%)", f"{sub.base_model.dense_test_top1:.2f}"),
    ]  # fmt: skip


def _measurements(sub: Submission) -> list[tuple[str, str]]:
    m = sub.pruning
    rows = [
        ("granularity", m.granularity),
        ("parameters", f"{m.params_dense:,} -> {m.params_pruned:,}"),
        ("sparsity (%)", f"{100 * m.sparsity:.2f}"),
        ("MACs per example", f"{m.macs_dense:,} -> {m.macs_pruned:,}"),
        ("FLOPs per example (2 x MACs)", f"{m.flops_dense:,} -> {m.flops_pruned:,}"),
        ("speedup (MACs)", f"{m.speedup:.2f}x"),
    ]
    if m.macs_effective is not None and m.granularity == "weight":
        rows.append(("effective MACs (non-zero weights)", f"{m.macs_effective:,}"))
        rows.append(("effective speedup (MACs)", f"{m.effective_speedup or 0:.2f}x"))
    return rows


def _provenance(sub: Submission) -> list[tuple[str, str]]:
    env, base = sub.environment, sub.base_model
    rows = [
        ("run id", sub.run_id),
        ("created", sub.created),
        ("seed", str(sub.seed)),
        ("suite", f"{sub.suite.version} (commit {sub.suite.git_commit or 'not recorded'})"),
        ("protocol", f"{sub.protocol.id}@{sub.protocol.version}, content sha256 {sub.protocol.content_hash}"),
        ("dataset sha256", sub.protocol.dataset_sha256),
        ("method", f"{sub.method.name} {sub.method.version} from {sub.method.distribution}"),
        ("method config", _json(sub.method.config)),
        ("base model", f"{base.source}, seed {base.seed}, checkpoint sha256 {base.checkpoint_sha256}"),
        ("environment", f"python {env.python}, torch {env.torch}, torch-pruning {env.torch_pruning}"),
        ("platform", f"{env.platform}; {env.device} ({env.device_name}), {env.num_threads} threads"),
        ("time (s)", f"total {sub.timings.total:.1f}, base {sub.timings.base_model:.1f}, "
                     f"pruning {sub.timings.pruning:.1f}, retraining {sub.timings.retraining:.1f}"),
    ]  # fmt: skip
    if sub.retraining_override:
        rows.append(("retraining override (open division)", _json(sub.retraining_override)))
    if sub.evidence is not None:
        rows.append(("test predictions sha256", sub.evidence.test_predictions_sha256))
        rows.append(("final weights sha256", sub.evidence.weights_sha256))
    return rows


def _version(version: str) -> str:
    """``v1`` for ``1``, as the tables' labels write it."""
    return version if version[:1] in ("v", "V") else f"v{version}"


def _json(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True)


def _latency(sub: Submission) -> list[dict[str, str]]:
    return [
        {
            "device": f"{m.device}: {m.device_name}, {m.num_threads} threads",
            "batch": str(m.batch_size),
            "dense_ms": f"{m.dense_ms:.3g}",
            "pruned_ms": f"{m.pruned_ms:.3g}",
            "speedup": f"{m.speedup:.2f}x",
            "throughput": f"{m.dense_throughput:.4g} -> {m.pruned_throughput:.4g}",
            "timing": f"median of {m.repeats} after {m.warmup} warm-up",
        }
        for m in sub.latency or ()
    ]


def _figures(sub: Submission) -> list[str]:
    """Accuracy, LR and (when logged) mean JSV against the retraining epoch, as SVG."""
    log = sub.retraining
    figures = [
        line_chart(
            [
                Series("test top-1", [(r.epoch, r.test_top1) for r in log]),
                Series("validation top-1", [(r.epoch, r.val_top1) for r in log], dashed=True),
            ],
            "top-1 during retraining",
            "retraining epoch",
            "top-1 (%)",
        ),
        line_chart(
            [Series("learning rate", [(r.epoch, r.lr) for r in log], step=True)],
            "learning rate",
            "retraining epoch",
            "LR (log scale)",
            log_y=True,
        ),
    ]
    jsv = sub.trainability.jsv if sub.trainability is not None else None
    if jsv and all(row.mean > 0 for row in jsv):
        figures.append(
            line_chart(
                [Series("mean JSV", [(row.epoch, row.mean) for row in jsv])],
                "mean Jacobian singular value (epoch -1: right after pruning)",
                "retraining epoch",
                "mean JSV (log scale)",
                log_y=True,
            )
        )
    return figures


def _certification(sub: Submission, protocol: ComparisonProtocol | None) -> dict[str, Any]:
    if protocol is None:
        return {"text": "uncertified: the protocol is not known to this suite", "unmet": []}
    cert = recheck(sub, protocol)
    setup = cert.setup or "no setup (not even S1)"
    return {"text": f"{cert.division} division, certified {setup}", "unmet": list(cert.unmet)}


def run_context(
    sub: Submission,
    protocol: ComparisonProtocol | None,
    findings: Sequence[Problem],
    ranked_in: dict[str, str] | None,
) -> dict[str, Any]:
    """Everything a run page shows.

    Args:
        sub: The submission.
        protocol: The protocol it follows, when the suite knows it (for certification).
        findings: What ``validate`` said about the file (warnings; errors keep it off the site).
        ranked_in: ``{"title", "href", "rank"}`` of the table row the run is part of, or None
            (a smoke run, a duplicate, a row listed apart).
    """
    return {
        "title": f"{sub.method.name} {_version(sub.method.version)} on {sub.protocol.id}@"
        f"{sub.protocol.version}, target {sub.target.id}, seed {sub.seed}",
        "run_id": sub.run_id,
        "smoke": sub.smoke,
        "ranked_in": ranked_in,
        "result": _result(sub),
        "measurements": _measurements(sub),
        "layers": [
            (layer.name, layer.before, layer.after, f"{layer.achieved_ratio:.3f}")
            for layer in sub.pruning.layers
        ],
        "provenance": _provenance(sub),
        "certification": _certification(sub, protocol),
        "findings": [
            {"rule": p.rule, "where": p.where, "message": p.message, "severity": p.severity}
            for p in findings
        ],
        "latency": _latency(sub),
        "figures": _figures(sub),
        "params": format_macs(sub.pruning.params_pruned),
    }
