"""A plugin's report format that raises or returns no text is a one-line error naming its plugin."""

from __future__ import annotations

import pytest

from pruning_suite import hookimpl
from pruning_suite.errors import PluginError
from pruning_suite.report.formats import ReportFormat, render
from tests.entry_points import add_entry_points, module_plugin


def _crash(tables):
    raise RuntimeError("format crashed\non purpose")


@hookimpl
def _register_formats() -> dict[str, ReportFormat]:
    return {
        "crash": ReportFormat("crash", "raises", _crash),
        "nothing": ReportFormat("nothing", "returns None", lambda tables: None),
    }


@pytest.mark.parametrize(
    ("name", "what"),
    [("crash", "raised RuntimeError: format crashed on purpose"), ("nothing", "returned NoneType, not text")],
)  # fmt: skip
def test_a_failing_format_is_an_error_naming_its_plugin(monkeypatch, capsys, tmp_path, name, what):
    from pruning_suite.cli.main import main

    plugin = module_plugin(monkeypatch, "bad_formats", register_report_formats=_register_formats)
    add_entry_points(monkeypatch, **{"bad-formats": plugin})
    with pytest.raises(PluginError) as info:
        render([], name)
    assert info.value.message == f"report format {name!r} (plugin 'bad-formats') {what}"
    assert main(["report", str(tmp_path), "--format", name]) == 2
    err = capsys.readouterr().err
    assert f"error: report format {name!r} (plugin 'bad-formats')" in err and "None" not in (
        capsys.readouterr().out
    )
