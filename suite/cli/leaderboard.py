"""``pruning-suite leaderboard DIR... --out SITE``: the static results site. Torch-free."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import PruningSuiteError
from .checks import print_problems
from .options import add_hidden_debug, toml_path

__all__ = ["add_leaderboard_command"]


def add_leaderboard_command(commands: Any) -> None:
    """``pruning-suite leaderboard [ROOT...] --out SITE``."""
    board = commands.add_parser(
        "leaderboard",
        help="write a static results site (tables, Pareto charts, run pages, downloads)",
        description="Validate and rank the submissions under ROOT... and write a static site "
        "to SITE: plain HTML, SVG, CSV and JSON that any web server or GitHub Pages can host.",
    )
    board.add_argument(
        "roots",
        nargs="*",
        default=["submissions"],
        metavar="ROOT",
        help="results folders or files, read together (default ./submissions)",
    )
    board.add_argument(
        "--out", required=True, type=Path, metavar="SITE", help="the site's folder (rewritten)"
    )
    board.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FILE.toml",
        help="a protocol of your own that runs follow (repeatable); shipped ones are known",
    )
    board.add_argument("--warnings", action="store_true", help="list every warning on stderr")
    add_hidden_debug(board)
    board.set_defaults(handler=_cmd_leaderboard)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from ..leaderboard import build_site
    from ..protocol.catalogue import load_protocol

    for root in args.roots:
        if not root.strip() or not Path(root).exists():
            raise PruningSuiteError(
                f"no results folder {root!r}", "name a folder of submissions (e.g. submissions/)"
            )
    protocols = [load_protocol(toml_path(path)) for path in args.protocol]
    roots = [Path(root) for root in args.roots]
    result = build_site(roots, args.out, protocols)
    print_problems(result.problems, args.warnings)
    ranked = sum(len(t.rows) for t in result.tables)
    print(
        f"wrote {result.pages} pages to {result.out}: {len(result.tables)} tables, {ranked} "
        f"ranked rows, {result.refused} files refused; open {result.out / 'index.html'}",
        file=sys.stderr,
    )
    return 0 if ranked else 1
