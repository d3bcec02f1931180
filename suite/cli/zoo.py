"""``pruning-suite base train | import | list``: the base-model zoo (:mod:`pruning_suite.run.zoo`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..text import one_line
from .options import add_hidden_debug

__all__ = ["add_base_command"]


def add_base_command(commands: Any) -> None:
    """``pruning-suite base train | import | list``: the base-model zoo (pruning_suite.run.zoo)."""
    base = commands.add_parser(
        "base", help="the base-model zoo: train, import or list the dense base models"
    )
    base.set_defaults(handler=lambda args: base.print_help() or 0)
    actions = base.add_subparsers(title="actions", metavar="ACTION")

    train = actions.add_parser(
        "train", help="train and cache a protocol's base model (as 'run' does implicitly)"
    )
    train.add_argument("--protocol", required=True, help="protocol id or .toml file")
    train.add_argument("--data-dir", type=Path, help="dataset root in torchvision layout")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    train.add_argument("--smoke", action="store_true", help="the smoke budget, as 'run --smoke'")
    train.add_argument(
        "--force",
        action="store_true",
        help="train again even if cached; the old entry is replaced",
    )
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_hidden_debug(train)
    train.set_defaults(handler=_cmd_base_train)

    imp = actions.add_parser(
        "import", help="register an existing state_dict checkpoint as a protocol's base model"
    )
    imp.add_argument("file", type=Path, help="checkpoint: torch.save(model.state_dict(), FILE)")
    imp.add_argument("--protocol", required=True, help="protocol id or .toml file")
    imp.add_argument("--data-dir", type=Path, help="dataset root (to measure dense accuracy)")
    imp.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    imp.add_argument("--replace", action="store_true", help="overwrite a cached base model")
    add_hidden_debug(imp)
    imp.set_defaults(handler=_cmd_base_import)

    listing = actions.add_parser("list", help="cached base models and pretrained weights")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_hidden_debug(listing)
    listing.set_defaults(handler=_cmd_base_list)


def _cmd_base_train(args: argparse.Namespace) -> int:
    from ..run.zoo import train_base

    def show(row: Any) -> None:
        print(
            f"base epoch {row.epoch + 1}: lr {row.lr:g}, loss {row.train_loss:.4f}, "
            f"val {row.val_top1:.2f}%, test {row.test_top1:.2f}%"
        )

    on_epoch = None if args.quiet else show
    result = train_base(
        args.protocol, args.data_dir, args.device, args.smoke, on_epoch, force=args.force
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
    """The rows as a table; control characters of metadata strings (a hand-edited cache entry)
    are escaped, so none reaches the terminal."""
    from tabulate import tabulate

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    table = [
        [
            one_line(cell)
            for cell in (
                r.protocol,
                r.key,
                r.source,
                (r.sha256 or "-")[:16],
                pct(r.dense_val_top1),
                pct(r.dense_test_top1),
                r.note,
            )
        ]
        for r in rows
    ]
    headers = ["protocol", "key", "source", "sha256", "dense val top-1", "dense test top-1", "note"]
    print(tabulate(table, headers=headers))
