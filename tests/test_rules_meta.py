"""Meta-test of RULES.md against the rule registry: every rule has a test named after it.

Like datasette's ``test_hook_<name>`` meta-test: the rule tables of RULES.md are parsed, the test
files are parsed with :mod:`ast` (never imported), and the functions named in each rule's last
column are looked up. A name with a ``pruning_suite.`` prefix is imported (its module, then
attributes: ``pruning_suite.engine.masks.WeightMasks.enforce``); a bare name is a function of
``pruning_suite.rules``. The ids of RULES.md and of the rule registry are the same set, and a
checked rule's row names the registered rule's check.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES_MD = ROOT / "RULES.md"
TESTS = Path(__file__).resolve().parent
_RULE_ROW = re.compile(r"^\|\s*(R-[A-Z]+-\d+)\s*\|")
_CODE = re.compile(r"`([^`]+)`")
_DEFAULT_MODULE = "pruning_suite.rules"


def parse_rules(text: str) -> list[tuple[str, list[str]]]:
    """Every rule row of the Markdown tables in ``text``: ``(rule id, names in its last column)``.

    A rule row is a table line whose first cell is a rule id (``| R-SEED-2 | ...``); the names
    are the back-quoted words of its last cell. Rows are returned in order, repeats included.
    """
    rows = []
    for line in text.splitlines():
        match = _RULE_ROW.match(line.strip())
        if match:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows.append((match.group(1), _CODE.findall(cells[-1])))
    return rows


def prefix_of(rule_id: str) -> str:
    """The name a rule's tests start with: ``R-SEED-2`` -> ``test_R_SEED_2``."""
    return "test_" + rule_id.replace("-", "_")


def collect_test_names(folder: Path) -> set[str]:
    """Names of every function starting with ``test_`` in ``folder``'s ``test_*.py`` files (by ast)."""
    names = set()
    for path in sorted(folder.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        }
    return names


def rules_without_tests(rule_ids: list[str], names: set[str]) -> list[str]:
    """The rule ids no test is named after (``test_R_ID_1`` or ``test_R_ID_1_<words>``)."""
    missing = []
    for rule_id in rule_ids:
        prefix = prefix_of(rule_id)
        if not any(name == prefix or name.startswith(prefix + "_") for name in names):
            missing.append(rule_id)
    return missing


def duplicate_ids(rule_ids: list[str]) -> list[str]:
    """Rule ids that appear more than once."""
    return sorted(rule_id for rule_id, n in Counter(rule_ids).items() if n > 1)


def resolve(name: str) -> object:
    """The object a RULES.md name refers to.

    Raises:
        LookupError: No such module or attribute.
    """
    if not name.startswith("pruning_suite."):
        name = f"{_DEFAULT_MODULE}.{name}"
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{'.'.join(parts[:cut])} has no {'.'.join(parts[cut:])}")
            obj = getattr(obj, attr)
        return obj
    raise LookupError(f"no module for {name}")


def unresolved(rows: list[tuple[str, list[str]]]) -> list[str]:
    """``"R-ID-1: name (why)"`` for every named function that cannot be found."""
    problems = []
    for rule_id, names in rows:
        if not names:
            problems.append(f"{rule_id}: no function named")
        for name in names:
            try:
                resolve(name)
            except LookupError as err:
                problems.append(f"{rule_id}: {name} ({err})")
    return problems


# --------------------------------------------------------------------------- RULES.md itself


@pytest.fixture(scope="module")
def rules() -> list[tuple[str, list[str]]]:
    return parse_rules(RULES_MD.read_text(encoding="utf-8"))


def test_rules_md_has_the_rule_tables(rules) -> None:
    ids = [rule_id for rule_id, _ in rules]
    assert len(ids) >= 30  # a parser that finds nothing must not pass the checks below
    families = {rule_id.rsplit("-", 1)[0] for rule_id in ids}
    assert {"R-BASE", "R-DATA", "R-PRUNE", "R-EVAL", "R-MEAS", "R-SEED", "R-CERT"} <= families


def test_every_rule_has_a_test_named_after_it(rules) -> None:
    missing = rules_without_tests([rule_id for rule_id, _ in rules], collect_test_names(TESTS))
    assert not missing, "rules without a test named test_<ID>_...: " + ", ".join(missing)


def test_every_named_check_function_exists(rules) -> None:
    problems = unresolved(rules)
    assert not problems, "RULES.md names functions that do not exist:\n" + "\n".join(problems)


def test_rule_ids_are_unique(rules) -> None:
    assert duplicate_ids([rule_id for rule_id, _ in rules]) == []


def test_rules_md_and_the_rule_registry_hold_the_same_ids(rules) -> None:
    from pruning_suite.rules import load_rules

    documented = {rule_id for rule_id, _ in rules}
    registered = set(load_rules())
    assert sorted(registered - documented) == [], "registered rules missing from RULES.md"
    assert sorted(documented - registered) == [], "RULES.md rules that are not registered"


def test_each_checked_rules_row_names_its_registered_check(rules) -> None:
    from pruning_suite.rules import load_rules

    registry = load_rules()
    for rule_id, names in rules:
        rule = registry.get(rule_id)
        if rule.check is not None:
            assert rule.check in [resolve(name) for name in names], rule_id


# --------------------------------------------------------------------------- the checker can fail

_SAMPLE = """\
| id | reason | what | check |
|---|---|---|---|
| R-ONE-1 | a | b | `check_flops_are_twice_macs` |
| R-TWO-1 | a | b | `pruning_suite.rules.setups.certify`, `no_such_check` |
| R-ONE-1 | a | b | `pruning_suite.nowhere.f` |
not a rule row | R-THREE-1 |
"""


def test_parser_reads_ids_and_last_column_names() -> None:
    assert parse_rules(_SAMPLE) == [
        ("R-ONE-1", ["check_flops_are_twice_macs"]),
        ("R-TWO-1", ["pruning_suite.rules.setups.certify", "no_such_check"]),
        ("R-ONE-1", ["pruning_suite.nowhere.f"]),
    ]


def test_checker_finds_a_missing_test_a_duplicate_and_unknown_functions(tmp_path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_R_ONE_1_does_it():\n    pass\n\n"
        "def test_R_TWO_10_is_another_rule():\n    pass\n\n"
        "def helper_R_TWO_1():\n    pass\n",
        encoding="utf-8",
    )
    rows = parse_rules(_SAMPLE)
    ids = [rule_id for rule_id, _ in rows]
    assert rules_without_tests(ids, collect_test_names(tmp_path)) == ["R-TWO-1"]
    assert duplicate_ids(ids) == ["R-ONE-1"]
    problems = unresolved(rows)
    assert [p.split(" (")[0] for p in problems] == [
        "R-TWO-1: no_such_check",
        "R-ONE-1: pruning_suite.nowhere.f",
    ]


def test_resolve_imports_dotted_names_and_defaults_to_rules() -> None:
    from pruning_suite.engine.masks import WeightMasks
    from pruning_suite.rules.measures import check_rankable

    assert resolve("check_rankable") is check_rankable
    assert resolve("pruning_suite.engine.masks.WeightMasks.enforce") is WeightMasks.enforce
    with pytest.raises(LookupError, match="has no select_removal"):
        resolve("pruning_suite.engine.pruning.select_removal")
