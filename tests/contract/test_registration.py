"""The register_* hooks, plugin by plugin: a plugin that raises, registers a malformed entry or a
name registered already is listed as broken, by name, and every other plugin and command works."""

from __future__ import annotations

import json

import pytest

from pruning_suite import hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.contract.registry import Registry
from pruning_suite.data.source import DatasetSource
from pruning_suite.errors import PluginError
from pruning_suite.report.formats import ReportFormat
from pruning_suite.studies import Study
from tests.entry_points import add_entry_points, module_plugin


def _read(data_dir=None):
    raise AssertionError("never read")


def _source(name: str) -> DatasetSource:
    return DatasetSource(name, 1, False, read=_read)


def _render(tables) -> str:
    return "x\n"


class _Raising:
    @hookimpl
    def register_datasets(self):
        raise RuntimeError("cannot reach\nthe dataset server")


class _Blobs:
    @hookimpl
    def register_datasets(self):
        return {"blobs": _source("blobs")}


class _Hello(Study):
    name = "hello"

    def arms(self, args, base, protocol, seeds):
        return []


def _plugin(hook: str, result: object) -> object:
    """A plugin object whose hook ``hook`` returns ``result``."""
    return type("P", (), {hook: hookimpl(lambda self: result)})()


def test_a_register_hook_that_raises_breaks_only_its_plugin(monkeypatch, capsys) -> None:
    from pruning_suite.cli.main import main

    registry = load_registry(extra_plugins=(_Raising(), _Blobs()))
    assert {"digits", "blobs"} <= set(registry.datasets)
    ((name, why),) = registry.broken.items()
    assert why == "register_datasets raised RuntimeError: cannot reach the dataset server"
    raising = module_plugin(monkeypatch, "boom_plugin", register_datasets=hookimpl(_boom))
    add_entry_points(monkeypatch, boom=raising)
    assert main(["protocols"]) == 0  # every command but the broken plugin's datasets works
    assert main(["plugins"]) == 0
    err = capsys.readouterr().err
    assert "broken plugin 'boom': register_datasets raised RuntimeError" in err


@pytest.mark.parametrize("hook", ["register_studies", "register_report_formats", "register_rules"])
def test_every_register_hook_that_raises_is_listed(hook) -> None:
    def boom(self):
        raise ValueError("no")

    registry = load_registry(extra_plugins=(type("P", (), {hook: hookimpl(boom)})(),))
    registry.registry(hook.removeprefix("register_"))
    assert list(registry.broken.values()) == [f"{hook} raised ValueError: no"]


def test_a_duplicate_name_breaks_the_second_plugin_and_names_both(monkeypatch) -> None:
    first = module_plugin(monkeypatch, "first_ds", register_datasets=hookimpl(lambda: {"blobs": _source("blobs")}))  # fmt: skip
    second = module_plugin(monkeypatch, "second_ds", register_datasets=hookimpl(lambda: {"blobs": _source("blobs")}))  # fmt: skip
    add_entry_points(monkeypatch, first=first, second=second)
    registry = load_registry()
    assert registry.datasets.origin("blobs") == "first"
    why = registry.broken["second"]
    assert "registers the dataset 'blobs', which plugin 'first' (entry point first_ds)" in why
    assert "registers already; this plugin (entry point second_ds) is skipped" in why
    assert "first" not in registry.broken


def test_a_name_the_suite_registers_breaks_the_plugin_not_the_suite() -> None:
    dup = type("Dup", (_Hello,), {"name": "lr-sweep"})()
    registry = load_registry(extra_plugins=(_plugin("register_studies", {"lr-sweep": dup}),))
    assert registry.studies.origin("lr-sweep") == "pruning_suite.studies.builtin"
    (why,) = registry.broken.values()
    assert (
        "the study 'lr-sweep', which plugin 'pruning_suite.studies.builtin' (pruning-suite's own)"
        in why
    )


def test_registry_duplicate_error_names_both_plugins_and_reads_well() -> None:
    studies: Registry[object] = Registry("study")
    studies.add("x", 1, origin="a")
    with pytest.raises(
        PluginError, match="plugin 'b' and plugin 'a' both register a study named 'x'"
    ):
        studies.add("x", 2, origin="b")
    with pytest.raises(PluginError, match="an architecture was registered under ''"):
        Registry("architecture").add("", 1)
    assert load_registry().studies.unknown("nope").message == "unknown study 'nope'"


