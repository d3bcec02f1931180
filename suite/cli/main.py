"""The ``pruning-suite`` command line. torch is imported only by the commands that need it."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import PruningSuiteError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pruning-suite`` console script; returns the exit code."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["pruning-suite", *argv])
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except PruningSuiteError as err:
        if args.debug:
            raise
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # e.g. `pruning-suite validate --json DIR | head`
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing was written for the unfinished run", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pruning-suite",
        description="Fair, reproducible pruning benchmarks (Wang et al., arXiv 2301.05219).",
    )
    parser.add_argument("--version", action="version", version=f"pruning-suite {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="prune, retrain and measure one method; write a submission"
    )
    run.add_argument("--plugin", required=True, help="pruning method (see 'pruning-suite plugins')")
    run.add_argument("--protocol", help="protocol id or .toml file (default: digits-convnet)")
    run.add_argument("--target", help="pruning target id of the protocol (default: the protocol's)")
    run.add_argument(
        "--seed", type=_seed, default=0, help="seed of pruning and retraining (default 0)"
    )
    run.add_argument(
        "--config", default="{}", help="method options as JSON, e.g. '{\"batches\": 4}'"
    )
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
        "--jsv",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the mean JSV after pruning and every retraining epoch "
        "(default: on when the model is small enough)",
    )
    run.add_argument(
        "--save-model",
        action="store_true",
        help="also write the retrained pruned model as <run-id>.pt beside the submission "
        "(weights, per-layer widths and weight masks; read it with pruning_suite.engine.checkpoint.load_pruned)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    run.set_defaults(handler=_cmd_run)

    prune = commands.add_parser(
        "prune",
        help="prune a protocol's model with a method and print what it achieves; no training",
    )
    prune.add_argument(
        "--plugin", required=True, help="pruning method (see 'pruning-suite plugins')"
    )
    prune.add_argument("--protocol", help="protocol id or .toml file (default: digits-convnet)")
    prune.add_argument(
        "--target", help="pruning target id of the protocol (default: the protocol's)"
    )
    prune.add_argument("--seed", type=_seed, default=0, help="seed (default 0)")
    prune.add_argument("--config", default="{}", help="method options as JSON")
    prune.add_argument("--data-dir", type=Path, help="dataset root, for data-driven criteria")
    prune.add_argument("--json", action="store_true", help="machine-readable output")
    prune.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    prune.set_defaults(handler=_cmd_prune)

    protocols = commands.add_parser(
        "protocols", help="list comparison protocols, or show one in full"
    )
    protocols.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    protocols.add_argument("protocol_id", nargs="?", help="protocol id (for 'show')")
    protocols.add_argument("--json", action="store_true", help="machine-readable output")
    protocols.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    protocols.set_defaults(handler=_cmd_protocols)

    plugins = commands.add_parser("plugins", help="list installed pruning methods")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    plugins.set_defaults(handler=_cmd_plugins)

    validate = commands.add_parser("validate", help="check submission files or folders")
    validate.add_argument("paths", nargs="+", type=str, help="submission files or folders")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.add_argument(
        "--strict",
        action="store_true",
        help="treat warnings (e.g. a run certified below the closed division, missing seeds) as errors",
    )
    validate.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FILE.toml",
        help="a protocol of your own to check runs against (repeatable); shipped ones are known",
    )
    validate.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    validate.set_defaults(handler=_cmd_validate)

    report = commands.add_parser("report", help="rank submissions per protocol and target")
    report.add_argument(
        "root",
        nargs="?",
        type=str,
        default="submissions",
        help="results folder (default ./submissions)",
    )
    report.add_argument("--format", choices=["github", "latex", "html", "csv"], default="github")
    report.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write accuracy-vs-sparsity figures (PNG and PDF), one per protocol version and "
        "certification, with sample-std error bars",
    )
    report.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FILE.toml",
        help="a protocol of your own that runs follow (repeatable); shipped ones are known",
    )
    report.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    report.set_defaults(handler=_cmd_report)
    _add_study_commands(commands)
    _add_base_commands(commands)
    return parser


def _add_base_commands(commands: Any) -> None:
    """``pruning-suite base train | import | list``: the base-model zoo (pruning_suite.run.zoo)."""
    base = commands.add_parser(
        "base", help="the base-model zoo: train, import or list the dense base models"
    )
    base.set_defaults(handler=lambda args: base.print_help() or 0)
    actions = base.add_subparsers(title="actions", metavar="ACTION")
    hidden_debug = {"action": "store_true", "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}

    train = actions.add_parser(
        "train", help="train and cache a protocol's base model (as 'run' does implicitly)"
    )
    train.add_argument("--protocol", required=True, help="protocol id or .toml file")
    train.add_argument("--data-dir", type=Path, help="dataset root in torchvision layout")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    train.add_argument("--smoke", action="store_true", help="the smoke budget, as 'run --smoke'")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    train.add_argument("--debug", **hidden_debug)
    train.set_defaults(handler=_cmd_base_train)

    imp = actions.add_parser(
        "import", help="register an existing state_dict checkpoint as a protocol's base model"
    )
    imp.add_argument("file", type=Path, help="checkpoint: torch.save(model.state_dict(), FILE)")
    imp.add_argument("--protocol", required=True, help="protocol id or .toml file")
    imp.add_argument("--data-dir", type=Path, help="dataset root (to measure dense accuracy)")
    imp.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    imp.add_argument("--replace", action="store_true", help="overwrite a cached base model")
    imp.add_argument("--debug", **hidden_debug)
    imp.set_defaults(handler=_cmd_base_import)

    listing = actions.add_parser("list", help="cached base models and pretrained weights")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--debug", **hidden_debug)
    listing.set_defaults(handler=_cmd_base_list)


def _cmd_base_train(args: argparse.Namespace) -> int:
    from ..run.zoo import train_base

    def show(row: Any) -> None:
        print(
            f"base epoch {row.epoch + 1}: lr {row.lr:g}, loss {row.train_loss:.4f}, "
            f"val {row.val_top1:.2f}%, test {row.test_top1:.2f}%"
        )

    result = train_base(
        args.protocol, args.data_dir, args.device, args.smoke, None if args.quiet else show
    )
    _print_base_rows([result])
    return 0


def _cmd_base_import(args: argparse.Namespace) -> int:
    from ..run.zoo import import_base

    _print_base_rows(
        [import_base(args.file, args.protocol, args.data_dir, args.device, args.replace)]
    )
    return 0


def _cmd_base_list(args: argparse.Namespace) -> int:
    from ..run.zoo import list_bases

    rows = list_bases()
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    _print_base_rows(rows)
    return 0


def _print_base_rows(rows: Sequence[Any]) -> None:
    from tabulate import tabulate

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    table = [
        [
            r.protocol,
            r.key,
            r.source,
            (r.sha256 or "-")[:16],
            pct(r.dense_val_top1),
            pct(r.dense_test_top1),
            r.note,
        ]
        for r in rows
    ]
    headers = ["protocol", "key", "source", "sha256", "dense val top-1", "dense test top-1", "note"]
    print(tabulate(table, headers=headers))


def _add_study_commands(commands: Any) -> None:
    """``pruning-suite study lr-sweep | scratch | cross-recipe`` (pruning_suite.studies.study)."""
    study = commands.add_parser(
        "study", help="rerun one of the paper's findings as a set of runs, with tables and figures"
    )
    kinds = study.add_subparsers(title="studies", metavar="STUDY")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--protocol", help="protocol id or .toml file (default: digits-convnet)")
    common.add_argument("--target", help="pruning target id (default: the protocol's)")
    common.add_argument(
        "--seeds", type=int, default=None, help="seeds 0..N-1 (default: the protocol's)"
    )
    common.add_argument(
        "--out",
        type=Path,
        default=Path("submissions"),
        help="results folder, searched and written (default: ./submissions)",
    )
    common.add_argument(
        "--report", type=Path, required=True, help="folder for the page and figures"
    )
    common.add_argument("--device", help="cpu, cuda or cuda:N")
    common.add_argument("--data-dir", type=Path, help="dataset root")
    common.add_argument("--smoke", action="store_true", help="tiny budget; never rankable")
    common.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="runs at a time, each in its own process (default 1: two trainings on one small "
        "CPU slow each other down)",
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sweep = kinds.add_parser(
        "lr-sweep", parents=[common], help="M1: one method, several retraining LR schedules"
    )
    sweep.add_argument("--plugin", required=True)
    sweep.add_argument(
        "--schedule",
        action="append",
        default=[],
        help="retraining LR schedule 'epoch:lr,...' (repeatable; default: the protocol's and "
        "the same at a 10x smaller LR)",
    )
    sweep.add_argument(
        "--extend", type=int, default=0, help="also extend the first LR stage by N epochs"
    )
    sweep.add_argument("--orthp", choices=["off", "on", "both"], default="off")
    sweep.set_defaults(handler=_cmd_study, study="lr-sweep")
    scratch = kinds.add_parser(
        "scratch", parents=[common], help="M2: pruning (S4.2) against scratch at SX-A and SX-B"
    )
    scratch.add_argument("--plugin", required=True)
    scratch.set_defaults(handler=_cmd_study, study="scratch")
    cross = kinds.add_parser(
        "cross-recipe", parents=[common], help="A+FT_A, A+FT_B, B+FT_A, B+FT_B with the verdict"
    )
    cross.add_argument("--plugins", required=True, help="two methods, e.g. l1norm,random")
    cross.add_argument("--recipe-a", required=True, help="FT_A's LR schedule")
    cross.add_argument("--recipe-b", required=True, help="FT_B's LR schedule")
    cross.add_argument("--epochs-a", type=int, help="FT_A's epochs (default: the protocol's)")
    cross.add_argument("--epochs-b", type=int, help="FT_B's epochs (default: the protocol's)")
    cross.set_defaults(handler=_cmd_study, study="cross-recipe")


def _cmd_study(args: argparse.Namespace) -> int:
    from ..protocol.spec import load_protocol
    from ..run.runner import RunConfig
    from ..studies.study import (
        LocalExecutor,
        cross_recipe_arms,
        cross_recipe_verdict,
        lr_sweep_arms,
        run_study,
        scratch_arms,
        write_study_report,
    )

    _check_study_args(args)
    protocol = load_protocol(args.protocol)
    seeds = range(args.seeds if args.seeds is not None else protocol.seeds)
    plugin = getattr(args, "plugin", None) or args.plugins.split(",")[0]
    base = RunConfig(
        plugin=plugin,
        protocol=args.protocol,
        target=args.target,
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        smoke=args.smoke,
    )
    if args.study == "lr-sweep":
        schedules = args.schedule or _default_schedules(protocol)
        arms = lr_sweep_arms(base, schedules, seeds, args.extend, args.orthp)
    elif args.study == "scratch":
        arms = scratch_arms(base, seeds)
    else:
        methods = tuple(args.plugins.split(","))
        if len(methods) != 2:
            raise PruningSuiteError(
                f"--plugins {args.plugins!r} names {len(methods)} methods",
                "name two: --plugins A,B",
            )
        recipes = ((args.recipe_a, args.epochs_a), (args.recipe_b, args.epochs_b))
        arms = cross_recipe_arms(base, methods, recipes, seeds)
    result = run_study(arms, LocalExecutor(args.jobs), progress=print)
    if args.study == "cross-recipe" and not args.smoke and min(map(len, result.arms.values())) > 1:
        print(cross_recipe_verdict(result, methods))
    written = write_study_report(
        args.study,
        result,
        protocol,
        args.report,
        methods if args.study == "cross-recipe" else None,
        command=_without_jobs(args.command_line),
    )
    print(f"{result.ran} runs done, {result.skipped} found in {args.out}; wrote {written[0]}")
    return 0


def _toml_path(path: str) -> str:
    """A --protocol FILE argument: must name a .toml file (shipped ids need no flag)."""
    if not path.endswith(".toml"):
        raise PruningSuiteError(
            f"--protocol {path!r} is not a .toml file",
            "shipped protocols are known already; pass your own protocol file (FILE.toml)",
        )
    return path


def _study_of_page(page: Path) -> str | None:
    """The study whose page ``page`` is (from its first line), or None for any other file."""
    try:
        with page.open(encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError):
        return None
    return next(
        (
            kind
            for kind in ("lr-sweep", "scratch", "cross-recipe")
            if first.startswith(f"# {kind} on ")
        ),
        None,
    )


def _without_jobs(command: str) -> str:
    """The command line without ``--jobs N`` (how many runs at a time is not part of a study),
    also when abbreviated (``--jo 2``, ``--job=2``)."""
    words = shlex.split(command)
    kept, skip = [], False
    for word in words:
        name = word.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) >= 4 and "--jobs".startswith(name):
            skip = "=" not in word
        else:
            kept.append(word)
    return shlex.join(kept)


def _check_study_args(args: argparse.Namespace) -> None:
    """Refuse a bad study before any run is spent."""
    from ..protocol.schedule import parse_schedule

    if args.jobs < 1:
        raise PruningSuiteError(f"--jobs {args.jobs}", "run at least one job at a time: --jobs 1")
    if args.seeds is not None and args.seeds < 1:
        raise PruningSuiteError(
            f"--seeds {args.seeds}", "give a positive number of seeds, e.g. --seeds 3"
        )
    if getattr(args, "extend", 0) < 0:
        raise PruningSuiteError(
            f"--extend {args.extend}", "extend the first LR stage by N >= 0 epochs"
        )
    if args.report.exists() and not args.report.is_dir():
        raise PruningSuiteError(
            f"--report {args.report} exists and is not a folder",
            "pass a folder for the page and figures",
        )
    page = args.report / "README.md"
    if page.is_file() and _study_of_page(page) != args.study:
        raise PruningSuiteError(
            f"--report {str(args.report)!r} would overwrite {page}, which no {args.study} study "
            "wrote",
            "give the study its own folder, e.g. --report docs/my-study",
        )
    existing = next(
        p for p in (args.report.absolute(), *args.report.absolute().parents) if p.exists()
    )
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PruningSuiteError(
            f"cannot write --report {args.report}: {existing} is not a writable folder",
            "pass a writable folder for the page and figures",
        )
    for schedule in [
        *getattr(args, "schedule", []),
        getattr(args, "recipe_a", None),
        getattr(args, "recipe_b", None),
    ]:
        if schedule is None:
            continue
        try:
            parse_schedule(schedule)
        except ValueError as err:
            raise PruningSuiteError(
                f"bad LR schedule {schedule!r}: {err}",
                "write it as 'epoch:lr,...' from epoch 0, e.g. '0:0.01,30:0.001'",
            ) from err


def _default_schedules(protocol: Any) -> list[str]:
    """The protocol's retraining schedule and the same schedule at a 10x smaller LR."""
    own = protocol.retraining.lr_schedule
    smaller = ",".join(f"{start}:{lr / 10:g}" for start, lr in protocol.retraining.stages)
    return [own, smaller]


