"""A rule added by a plugin is one registered object, and it shows up everywhere rules are read:
``validate``, ``report`` and certification (issue 11)."""

from __future__ import annotations

import json
import textwrap

import pytest

from pruning_suite import hookimpl
from pruning_suite.cli.main import main
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.record.submission import Submission
from pruning_suite.report.tables import build_tables
from pruning_suite.rules import Finding, Rule, certify, load_rules
from pruning_suite.validate import validate_paths
from tests.conftest_submissions import make_submission, write_submission

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
    class Bad:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-3": Rule("R-PLUG-4", check_even_seed)}

    with pytest.raises(PluginError, match="registered as 'R-PLUG-3'"):
        load_rules(load_registry(extra_plugins=(Bad(),)))

    class NotARule:
        @hookimpl
        def register_rules(self):
            return {"R-PLUG-5": check_even_seed}

    with pytest.raises(PluginError, match="not a Rule"):
        load_rules(load_registry(extra_plugins=(NotARule(),)))


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
    # certification, as the runner and report compute it: the odd seed is S3.1, open division
    odd = Submission.model_validate(make_submission(seed=1))
    assert certify(odd, DIGITS).setup == "S3.1"
    (table,) = build_tables([odd])
    assert (table.division, table.setup) == ("open", "S3.1")
    json.dumps(certify(odd, DIGITS).model_dump())
