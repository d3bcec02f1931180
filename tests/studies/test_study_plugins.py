"""A study from a plugin: the minimal one gets ``--plugin``; one whose code fails while the
command line is built is a one-line error naming it, not a traceback."""

from __future__ import annotations

import argparse

import pytest

from pruning_suite import hookimpl
from pruning_suite.errors import PruningSuiteError
from pruning_suite.studies import Study
from tests.entry_points import add_entry_points, module_plugin


class _Minimal(Study):
    name = "minimal"

    def arms(self, args, base, protocol, seeds):
        raise PruningSuiteError(f"arms reached with --plugin {base.plugin}", "")


class _Clashing(_Minimal):
    name = "clashing"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seeds")  # every study has --seeds already


def _install(monkeypatch, **studies: Study) -> None:
    hook = hookimpl(lambda: studies)
    add_entry_points(monkeypatch, mine=module_plugin(monkeypatch, "mine", register_studies=hook))


def test_a_minimal_study_gets_plugin_and_reaches_its_arms(monkeypatch, capsys, tmp_path) -> None:
    from pruning_suite.cli.main import main

    _install(monkeypatch, minimal=_Minimal())
    argv = ["study", "minimal", "--smoke", "--report", str(tmp_path / "r")]
    with pytest.raises(SystemExit):
        main(argv)  # --plugin is required
    assert "the following arguments are required: --plugin" in capsys.readouterr().err
    assert main([*argv, "--plugin", "l1norm"]) == 2
    assert "error: arms reached with --plugin l1norm" in capsys.readouterr().err


def test_a_study_without_a_plugin_value_gets_a_clear_error() -> None:
    with pytest.raises(PruningSuiteError, match="study 'minimal' has no --plugin value"):
        _Minimal().base_plugin(argparse.Namespace())


def test_a_study_failing_while_the_parser_is_built_is_an_error_naming_it(
    monkeypatch, capsys
) -> None:
    from pruning_suite.cli.main import main

    _install(monkeypatch, clashing=_Clashing())
    assert main(["study", "clashing", "--help"]) == 2
    err = capsys.readouterr().err
    assert "error: study 'clashing' (plugin mine) failed while its options were added" in err
    assert "ArgumentError" in err and "Traceback" not in err


def test_a_study_named_like_a_builtin_breaks_its_plugin_only(monkeypatch, capsys) -> None:
    from pruning_suite.cli.main import main

    dup = type("Dup", (_Minimal,), {"name": "lr-sweep"})()
    _install(monkeypatch, **{"lr-sweep": dup})
    with pytest.raises(SystemExit) as info:
        main(["study", "lr-sweep", "--help"])
    assert info.value.code == 0
    assert "--schedule" in capsys.readouterr().out  # the suite's own lr-sweep
    assert main(["plugins"]) == 0
    assert "broken plugin 'mine': register_studies registers the study 'lr-sweep'" in (
        capsys.readouterr().err
    )


class _Raising(_Minimal):
    name = "raising"

    def arms(self, args, base, protocol, seeds):
        raise RuntimeError("arms exploded")


class _NoArms(_Minimal):
    name = "no-arms"

    def arms(self, args, base, protocol, seeds):
        return None


def test_a_study_whose_arms_raise_or_are_none_is_an_error_naming_it(
    monkeypatch, capsys, tmp_path
) -> None:
    from pruning_suite.cli.main import main

    _install(monkeypatch, raising=_Raising(), **{"no-arms": _NoArms()})
    common = ["--plugin", "l1norm", "--smoke", "--report", str(tmp_path / "r")]
    assert main(["study", "raising", *common]) == 2
    err = capsys.readouterr().err
    assert "error: study 'raising' raised RuntimeError in arms(): arms exploded" in err
    assert "Traceback" not in err
    assert main(["study", "no-arms", *common]) == 2
    assert "error: study 'no-arms' raised TypeError in arms()" in capsys.readouterr().err