@pytest.mark.parametrize(
    ("hook", "result", "message"),
    [
        (
            "register_report_formats",
            {"../../etc": ReportFormat("../../etc", "x", _render)},
            "returned the name '../../etc'; a report format name is up to 64 lower-case letters, digits, '-'",
        ),  # fmt: skip
        (
            "register_report_formats",
            {"tsv": ReportFormat("tsv2", "x", _render)},
            "returned an object named 'tsv2' under the name 'tsv'; the two must be equal",
        ),  # fmt: skip
        (
            "register_report_formats",
            {"tsv": "render"},
            "returned 'render' for 'tsv', not a ReportFormat",
        ),  # fmt: skip
        ("register_studies", {"hello": 42}, "returned 42 for 'hello', not a Study"),
        ("register_studies", {"--plugin": _Hello()}, "returned the name '--plugin'"),
        ("register_studies", [_Hello()], "returned list, not a dict of names to objects"),
        (
            "register_datasets",
            {"blobs": _source("blobz")},
            "a DatasetSource named 'blobz' under the name 'blobs'",
        ),  # fmt: skip
        ("register_architectures", {"Big Net": print}, "returned the name 'Big Net'"),
        ("register_architectures", {"net": 3}, "returned 3 for 'net', not a builder"),
        ("register_protocol_folders", {"mine": 3}, "returned 3 for 'mine', not a folder"),
    ],
)
def test_malformed_entries_break_their_plugin_with_one_line(hook, result, message) -> None:
    registry = load_registry(extra_plugins=(_plugin(hook, result),))
    kind = hook.removeprefix("register_")
    assert len(registry.registry(kind)) > 0  # the suite's own are still there
    (why,) = registry.broken.values()
    assert why.startswith(hook) and message in why and "\n" not in why


def test_an_unknown_dataset_names_the_plugins_that_failed() -> None:
    from pruning_suite.data.datasets import dataset_source
    from pruning_suite.errors import ProtocolError

    registry = load_registry(extra_plugins=(_Raising(),))
    with pytest.raises(ProtocolError) as info:
        dataset_source("blobs", registry.datasets)
    assert "plugins that failed to load, one may provide it: '" in info.value.hint


def test_an_unknown_architecture_in_a_run_names_the_plugins_that_failed(
    monkeypatch, capsys, tmp_path
) -> None:
    from importlib import resources

    from pruning_suite.cli.main import main

    raising = module_plugin(monkeypatch, "boom_arch", register_architectures=hookimpl(_boom))
    add_entry_points(monkeypatch, **{"boom-arch": raising})
    shipped = resources.files("pruning_suite.protocol.files") / "digits-convnet.toml"
    protocol = tmp_path / "digits-boom.toml"
    text = shipped.read_text().replace('id = "digits-convnet"', 'id = "digits-boom"')
    protocol.write_text(text.replace('name = "digits_convnet"', 'name = "boom_net"'))
    assert main(["prune", "--plugin", "l1norm", "--protocol", str(protocol)]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture 'boom_net'" in err
    assert "plugins that failed to load, one may provide it: 'boom-arch'" in err


def _boom():
    raise RuntimeError("no torch here")


def test_plugins_lists_what_every_plugin_registers(monkeypatch, capsys) -> None:
    from pruning_suite.cli.main import main

    blobs = module_plugin(monkeypatch, "blobs_plugin", register_datasets=hookimpl(lambda: {"blobs": _source("blobs")}))  # fmt: skip
    add_entry_points(monkeypatch, blobs=blobs)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.index("method") < out.index("registers")  # the method table comes first
    for line in ("datasets          blobs", "studies           lr-sweep, scratch, cross-recipe"):
        assert line in out
    assert "report formats    github, latex, html, csv" in out
    assert main(["plugins", "--json"]) == 0
    registered = json.loads(capsys.readouterr().out)["registered"]
    assert registered["blobs"]["datasets"] == ["blobs"]
    assert registered["pruning_suite.engine.builtin"]["architectures"] is None
    assert "R-MEAS-1" in registered["pruning_suite.rules.builtin"]["rules"]


def test_a_missing_protocol_folder_breaks_only_its_plugin(monkeypatch, tmp_path) -> None:
    from pruning_suite.protocol.catalogue import load_protocol

    plugin = module_plugin(
        monkeypatch,
        "gone_folder_plugin",
        register_protocol_folders=hookimpl(lambda: {"gone": tmp_path / "nowhere"}),
    )
    add_entry_points(monkeypatch, gone=plugin)
    registry = load_registry()
    assert "gone" not in registry.protocol_folders
    assert "the protocol folder 'gone'" in registry.broken["gone"]
    assert "which is not a folder" in registry.broken["gone"]
    assert load_protocol("digits-convnet").id == "digits-convnet"  # the suite's own still load
