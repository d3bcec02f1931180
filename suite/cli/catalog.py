"""``pruning-suite protocols`` and ``plugins``: what is installed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import PruningSuiteError
from ..text import one_line
from .options import add_hidden_debug

__all__ = ["add_plugins_command", "add_protocols_command", "broken_plugins"]

PROTOCOL_HEADERS = [
    "protocol",
    "version",
    "dataset",
    "architecture",
    "targets",
    "retrain epochs",
    "seeds",
    "published refs",
]


def add_protocols_command(commands: Any) -> None:
    """``pruning-suite protocols [list | show ID]``."""
    protocols = commands.add_parser(
        "protocols", help="list comparison protocols, or show one in full"
    )
    protocols.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    protocols.add_argument("protocol_id", nargs="?", help="protocol id (for 'show')")
    protocols.add_argument("--json", action="store_true", help="machine-readable output")
    add_hidden_debug(protocols)
    protocols.set_defaults(handler=_cmd_protocols)


def _cmd_protocols(args: argparse.Namespace) -> int:
    from ..protocol.catalogue import catalogue_problems, list_protocols

    if args.action == "show" or args.protocol_id:
        _show_protocol(args.protocol_id)
        return 0
    if args.json:
        print(json.dumps([_protocol_summary(p) for p in list_protocols()], indent=2))
    else:
        _print_protocols(list_protocols())
    for problem in catalogue_problems():
        print(f"left out: {one_line(problem)}", file=sys.stderr)  # a name forges no line
    return 0


def _show_protocol(protocol_id: str | None) -> None:
    from ..protocol.catalogue import load_protocol

    if not protocol_id:
        raise PruningSuiteError(
            "'protocols show' needs a protocol id", "see 'pruning-suite protocols'"
        )
    protocol = load_protocol(protocol_id)
    data = protocol.model_dump(mode="json")
    data["content_hash"] = protocol.content_hash
    print(json.dumps(data, indent=2))


def _protocol_summary(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "version": p.version,
        "title": p.title,
        "granularity": p.granularity,
        "references": [r.model_dump(mode="json") for r in p.references],
    }


def _print_protocols(protocols: Sequence[Any]) -> None:
    from tabulate import tabulate

    from ..protocol.comparison import DEFAULT_PROTOCOL

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
    print(tabulate(rows, headers=PROTOCOL_HEADERS))
    print(
        "\n'pruning-suite protocols show ID' gives a protocol in full, its published references included"
    )


def add_plugins_command(commands: Any) -> None:
    """``pruning-suite plugins``: the installed methods, what every plugin registers, and the
    plugins that failed."""
    plugins = commands.add_parser(
        "plugins",
        help="list installed pruning methods, and what every plugin registers (datasets, "
        "architectures, protocol folders, rules, studies, report formats)",
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument(
        "--all",
        action="store_true",
        help="also list the suite's own architectures (registering them imports torch)",
    )
    add_hidden_debug(plugins)
    plugins.set_defaults(handler=_cmd_plugins)


REGISTERED_KINDS = (
    "datasets",
    "architectures",
    "protocol_folders",
    "rules",
    "studies",
    "report_formats",
)
"""What ``plugins`` lists per plugin after the methods, in this order."""

_TORCH_AT_REGISTRATION = "pruning_suite.engine.builtin"
"""The core plugin whose registration imports torch: skipped by ``plugins`` unless ``--all``."""


def _cmd_plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from ..contract import plugins

    registry = plugins.load_registry()
    registered = _registered(registry, args.all)
    if args.json:
        methods = [_method_summary(m) for m in registry.methods.values()]
        payload = {"methods": methods, "registered": registered, "broken": registry.broken}
        print(json.dumps(payload, indent=2))
        return 0
    rows = [
        [m.name, m.version, m.granularity, m.distribution, m.description]
        for m in sorted(registry.methods.values(), key=lambda m: m.name)
    ]
    print(
        tabulate(rows, headers=["method", "version", "granularity", "distribution", "description"])
    )
    print()
    print(_registered_table(registered))
    for name, why in sorted(registry.broken.items()):
        print(one_line(f"broken plugin {name!r}: {why}"), file=sys.stderr)
    return 0


def broken_plugins() -> dict[str, str]:
    """Every plugin that failed to load, each registry read (the suite's own architectures, whose
    registration imports torch, aside)."""
    from ..contract import plugins

    registry = plugins.load_registry()
    for kind in REGISTERED_KINDS:
        registry.registry(kind, (_TORCH_AT_REGISTRATION,) if kind == "architectures" else ())
    return registry.broken


def _registered(registry: Any, everything: bool) -> dict[str, dict[str, Any]]:
    """Plugin -> its distribution and, per kind, the names it registers (registration order)."""
    found: dict[str, dict[str, Any]] = {}
    for kind in REGISTERED_KINDS:
        skip = (_TORCH_AT_REGISTRATION,) if kind == "architectures" and not everything else ()
        listed = {plugin: None for plugin in skip}  # None: registers some, not listed
        listed.update(registry.registry(kind, skip).by_origin())
        for plugin, names in listed.items():
            entry = found.setdefault(plugin, {"distribution": registry.distribution(plugin)})
            entry[kind] = names
    return found


def _registered_table(registered: dict[str, dict[str, Any]]) -> str:
    from tabulate import tabulate

    rows = []
    for kind in REGISTERED_KINDS:
        for plugin, entry in registered.items():
            if kind in entry:
                names = entry[kind]
                shown = ", ".join(names) if names is not None else _NOT_LISTED
                rows.append([plugin, entry["distribution"], kind.replace("_", " "), shown])
    headers = ["plugin", "distribution", "registers", "names"]
    return tabulate(rows, headers=headers, maxcolwidths=[None, None, None, 70])


_NOT_LISTED = "the suite's models ('pruning-suite plugins --all' lists them; it imports torch)"


def _method_summary(m: Any) -> dict[str, str]:
    return {
        "name": m.name,
        "version": m.version,
        "distribution": m.distribution,
        "granularity": m.granularity,
        "description": m.description,
    }
