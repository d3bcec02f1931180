"""``pruning-suite run`` (one method, a submission) and ``prune`` (what a method removes, no training)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .options import add_hidden_debug, json_option, seed

__all__ = ["add_prune_command", "add_run_command"]

PLUGIN_HELP = "pruning method (see 'pruning-suite plugins')"


def add_run_command(commands: Any) -> None:
    """``pruning-suite run``: prune, retrain and measure one method; write a submission."""
    run = commands.add_parser(
        "run", help="prune, retrain and measure one method; write a submission"
    )
    run.add_argument("--plugin", required=True, help=PLUGIN_HELP)
    _add_run_selection(run)
    _add_run_environment(run)
    _add_run_variants(run)
    run.add_argument("--quiet", action="store_true", help="no progress display")
    add_hidden_debug(run)
    run.set_defaults(handler=_cmd_run)


def _add_run_selection(run: argparse.ArgumentParser) -> None:
    run.add_argument("--protocol", help="protocol id or .toml file (default: digits-convnet)")
    run.add_argument("--target", help="pruning target id of the protocol (default: the protocol's)")
    run.add_argument(
        "--seed", type=seed, default=0, help="seed of pruning and retraining (default 0)"
    )
    run.add_argument(
        "--config", default="{}", help="method options as JSON, e.g. '{\"batches\": 4}'"
    )


def _add_run_environment(run: argparse.ArgumentParser) -> None:
    run.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present, else CPU)")
    run.add_argument(
        "--data-dir",
        type=Path,
        help="dataset root in torchvision layout; when given, the only place searched (default: $PRUNING_SUITE_DATA, then system folders)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("submissions"),
        help="results database root (default ./submissions)",
    )
    run.add_argument(
        "--save-model",
        action="store_true",
        help="also write the retrained pruned model as <run-id>.pt beside the submission "
        "(weights, per-layer widths and weight masks; read it with pruning_suite.engine.checkpoint.load_pruned)",
    )


def _add_run_variants(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--smoke", action="store_true", help="tiny budget to check a setup end to end; never ranked"
    )
    run.add_argument(
        "--retrain-epochs",
        type=int,
        metavar="N",
        help="retrain N epochs instead of the protocol's (open division, disclosed)",
    )
    run.add_argument(
        "--retrain-lr-schedule",
        metavar="SCHEDULE",
        help="retraining LR schedule 'epoch:lr,...' instead of the protocol's (open division)",
    )
    run.add_argument(
        "--orthp",
        action="store_true",
        help="re-initialize the pruned model with OrthP before retraining (arXiv 2301.05219, trainability)",
    )
    run.add_argument(
        "--in-process",
        action="store_true",
        help="run the method's code in this process instead of its own (to debug a method with "
        "breakpoints or prints; same results, without the isolation)",
    )
    run.add_argument(
        "--jsv",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the mean JSV after pruning and every retraining epoch "
        "(default: on when the model is small enough)",
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from ..engine.distributed import World
    from ..run.runner import RunConfig, run
    from .progress import ConsoleObserver, print_summary

    config = RunConfig(
        plugin=args.plugin,
        protocol=args.protocol,
        target=args.target,
        seed=args.seed,
        method_config=json_option(args.config, "--config"),
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        smoke=args.smoke,
        save_model=args.save_model,
        retraining_epochs=args.retrain_epochs,
        retraining_lr_schedule=args.retrain_lr_schedule,
        jsv=args.jsv,
        orthp=args.orthp,
        isolate=not args.in_process,
    )
    world = World.from_environment()  # under torchrun, rank 0 alone shows progress
    leads = world is None or world.is_main
    with ConsoleObserver(enabled=leads and not args.quiet) as observer:
        result = run(config, observer=observer)
    if leads:
        print_summary(result.submission, result.path, result.kept_stored, result.replaced)
    return 0


def add_prune_command(commands: Any) -> None:
    """``pruning-suite prune``: what a method removes from a protocol's model; no training."""
    prune = commands.add_parser(
        "prune",
        help="prune a protocol's model with a method and print what it achieves; no training",
    )
    prune.add_argument("--plugin", required=True, help=PLUGIN_HELP)
    prune.add_argument("--protocol", help="protocol id or .toml file (default: digits-convnet)")
    prune.add_argument(
        "--target", help="pruning target id of the protocol (default: the protocol's)"
    )
    prune.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    prune.add_argument("--config", default="{}", help="method options as JSON")
    prune.add_argument("--data-dir", type=Path, help="dataset root, for data-driven criteria")
    prune.add_argument("--json", action="store_true", help="machine-readable output")
    add_hidden_debug(prune)
    prune.set_defaults(handler=_cmd_prune)


def _cmd_prune(args: argparse.Namespace) -> int:
    from ..run.preview import preview_pruning

    result = preview_pruning(
        args.protocol,
        args.plugin,
        args.target,
        args.seed,
        json_option(args.config, "--config"),
        args.data_dir,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print_preview(result)
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    return 0


def _print_preview(result: Any) -> None:
    """Per-layer widths, then parameters, MACs and FLOPs before and after, and the speedup."""
    from tabulate import tabulate

    p = result.protocol
    print(
        f"{result.method} on {p.id}@{p.version}, target {result.target}: {result.weights}; scored on {result.calibration}"
    )
    rows = [[n, b, a, f"{r:.2f}", f"{(b - a) / b:.4f}"] for n, b, a, r in result.layers]
    print(tabulate(rows, headers=["layer", "before", "after", "target ratio", "achieved ratio"]))
    d, q = result.dense, result.pruned
    if p.granularity == "weight":
        print(
            f"params {d.params:,} (dense shapes kept), non-zero {result.effective.params:,} "
            f"(sparsity {100 * result.sparsity:.2f}%)"
        )
    else:
        print(f"params {d.params:,} -> {q.params:,} (sparsity {100 * result.sparsity:.2f}%)")
    print(
        f"MACs   {d.macs:,} -> {q.macs:,}; FLOPs (= 2 x MACs) {d.flops:,} -> {q.flops:,}; speedup {result.speedup:.2f}x"
    )
    if p.granularity == "weight":
        e = result.effective
        print(
            f"effective (non-zero weights): MACs {e.macs:,}; FLOPs {e.flops:,}; "
            f"effective speedup {result.effective_speedup:.2f}x"
        )
