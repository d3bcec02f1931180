"""``pruning-suite new-method NAME``: write a third-party method package that passes its own tests.

The package (``pruning-suite-NAME/``) holds a ``pyproject.toml`` whose entry point
``[project.entry-points.pruning_suite] NAME = "pruning_suite_NAME"`` registers the method, the
method class (a working Lp-norm criterion; with ``--training-aware`` also a ``schedule()`` that
trains and a ``regularize()`` hook), ``tests/test_NAME.py`` using the conformance kit
(:mod:`pruning_suite.testing`) and a README. The files come from the Jinja2 templates in
``templates/new_method/``; nothing is written unless every file is rendered, and the folder
appears at once (rendered into a temporary sibling, then renamed).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, PluginError
from .options import add_hidden_debug

__all__ = ["Skeleton", "add_new_method_command", "skeleton", "write_skeleton"]

TEMPLATES = Path(__file__).parent / "templates" / "new_method"

# Module names that already belong to pruning-suite itself.
_TAKEN_MODULES = {"pruning_suite_plugins"}


@dataclass(frozen=True)
class Skeleton:
    """The names of a new method package.

    Attributes:
        name: The method name, entry-point name and ``--plugin`` value (``my-method``).
        distribution: The distribution (``pruning-suite-my-method``), also the folder's name.
        module: The import package (``pruning_suite_my_method``).
        cls: The method class (``MyMethod``).
        granularity: ``"filter"`` or ``"weight"``.
        training_aware: The method trains in the pruning stage (``regularize``, ``schedule``).
        description: The method's one-line description.
        protocol: The shipped protocol its README runs it on.
        test_file: The test module's file name (``test_my_method.py``).
    """

    name: str
    distribution: str
    module: str
    cls: str
    granularity: str
    training_aware: bool
    description: str
    protocol: str
    test_file: str


def skeleton(name: str, granularity: str = "filter", training_aware: bool = False) -> Skeleton:
    """The names of the package for method ``name``.

    Raises:
        PluginError: ``name`` is not a method name (lower-case letters, digits, '-'), or an
            installed plugin or pruning-suite itself already uses it.
    """
    from ..contract.plugins import ENTRY_POINT_GROUP
    from ..contract.registry import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, name):
        raise PluginError(
            f"{name!r} is not a method name",
            "use lower-case letters, digits and '-', starting with a letter or digit, e.g. my-method",
        )
    module = "pruning_suite_" + name.replace("-", "_")
    installed = {ep.name for ep in _entry_points(ENTRY_POINT_GROUP)}
    if name in installed or module in _TAKEN_MODULES:
        raise PluginError(
            f"a plugin named {name!r} is already installed",
            "pick another NAME ('pruning-suite plugins' lists the installed ones)",
        )
    cls = "".join(part.capitalize() for part in name.split("-"))
    what = "Lp norm of each filter" if granularity == "filter" else "|w| over its layer's Lp norm"
    description = what + (", with a pruning-stage penalty" if training_aware else "")
    base = "digits-convnet" if granularity == "filter" else "digits-convnet-unstructured"
    return Skeleton(
        name=name,
        distribution=f"pruning-suite-{name}",
        module=module,
        cls=cls if cls[0].isalpha() else f"Method{cls}",
        granularity=granularity,
        training_aware=training_aware,
        description=description,
        protocol=f"{base}-s4" if training_aware else base,
        test_file=f"test_{module.removeprefix('pruning_suite_')}.py",
    )


def _entry_points(group: str) -> Any:
    from importlib.metadata import entry_points

    return entry_points(group=group)


def render(names: Skeleton) -> dict[str, str]:
    """Relative path -> text of every file of the package."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    values = asdict(names)
    files = {
        "pyproject.toml": "pyproject.toml.j2",
        "README.md": "README.md.j2",
        f"{names.module}/__init__.py": "package_init.py.j2",
        f"tests/{names.test_file}": "test_method.py.j2",
    }
    return {path: env.get_template(template).render(values) for path, template in files.items()}


def write_skeleton(names: Skeleton, directory: Path) -> Path:
    """Write the package into ``directory/<distribution>`` and return that folder.

    Raises:
        OutputError: The folder exists, or cannot be written.
    """
    target = directory / names.distribution
    if target.exists() or target.is_symlink():
        raise OutputError(
            f"{target} exists; new-method never writes into an existing folder",
            "remove it, or pass another NAME or --dir",
        )
    files = render(names)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{names.distribution}-", dir=directory))
    except OSError as err:
        raise OutputError(f"cannot write into {directory}: {err.strerror}", "pass --dir") from err
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.rename(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write {target}: {err.strerror}", "pass another --dir") from err
    return target


def add_new_method_command(commands: Any) -> None:
    """Register ``new-method NAME [--dir DIR] [--granularity G] [--training-aware]``."""
    parser = commands.add_parser(
        "new-method",
        help="write a third-party method package skeleton that passes its own tests",
        description="Write pruning-suite-NAME/: pyproject.toml (entry point NAME), the method "
        "class, tests using pruning_suite.testing, README.md. Install it with pip install -e.",
    )
    parser.add_argument("name", metavar="NAME", help="the method name, e.g. my-method")
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="where the package folder goes (default: .)"
    )
    parser.add_argument(
        "--granularity",
        choices=["filter", "weight"],
        default="filter",
        help="filter (structured, default) or weight (unstructured)",
    )
    parser.add_argument(
        "--training-aware",
        action="store_true",
        help="the method trains in the suite's pruning stage (schedule + regularize)",
    )
    add_hidden_debug(parser)
    parser.set_defaults(handler=_cmd_new_method)


def _cmd_new_method(args: argparse.Namespace) -> int:
    names = skeleton(args.name, args.granularity, args.training_aware)
    target = write_skeleton(names, args.dir)
    print(f"wrote {target}/ (method {names.name!r}, class {names.cls}, {names.granularity})")
    print("next:")
    print(f"  pip install -e {target}")
    print(f"  pytest {target}")
    print(f"  pruning-suite run --plugin {names.name} --protocol {names.protocol} --smoke")
    return 0
