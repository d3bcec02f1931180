"""A rule added by a plugin is one registered object, and it shows up everywhere rules are read:
``validate``, ``report`` and certification (issue 11)."""

from __future__ import annotations

import json
import textwrap

import pytest

from pruning_suite import hookimpl
from pruning_suite.cli.main import main
from pruning_suite.contract.plugins import load_registry
from pruning_suite.contract.registry import Registry
from pruning_suite.errors import PluginError
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.record.submission import Submission
from pruning_suite.report.tables import build_tables
from pruning_suite.rules import Finding, Rule, certify, load_rules
from pruning_suite.rules.registry import check_rules
from pruning_suite.validate import validate_paths
from tests.conftest_submissions import make_submission, write_submission
from tests.entry_points import add_entry_points

DIGITS = load_protocol("digits-convnet")


def check_no_random_baseline(ctx):
    """R-PLUG-1: the random baseline is not a result (a plugin's file rule)."""
    if ctx.submission.method.name == "random":
        yield Finding("$.method.name", "random pruning is refused by a plugin rule", "use a method")


def check_even_seed(ctx):
    """R-PLUG-2 (S3.2): the seed is even (a plugin's setup requirement)."""
    if ctx.submission.seed % 2:
        yield Finding("$.seed", f"seed {ctx.submission.seed} is odd")


class _RulePlugin:
    @hookimpl
    def register_rules(self):
        return {
            "R-PLUG-1": Rule("R-PLUG-1", check_no_random_baseline),
            "R-PLUG-2": Rule("R-PLUG-2", check_even_seed, "S3.2", severity="warning"),
        }


def test_hook_register_rules(tmp_path) -> None:
    rules = load_rules(load_registry(extra_plugins=(_RulePlugin(),)))
    assert {"R-PLUG-1", "R-PLUG-2", "R-MEAS-1", "R-SEED-1"} <= set(rules)
    random_run = write_submission(tmp_path, make_submission(method="random"))
    odd = Submission.model_validate(make_submission(seed=1))
    # validate: the file rule is an error with its id; without the plugin the file is valid
    (problem,) = [
        p for p in validate_paths([random_run], rules=rules)[random_run] if p.rule == "R-PLUG-1"
    ]
    assert (problem.severity, problem.where) == ("error", "$.method.name")
    assert not any(p.rule.startswith("R-PLUG") for p in validate_paths([random_run])[random_run])
    # certification: the setup requirement caps the odd seed at S3.1 (open division)
    cert = certify(odd, DIGITS, rules)
    assert (cert.setup, cert.division) == ("S3.1", "open")
    assert cert.unmet == ["S3.2 R-PLUG-2: seed 1 is odd"]
    assert certify(odd, DIGITS).setup == "S4.2"


def test_a_plugin_rule_must_be_a_rule_under_its_own_id() -> None:
    """A malformed rule breaks its own plugin (listed with the reason), never every command."""

    class Bad:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-3": Rule("R-PLUG-4", check_even_seed)}

    class NotARule:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-5": check_even_seed}

    class BadScope:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-6": Rule("R-PLUG-6", None, scope="file")}

    class UnknownSetup:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-7": Rule("R-PLUG-7", check_even_seed, setup="S5")}

    registry = load_registry(extra_plugins=(Bad(), NotARule(), BadScope(), UnknownSetup()))
    rules = load_rules(registry)
    assert not {"R-PLUG-3", "R-PLUG-4", "R-PLUG-5", "R-PLUG-6", "R-PLUG-7"} & set(rules)
    assert "setup 'S5' is none of S1, S2, S3.1, S3.2, S4.1, S4.2" in " ".join(
        registry.broken.values()
    )
    assert "R-MEAS-1" in rules  # the suite's own rules are all there
    why = " ".join(registry.broken.values())
    assert "under the id 'R-PLUG-3'" in why and "not a Rule" in why
    assert "the rule 'R-PLUG-6' with scope 'file' and check None" in why
    hand_built = Registry("rule")
    hand_built.add("R-PLUG-5", check_even_seed)
    with pytest.raises(PluginError, match="not a Rule"):
        check_rules(hand_built)


_PLUGIN_MODULE = '''
from pruning_suite import hookimpl
from pruning_suite.rules import Finding, Rule


def check_no_random_baseline(ctx):
    """R-PLUG-1: the random baseline is not a result (an installed plugin's file rule)."""
    if ctx.submission.method.name == "random":
        yield Finding("$.method.name", "random pruning is refused by a plugin rule")


def check_even_seed(ctx):
    """R-PLUG-2 (S3.2): the seed is even (an installed plugin's setup requirement)."""
    if ctx.submission.seed % 2:
        yield Finding("$.seed", f"seed {ctx.submission.seed} is odd")


@hookimpl
def register_rules():
    return {
        "R-PLUG-1": Rule("R-PLUG-1", check_no_random_baseline),
        "R-PLUG-2": Rule("R-PLUG-2", check_even_seed, "S3.2", severity="warning"),
    }
'''


