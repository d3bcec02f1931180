"""The house rules of the layout (issue 11): small modules and functions, no import cycle between
subpackages, no private name imported across subpackages, the arrows pointing down."""

from __future__ import annotations

import ast
from pathlib import Path

SUITE = Path(__file__).parents[1] / "suite"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# Which subpackage may import which (DESIGN.md: cli -> run/studies/report -> rules/validate ->
# engine/data/protocol/record -> contract; testing, the method authors' conformance kit, sits on
# top beside cli); a subpackage may always import itself, the top-level
# package and ``errors``.
LAYERS = {
    "contract": 0,
    "protocol": 1,
    "record": 2,
    "data": 2,
    "engine": 3,
    "rules": 4,
    "validate": 5,
    "run": 6,
    "report": 6,
    "studies": 7,
    "leaderboard": 7,
    "cli": 8,
    "testing": 8,
}


def _modules() -> list[Path]:
    return sorted(p for p in SUITE.rglob("*.py") if "files" not in p.parts)


def _package(path: Path) -> str:
    rel = path.relative_to(SUITE).parts
    return rel[0] if len(rel) > 1 else ""


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute dotted module below pruning_suite, imported names, line) of every relative import
    outside ``if TYPE_CHECKING:`` blocks, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for n in ast.walk(node))
    here = list(path.relative_to(SUITE).with_suffix("").parts)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level and id(node) not in hidden:
            base = here[: len(here) - node.level]
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.append((target, [a.name for a in node.names], node.lineno))
    return found


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(SUITE)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_60_lines() -> None:
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SUITE)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_private_name_is_imported_across_subpackages() -> None:
    crossing = []
    for path in _modules():
        for target, names, line in _imports(path):
            if target.split(".")[0] == _package(path):
                continue
            crossing += [
                f"{path.relative_to(SUITE)}:{line} {n}"
                for n in names
                if n.startswith("_") and not n.endswith("__")
            ]
    assert not crossing, f"private names imported across subpackages: {crossing}"


def test_subpackages_import_only_downwards() -> None:
    upward = []
    for path in _modules():
        source = _package(path)
        for target, _names, line in _imports(path):
            dest = target.split(".")[0]
            if source and dest in LAYERS and dest != source and LAYERS[dest] >= LAYERS[source]:
                upward.append(f"{path.relative_to(SUITE)}:{line} {source} -> {dest}")
    assert not upward, f"imports against the direction of the layers: {upward}"


def test_the_layer_table_names_every_subpackage() -> None:
    packages = {p.name for p in SUITE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS)


def _module_graph() -> dict[str, set[str]]:
    """Module -> modules it imports (relative imports, lazy ones included, TYPE_CHECKING not)."""
    known = {".".join(p.relative_to(SUITE).with_suffix("").parts) for p in _modules()}
    graph: dict[str, set[str]] = {}
    for path in _modules():
        name = ".".join(path.relative_to(SUITE).with_suffix("").parts)
        edges = graph.setdefault(name, set())
        for target, names, _line in _imports(path):
            for imported in names:
                for candidate in (f"{target}.{imported}", target, f"{target}.__init__"):
                    if candidate in known and candidate != name:
                        edges.add(candidate)
                        break
    return graph


def test_no_import_cycle_between_modules() -> None:
    graph = _module_graph()
    cycles = []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        if node in stack:
            cycles.append(" -> ".join([*stack[stack.index(node) :], node]))
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*stack, node], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        visit(start, [], done)
    assert not cycles, f"import cycles: {cycles}"