def _cmd_run(args: argparse.Namespace) -> int:
    from ..run.runner import RunConfig, run
    from .progress import ConsoleObserver, print_summary

    config = RunConfig(
        plugin=args.plugin,
        protocol=args.protocol,
        target=args.target,
        seed=args.seed,
        method_config=_json_option(args.config, "--config"),
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        smoke=args.smoke,
        save_model=args.save_model,
        retraining_epochs=args.retrain_epochs,
        retraining_lr_schedule=args.retrain_lr_schedule,
        jsv=args.jsv,
        orthp=args.orthp,
    )
    with ConsoleObserver(enabled=not args.quiet) as observer:
        result = run(config, observer=observer)
    print_summary(result.submission, result.path)
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..run.preview import preview_pruning

    result = preview_pruning(
        args.protocol,
        args.plugin,
        args.target,
        args.seed,
        _json_option(args.config, "--config"),
        args.data_dir,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
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
    return 0


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"seed must be in [0, 2**63), got {text}")
    return value


def _json_option(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise PruningSuiteError(
            f"{flag} is nested too deeply", f"write e.g. {flag} '{{\"key\": 1}}'"
        ) from None
    except json.JSONDecodeError as err:
        raise PruningSuiteError(
            f"{flag} is not valid JSON: {err}", f"write e.g. {flag} '{{\"key\": 1}}'"
        ) from err
    if not isinstance(value, dict):
        raise PruningSuiteError(
            f"{flag} must be a JSON object", f"write e.g. {flag} '{{\"key\": 1}}'"
        )
    return value


def _cmd_protocols(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..protocol.spec import DEFAULT_PROTOCOL, list_protocols, load_protocol

    if args.action == "show" or args.protocol_id:
        if not args.protocol_id:
            raise PruningSuiteError(
                "'protocols show' needs a protocol id", "see 'pruning-suite protocols'"
            )
        protocol = load_protocol(args.protocol_id)
        data = protocol.model_dump(mode="json")
        data["content_hash"] = protocol.content_hash
        print(json.dumps(data, indent=2))
        return 0
    protocols = list_protocols()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "version": p.version,
                        "title": p.title,
                        "granularity": p.granularity,
                        "references": [r.model_dump(mode="json") for r in p.references],
                    }
                    for p in protocols
                ],
                indent=2,
            )
        )
        return 0
    rows = [
        [
            p.id + (" (default)" if p.id == DEFAULT_PROTOCOL else ""),
            p.version,
            p.dataset.name,
            p.architecture.name,
            ", ".join(t.id for t in p.targets),
            p.retraining.epochs,
            p.seeds,
            len(p.references) or "",
        ]
        for p in protocols
    ]
    print(
        tabulate(
            rows,
            headers=[
                "protocol",
                "version",
                "dataset",
                "architecture",
                "targets",
                "retrain epochs",
                "seeds",
                "published refs",
            ],
        )
    )
    print(
        "\n'pruning-suite protocols show ID' gives a protocol in full, its published references included"
    )
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..contract.plugins import load_registry

    registry = load_registry()
    if args.json:
        print(
            json.dumps(
                {
                    "methods": [
                        {
                            "name": m.name,
                            "version": m.version,
                            "distribution": m.distribution,
                            "granularity": m.granularity,
                            "description": m.description,
                        }
                        for m in registry.methods.values()
                    ],
                    "broken": registry.broken,
                },
                indent=2,
            )
        )
        return 0
    rows = [
        [m.name, m.version, m.granularity, m.distribution, m.description]
        for m in sorted(registry.methods.values(), key=lambda m: m.name)
    ]
    print(
        tabulate(rows, headers=["method", "version", "granularity", "distribution", "description"])
    )
    for name, why in sorted(registry.broken.items()):
        print(f"broken plugin {name!r}: {why}", file=sys.stderr)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..protocol.spec import load_protocol
    from ..validate.core import (
        format_problems,
        has_errors,
        results_to_json,
        strict_results,
        validate_paths,
    )

    protocols = [load_protocol(_toml_path(path)) for path in args.protocol]
    results = validate_paths(args.paths, protocols)
    if args.strict:
        results = strict_results(results)
    if args.json:
        print(json.dumps(results_to_json(results), indent=2))
    else:
        print(format_problems(results))
    return 1 if has_errors(results) else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..report.tables import build_tables, load_submissions, render

    if not args.root.strip() or not Path(args.root).is_dir():
        raise PruningSuiteError(
            f"no results folder {args.root!r}",
            "run 'pruning-suite run --plugin l1norm' first, or name the folder",
        )
    from ..protocol.spec import load_protocol

    protocols = [load_protocol(_toml_path(path)) for path in args.protocol]
    submissions, problems = load_submissions(Path(args.root), protocols)
    tables = build_tables(submissions, protocols)
    print(render(tables, args.format), end="")
    if args.plots is not None:
        from ..report.tables import plot_tables

        for path in plot_tables(tables, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    for problem in problems:
        print(problem.report_line(), file=sys.stderr)
    # An empty ranking is a failure a script must see: nothing found, every file refused, or
    # nothing rankable (smoke runs only).
    if any(table.rows for table in tables):
        return 0
    what = (
        f"{len(submissions)} valid submissions, none rankable (smoke runs are never ranked)"
        if submissions
        else f"no valid submission under {args.root}"
    )
    print(f"error: nothing to rank: {what}", file=sys.stderr)
    print(
        "hint: run without --smoke, or fix the files listed above "
        "('pruning-suite validate FOLDER' says how)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
