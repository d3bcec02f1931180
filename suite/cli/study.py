"""``pruning-suite study NAME``: one subcommand per registered :class:`~pruning_suite.studies.Study`.

The subcommands are built from the study registry (hook ``register_studies``): each gets the
options every study has, then the study's own (:meth:`Study.add_arguments`). A study is refused
before any run when an option is wrong or ``--report`` cannot hold its page.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PluginError, PruningSuiteError
from ..studies.engines import ENGINES
from .options import add_hidden_debug

if TYPE_CHECKING:
    from ..contract.registry import Registry
    from ..studies.base import Study
    from ..studies.executor import Executor

__all__ = ["add_study_command", "without_jobs"]


def add_study_command(commands: Any, studies: Registry[Study] | None) -> None:
    """``pruning-suite study``, with one subcommand per registered study.

    Args:
        commands: The top-level subparsers.
        studies: The registered studies; None adds the command without its subcommands (loading
            the registry imports every plugin, so it is done only when ``study`` is run).
    """
    study = commands.add_parser(
        "study", help="rerun one of the paper's findings as a set of runs, with tables and figures"
    )
    study.set_defaults(handler=lambda args: study.print_help() or 0)
    kinds = study.add_subparsers(title="studies", metavar="STUDY")
    common = _common_options()
    for name, registered in studies.items() if studies is not None else ():
        try:
            parser = kinds.add_parser(name, parents=[common], help=registered.help)
            registered.add_arguments(parser)
            _add_plugin_option(parser, registered)
        except Exception as err:  # the study's own code: name the study and its plugin
            raise _broken_study(name, studies.origin(name), err) from err
        parser.set_defaults(handler=_cmd_study, study=registered)


def _add_plugin_option(parser: argparse.ArgumentParser, study: Study) -> None:
    """``--plugin METHOD`` for a study that reads it (:meth:`Study.base_plugin` not overridden)
    and did not add it itself."""
    from ..studies.base import Study

    if type(study).base_plugin is not Study.base_plugin:
        return
    try:
        parser.add_argument(
            "--plugin", required=True, help="the pruning method ('pruning-suite plugins')"
        )
    except argparse.ArgumentError:  # the study declares its own --plugin
        pass


def _broken_study(name: str, plugin: str | None, err: Exception) -> PluginError:
    from ..contract.kinds import one_line

    return PluginError(
        f"study {name!r} (plugin {plugin or '?'}) failed while its options were added: "
        f"{type(err).__name__}: {one_line(err)}",
        f"fix or uninstall the plugin {plugin or 'that registers it'}; 'pruning-suite plugins' "
        "lists every study and its plugin",
    )


def _arms(study: Study, args: argparse.Namespace, *given: Any) -> list[Any]:
    """``study.arms(...)``, checked: a raising or malformed result is a one-line error naming
    the study (a plugin's code), never a traceback."""
    from ..contract.kinds import one_line
    from ..studies.base import Arm

    try:
        arms = list(study.arms(args, *given))
    except PruningSuiteError:
        raise
    except Exception as err:  # someone's study code
        raise PluginError(
            f"study {study.name!r} raised {type(err).__name__} in arms(): {one_line(err)}",
            "fix or uninstall the plugin that registers it ('pruning-suite plugins' lists it)",
        ) from err
    if not arms or not all(isinstance(arm, Arm) for arm in arms):
        raise PluginError(
            f"study {study.name!r}: arms() returned {arms!r:.80}, not a non-empty list of Arm",
            "a study's arms() returns its arms (pruning_suite.studies.base.Arm)",
        )
    return arms


def _common_options() -> argparse.ArgumentParser:
    """The options of every study: protocol, seeds, folders, device, smoke, jobs."""
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
        "--executor",
        choices=ENGINES,
        default="local",
        help="who runs the runs: local (this machine, --jobs at a time), submitit (one job "
        "per run: SLURM where sbatch exists, else local processes) or ray (one task per run, "
        "on a Ray cluster or a local one); results are the same files",
    )
    common.add_argument(
        "--executor-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an engine parameter, repeatable: submitit's (timeout_min=60, slurm_partition=gpu, "
        "gpus_per_node=1, cluster=debug) or ray's (address=auto, num_cpus=2, num_gpus=0.25)",
    )
    add_hidden_debug(common)
    return common


