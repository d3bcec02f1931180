"""``pruning-suite audit FILE...``: re-execute submissions and compare (tamper evidence)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..text import one_line
from .options import add_hidden_debug

__all__ = ["add_audit_command"]


def add_audit_command(commands: Any) -> None:
    """Register ``audit``: rerun each file's exact configuration on the CPU and compare."""
    audit = commands.add_parser(
        "audit",
        help="re-execute submissions from their provenance and compare every field",
        description="Rerun each submission's recorded configuration (protocol, target, method, "
        "config, seed, overrides, thread count) on the CPU and compare every field it determines; "
        "bit-identical on the CPU, or within --atol for files from a GPU. Exit 1 on a mismatch.",
    )
    audit.add_argument("paths", nargs="+", type=Path, help="submission files or folders")
    audit.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="N",
        help="audit N files drawn at random (seeded)",
    )
    audit.add_argument("--sample-seed", type=int, default=0, help="seed of the --sample draw")
    audit.add_argument("--atol", type=float, default=0.0, help="float tolerance (0: bit-identical)")
    audit.add_argument("--data-dir", type=Path, default=None, help="where datasets are looked for")
    audit.add_argument(
        "--protocol",
        default=None,
        metavar="FILE.toml",
        help="protocol file of the runs (unshipped protocols)",
    )
    add_hidden_debug(audit)
    audit.set_defaults(handler=_cmd_audit)


def _cmd_audit(args: argparse.Namespace) -> int:
    from ..errors import PruningSuiteError
    from ..run.audit import audit_file, sample_files

    if args.sample is not None and args.sample < 1:
        raise PruningSuiteError(
            f"--sample {args.sample}", "audit at least one file, e.g. --sample 3"
        )
    files = sample_files(args.paths, args.sample, args.sample_seed)
    if not files:
        raise PruningSuiteError(
            "no submission files to audit", "name .json files or folders holding them"
        )
    failed = 0
    for path in files:
        try:
            result = audit_file(path, args.data_dir, args.protocol, args.atol)
        except PruningSuiteError as err:  # this file only: the others are still audited
            failed += 1
            print(one_line(f"{path}: not audited: {err.message}"), file=sys.stderr)
            if err.hint:
                print(f"  hint: {one_line(err.hint)}", file=sys.stderr)
            continue
        if result.reproduced:
            print(f"{one_line(str(path))}: reproduced")
            continue
        failed += 1
        print(
            one_line(
                f"{path}: NOT reproduced, {len(result.differences)} fields differ (rerun kept "
                f"at {result.rerun}):"
            ),
            file=sys.stderr,
        )
        if result.note:
            print(f"  note: {result.note}", file=sys.stderr)
        for line in result.differences[:20]:
            print(f"  {one_line(line)}", file=sys.stderr)
    print(f"{len(files)} audited: {len(files) - failed} reproduced, {failed} not")
    return 1 if failed else 0