@pytest.fixture
def installed_rule_plugin(tmp_path, monkeypatch):
    """A plugin distribution with an entry point in the ``pruning_suite`` group, on sys.path."""
    site = tmp_path / "site"
    dist = site / "rule_plugin_for_tests-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "rule_plugin_for_tests.py").write_text(textwrap.dedent(_PLUGIN_MODULE))
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rule-plugin-for-tests\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[pruning_suite]\nrule-plugin-for-tests = rule_plugin_for_tests\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_plugins_rule_shows_up_in_validate_report_and_certification(
    tmp_path, installed_rule_plugin, capsys
) -> None:
    tree = tmp_path / "tree"
    random_run = write_submission(tree, make_submission(method="random"))
    write_submission(tree, make_submission(seed=0))
    assert "R-PLUG-1" in load_rules()
    # validate (the command): the plugin's rule id on the random run
    assert main(["validate", str(random_run)]) == 1
    assert "error [R-PLUG-1]: random pruning is refused by a plugin rule" in capsys.readouterr().out
    # report (the command): the random run is not ranked, the l1norm run is
    assert main(["report", str(tree)]) == 0
    out, err = capsys.readouterr()
    assert "l1norm" in out and "| random" not in out
    assert f"not ranked: {random_run}: $.method.name: random pruning is refused" in err
    # certification, as the runner computes it: the odd seed is S3.1, open division, and the
    # certification names the plugin rule it was made under, so report rechecks it with it
    odd = Submission.model_validate(make_submission(seed=1))
    cert = certify(odd, DIGITS)
    assert (cert.setup, cert.plugin_rules) == ("S3.1", ["R-PLUG-2"])
    certified = odd.model_copy(update={"certification": cert})
    (table,) = build_tables([certified])
    assert (table.division, table.setup) == ("open", "S3.1")
    json.dumps(cert.model_dump())
    # a file certified elsewhere without the plugin keeps its certification here (R-CERT-1 holds)
    elsewhere = make_submission(seed=1)
    elsewhere["certification"] = {**elsewhere["certification"], "setup": "S4.2"}
    elsewhere["certification"].update(division="closed", unmet=[], plugin_rules=[])
    (table,) = build_tables([Submission.model_validate(elsewhere)])
    assert (table.division, table.setup) == ("closed", "S4.2")
    odd_path = write_submission(tmp_path / "odd", elsewhere)
    assert main(["validate", str(odd_path)]) == 0
    out = capsys.readouterr().out
    assert "warning [R-PLUG-2]: not S3.2: seed 1 is odd" in out and "R-CERT-1" not in out


def _cert_under(data: dict, rules) -> dict:
    sub = Submission.model_validate(data)
    return {**data, "certification": certify(sub, DIGITS, rules).model_dump(mode="json")}


def test_R_CERT_1_a_file_certified_under_a_plugin_rule_not_installed_here_is_a_warning(
    tmp_path, monkeypatch
) -> None:
    with_plugin = load_rules(load_registry(extra_plugins=(_RulePlugin(),)))
    path = write_submission(tmp_path, _cert_under(make_submission(seed=1), with_plugin))
    assert json.loads(path.read_text())["certification"]["setup"] == "S3.1"
    assert [
        p for p in validate_paths([path], rules=with_plugin)[path] if p.rule == "R-CERT-1"
    ] == []
    (problem,) = [p for p in validate_paths([path])[path] if p.rule == "R-CERT-1"]
    assert problem.severity == "warning" and "R-PLUG-2" in problem.message
    assert "the suite's rules support S4.2, the file claims S3.1" in problem.message
    assert "failed to load" not in problem.hint
    add_entry_points(monkeypatch, plug_rules="no_such_rule_plugin_anywhere")
    (problem,) = [p for p in validate_paths([path])[path] if p.rule == "R-CERT-1"]
    assert "plugins that failed to load, one may provide it: 'plug_rules'" in problem.hint
    # claiming more than the suite's own rules support stays an error, plugin rules or not
    data = json.loads(path.read_text())
    data["certification"]["setup"] = "S4.2"
    data["certification"]["division"] = "closed"
    data["protocol"]["content_hash"] = DIGITS.content_hash
    data["retraining"][0]["lr"] *= 2  # S3.2 fails under the suite's own rules
    path.write_text(json.dumps(data))
    (problem,) = [p for p in validate_paths([path])[path] if p.rule == "R-CERT-1"]
    assert problem.severity == "error"


def check_crashes(ctx):
    """R-PLUG-9 (S1): a plugin rule with a bug."""
    raise RuntimeError("boom")


def check_tree_crashes(entries, context):
    """R-PLUG-8: a plugin tree rule with a bug."""
    raise KeyError("gone")


class _CrashingRules:
    @hookimpl
    def register_rules(self):
        return {
            "R-PLUG-9": Rule("R-PLUG-9", check_crashes, "S1", severity="warning"),
            "R-PLUG-8": Rule("R-PLUG-8", check_tree_crashes, scope="tree"),
        }


def test_a_rule_that_raises_is_an_error_naming_it_never_a_traceback(tmp_path) -> None:
    rules = load_rules(load_registry(extra_plugins=(_CrashingRules(),)))
    paths = [write_submission(tmp_path, make_submission(seed=s)) for s in (0, 2)]
    problems = validate_paths(paths, rules=rules)
    for path in paths:
        mine = {p.rule: p for p in problems[path] if p.rule.startswith("R-PLUG")}
        assert mine["R-PLUG-9"].severity == "error"
        assert "rule R-PLUG-9 could not run: RuntimeError: boom" in mine["R-PLUG-9"].message
        assert "rule R-PLUG-8 could not run: KeyError" in mine["R-PLUG-8"].message
    # certification: a requirement that could not be checked is not met
    cert = certify(Submission.model_validate(make_submission()), DIGITS, rules)
    assert cert.setup is None and "R-PLUG-9: rule R-PLUG-9 could not run" in cert.unmet[0]
    # such a file, read where the rule runs (or is not installed), is a warning, not an error
    data = {**make_submission(), "certification": cert.model_dump(mode="json")}
    path = write_submission(tmp_path / "crashed", data)
    (problem,) = [p for p in validate_paths([path])[path] if p.rule == "R-CERT-1"]
    assert problem.severity == "warning" and "a rule could not run" in problem.message