def _cmd_study(args: argparse.Namespace) -> int:
    from ..protocol.catalogue import load_protocol
    from ..run.config import RunConfig
    from ..studies.executor import run_study
    from ..studies.page import write_study_report

    study: Study = args.study
    _check_common(args)
    study.check(args)
    _check_report_folder(args.report, study.name)
    protocol = load_protocol(args.protocol)
    seeds = range(args.seeds if args.seeds is not None else protocol.seeds)
    base = RunConfig(
        plugin=study.base_plugin(args),
        protocol=args.protocol,
        target=args.target,
        device=args.device,
        data_dir=args.data_dir,
        out=args.out,
        smoke=args.smoke,
    )
    arms = _arms(study, args, base, protocol, seeds)
    result = run_study(arms, _executor(args), progress=print)
    summary = study.summary(result, args)
    if summary:
        print(summary)
    command = without_jobs(args.command_line)
    written = write_study_report(study, result, protocol, args.report, args, command)
    print(f"{result.ran} runs done, {result.skipped} found in {args.out}; wrote {written[0]}")
    return 0


def _executor(args: argparse.Namespace) -> Executor:
    """The study's executor: local (``--jobs`` at a time) or submitit (``--executor-param``)."""
    from ..run.basecache import cache_dir
    from ..studies.engines import RayExecutor, SubmititExecutor, engine_parameters
    from ..studies.executor import LocalExecutor

    parameters = engine_parameters(args.executor_param)
    if args.executor == "local":
        if parameters:
            raise PruningSuiteError(
                "--executor-param is for --executor submitit or ray",
                "drop it, or add --executor submitit or --executor ray",
            )
        return LocalExecutor(args.jobs)
    if args.executor == "ray":
        try:
            return RayExecutor(**parameters)
        except TypeError as err:
            raise PruningSuiteError(
                f"--executor ray takes address, num_cpus and num_gpus: {err}",
                "e.g. --executor-param address=auto --executor-param num_gpus=0.25",
            ) from err
    cluster = parameters.pop("cluster", None)
    return SubmititExecutor(cache_dir() / "submitit", cluster, parameters)


def _check_common(args: argparse.Namespace) -> None:
    """Refuse ``--jobs`` outside [1, 256] or ``--seeds`` outside [1, 1000] (the protocol's bound)."""
    if not 1 <= args.jobs <= 256:
        raise PruningSuiteError(
            f"--jobs {args.jobs}", "run between 1 and 256 jobs at a time, e.g. --jobs 2"
        )
    if args.seeds is not None and not 1 <= args.seeds <= 1000:
        raise PruningSuiteError(
            f"--seeds {args.seeds}", "give between 1 and 1000 seeds, e.g. --seeds 3"
        )


def _check_report_folder(report: Path, study_name: str) -> None:
    """Refuse a ``--report`` that is a file, holds a page no such study wrote, or cannot be
    written; the folder is not created here (a refused study leaves none)."""
    from ..studies.page import page_written_by

    if report.exists() and not report.is_dir():
        raise PruningSuiteError(
            f"--report {report} exists and is not a folder",
            "pass a folder for the page and figures",
        )
    page = report / "README.md"
    if page.is_file() and not page_written_by(page, study_name):
        raise PruningSuiteError(
            f"--report {str(report)!r} would overwrite {page}, which no {study_name} study wrote",
            "give the study its own folder, e.g. --report docs/my-study",
        )
    existing = next(p for p in (report.absolute(), *report.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PruningSuiteError(
            f"cannot write --report {report}: {existing} is not a writable folder",
            "pass a writable folder for the page and figures",
        )


def without_jobs(command: str) -> str:
    """The command line without ``--jobs N``, ``--executor E`` and ``--executor-param P`` (where
    and how many runs at a time is not part of a study), also when abbreviated (``--jo 2``,
    ``--job=2``)."""
    words = shlex.split(command)
    kept, skip = [], False
    for word in words:
        name = word.split("=", 1)[0]
        if skip:
            skip = False
        elif any(
            len(name) >= length and option.startswith(name)
            for option, length in _NOT_PART_OF_A_STUDY
        ):
            skip = "=" not in word
        else:
            kept.append(word)
    return shlex.join(kept)


_NOT_PART_OF_A_STUDY = (("--jobs", 4), ("--executor", 4), ("--executor-param", 11))
"""Options that say where runs run, each with the length of its shortest prefix argparse may
accept."""
