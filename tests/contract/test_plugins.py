"""The plugin kernel: entry-point discovery, the hookspecs, and clear errors for bad plugins."""

from __future__ import annotations

import pytest

from pruning_suite import PruningMethod, hookimpl
from pruning_suite.contract import hookspecs
from pruning_suite.contract.plugins import get_plugin_manager, load_registry
from pruning_suite.errors import PluginError
from tests import tiny_plugin
from tests.entry_points import add_entry_points, module_plugin


def test_builtin_methods_register_through_entry_points(registry) -> None:
    assert {"l1norm", "random"} <= set(registry.methods)
    for name in ("l1norm", "random"):
        info = registry.methods[name]
        assert info.name == name
        assert info.distribution.startswith("pruning-suite ")
    assert registry.broken == {}


def test_no_manager_is_built_at_import_time() -> None:
    import pruning_suite.contract.plugins as plugins

    assert not any(
        isinstance(v, __import__("pluggy").PluginManager) for v in vars(plugins).values()
    )
    assert get_plugin_manager() is not get_plugin_manager()


def test_unknown_plugin_says_did_you_mean(registry) -> None:
    with pytest.raises(PluginError) as info:
        registry.method("l1nrom")
    assert "unknown plugin 'l1nrom'" in info.value.message
    assert "did you mean 'l1norm'" in info.value.hint
    assert "random" in info.value.hint


def test_bad_method_config_is_refused(registry) -> None:
    with pytest.raises(PluginError, match="invalid config for plugin 'l1norm'"):
        registry.method("l1norm", {"unknown_option": 1})


class _Good(PruningMethod):
    name = "good"
    version = "1"

    def score(self, ctx):
        return {}


class _DirectPlugin:
    @hookimpl
    def register_methods(self):
        return [_Good, object]


def test_direct_plugin_registration_and_contract_check() -> None:
    registry = load_registry(extra_plugins=(_DirectPlugin(),))
    assert "good" in registry.methods
    assert registry.methods["good"].distribution == "(direct)"
    broken = list(registry.broken.values())
    assert any("not a PruningMethod subclass" in why for why in broken)


class _Raising:
    @hookimpl
    def register_methods(self):
        raise RuntimeError("boom")


def test_plugin_whose_registration_raises_is_listed_as_broken() -> None:
    registry = load_registry(extra_plugins=(_Raising(),))
    assert {"l1norm", "random"} <= set(registry.methods)
    assert any("boom" in why for why in registry.broken.values())


def test_every_hookspec_has_a_test() -> None:
    """datasette's meta-test: a hook without a test_hook_<name> test (in any test_*.py under tests/) fails."""
    import ast
    import inspect
    from pathlib import Path

    names = [
        n
        for n, f in vars(hookspecs).items()
        if inspect.isfunction(f) and hasattr(f, "pruning_suite_spec")
    ]
    assert names, "no hookspecs found"
    tested = {
        node.name
        for path in Path(__file__).parents[1].rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_hook_")
    }
    missing = [n for n in names if f"test_hook_{n}" not in tested]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_hook_register_methods(registry) -> None:
    hook_results = registry.manager.hook.register_methods()
    flat = {cls.name for result in hook_results for cls in result}
    assert {"l1norm", "random"} <= flat


# --------------------------------------------------------------------------- bad plugins


def _misspelled_register_method() -> list[type[PruningMethod]]:
    return [_Good]


def test_misspelled_hook_is_refused_naming_the_hook_and_the_plugin(monkeypatch, capsys) -> None:
    hooks = {"register_method": hookimpl(_misspelled_register_method)}
    add_entry_points(monkeypatch, hrank=module_plugin(monkeypatch, "hrank_plugin", **hooks))
    registry = load_registry()
    why = registry.broken["hrank"]
    assert "unknown hook 'register_method'" in why
    assert "did you mean 'register_methods'?" in why
    assert {"l1norm", "random"} <= set(registry.methods)  # the others still load
    with pytest.raises(PluginError, match="plugin 'hrank' is installed but failed to load"):
        registry.method("hrank")
    from pruning_suite.cli.main import main

    assert main(["plugins"]) == 0
    assert "broken plugin 'hrank': implements the unknown hook 'register_method'" in (
        capsys.readouterr().err
    )


def test_misspelled_hook_of_a_directly_registered_plugin_is_refused() -> None:
    class Direct:
        @hookimpl
        def register_datasetz(self) -> dict[str, object]:
            return {}

    registry = load_registry(extra_plugins=(Direct(),))
    (why,) = registry.broken.values()
    assert "'register_datasetz' (did you mean 'register_datasets'?)" in why
    assert registry.datasets.names()  # the built-in sources are still there


class HRank:
    """What a new user writes: a plugin class, named by the entry point."""

    @hookimpl
    def register_methods(self) -> list[type[PruningMethod]]:
        return [_Good]


def test_entry_point_naming_a_class_gets_a_clear_error(monkeypatch) -> None:
    add_entry_points(monkeypatch, hrank="tests.contract.test_plugins:HRank")
    registry = load_registry()
    why = registry.broken["hrank"]
    assert "resolves to the class HRank, not a plugin module" in why
    assert "as module-level @hookimpl functions, without self" in why
    assert "(register_methods)" in why  # the class's own hooks
    assert "point at the module that holds them" in why
    assert "'hrank = \"tests.contract.test_plugins\"'" in why
    assert "hrank" not in registry.methods and "good" not in registry.methods


def test_entry_point_that_cannot_be_imported_is_listed_as_broken(monkeypatch) -> None:
    add_entry_points(monkeypatch, nope="no_such_module_anywhere")
    registry = load_registry()
    assert "ModuleNotFoundError" in registry.broken["nope"]
    assert {"l1norm", "random"} <= set(registry.methods)


# --------------------------------------------------------------------------- registration hooks


def test_hook_register_protocol_folders(monkeypatch, capsys, tmp_path) -> None:
    from pruning_suite.cli.main import main
    from pruning_suite.protocol.catalogue import load_protocol, protocol_files

    add_entry_points(monkeypatch, tiny="tests.tiny_plugin")
    folders = load_registry().protocol_folders
    assert folders.names() == ["pruning-suite", "tiny-plugin"]
    assert protocol_files()[tiny_plugin.PROTOCOL].folder == "tiny-plugin"
    assert load_protocol(tiny_plugin.PROTOCOL).dataset.name == tiny_plugin.DATASET
    assert main(["protocols"]) == 0
    assert tiny_plugin.PROTOCOL in capsys.readouterr().out
    assert main(["protocols", "show", tiny_plugin.PROTOCOL]) == 0
    assert "tiny-digits" in capsys.readouterr().out


def _protocol_copy(folder, protocol_id: str, source: str = "digits-convnet", title: str = ""):
    """``folder/<protocol_id>.toml``: the shipped ``source`` protocol under another id (and
    title, so its content differs)."""
    from pathlib import Path

    from pruning_suite.protocol import builtin

    text = (Path(str(builtin.shipped_folder())) / f"{source}.toml").read_text()
    text = text.replace(f'id = "{source}"', f'id = "{protocol_id}"', 1)
    if title:
        text = text.replace('title = "', f'title = "{title}: ', 1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{protocol_id}.toml").write_text(text)


def _folders_plugin(monkeypatch, name: str, folders: dict) -> None:
    """Install plugin ``name`` registering the protocol ``folders`` (name -> path)."""
    plugin = module_plugin(monkeypatch, f"{name}_plugin", register_protocol_folders=hookimpl(
        lambda: folders))  # fmt: skip
    add_entry_points(monkeypatch, **{name: plugin})


def test_a_plugin_cannot_redefine_a_shipped_protocol_id(monkeypatch, capsys, tmp_path) -> None:
    """A plugin folder holding ``digits-convnet.toml`` (the default id) leaves the default
    working: the shipped protocol wins, the plugin's file is left out and named once."""
    from pruning_suite.cli.main import main
    from pruning_suite.protocol import catalogue

    shipped = catalogue.shipped_latest("digits-convnet")
    (tmp_path / "digits-convnet.toml").write_text("id = 'digits-convnet'\nversion = 1\n")
    _folders_plugin(monkeypatch, "copycat", {"copycat": tmp_path})

    assert catalogue.load_protocol(None).content_hash == shipped.content_hash
    assert catalogue.load_protocol("digits-convnet").content_hash == shipped.content_hash
    assert catalogue.protocol_files()["digits-convnet"].folder == "pruning-suite"
    assert catalogue.registered_protocol("digits-convnet", 1) == shipped
    (problem,) = catalogue.catalogue_problems()
    assert problem.startswith(
        f"protocol file {tmp_path / 'digits-convnet.toml'} of folder 'copycat' reuses the "
        "shipped protocol id 'digits-convnet'; shipped ids cannot be redefined"
    )
    assert "rename the file and the id it declares" in problem
    assert main(["protocols"]) == 0
    captured = capsys.readouterr()
    assert "digits-convnet (default)" in captured.out
    assert captured.err == f"left out: {problem}\n"


def test_protocol_ids_are_unique_across_plugin_folders(monkeypatch, tmp_path) -> None:
    from pruning_suite.errors import ProtocolError
    from pruning_suite.protocol import catalogue

    _protocol_copy(tmp_path / "a", "twin")
    _protocol_copy(tmp_path / "b", "twin", title="the other twin")
    _folders_plugin(monkeypatch, "copycat", {"first": tmp_path / "a", "second": tmp_path / "b"})
    with pytest.raises(ProtocolError) as info:
        catalogue.load_protocol("twin")
    assert "protocol id 'twin' is defined twice" in info.value.message
    assert "'first'" in info.value.message and "'second'" in info.value.message
    assert "unique across every registered protocol folder" in info.value.hint
    with pytest.raises(ProtocolError, match="defined twice"):
        catalogue.registered_protocol("twin", 1)
    assert catalogue.any_protocol("twin", 1) is None
    assert catalogue.load_protocol("digits-convnet").id == "digits-convnet"


def test_a_broken_protocol_folder_breaks_only_its_own_protocols(monkeypatch, capsys, tmp_path):
    """Plugin folders with an id clash and a malformed file: every other protocol still lists
    and runs, and 'protocols' names both problems on stderr, one line each."""
    from pruning_suite.cli.main import main
    from pruning_suite.protocol import catalogue

    _protocol_copy(tmp_path / "messy", "twin")
    _protocol_copy(tmp_path / "echo", "twin", title="an echo")
    (tmp_path / "messy" / "half-written.toml").write_text("id = 'half-written'\n[dataset\n")
    folders = {"messy": tmp_path / "messy", "echo": tmp_path / "echo"}
    _folders_plugin(monkeypatch, "messy", folders)

    ids = [protocol.id for protocol in catalogue.list_protocols()]
    assert "digits-convnet" in ids and "cifar10-resnet56" in ids
    assert "twin" not in ids and "half-written" not in ids
    problems = catalogue.catalogue_problems()
    assert len(problems) == 2
    assert "protocol id 'twin' is defined twice" in problems[0]
    assert "half-written.toml" in problems[1]
    assert catalogue.load_protocol("digits-convnet").id == "digits-convnet"
    assert main(["protocols"]) == 0
    captured = capsys.readouterr()
    assert "digits-convnet" in captured.out and "half-written" not in captured.out
    assert captured.err.count("left out: ") == 2
    assert main(["run", "--plugin", "l1norm", "--smoke", "--out", str(tmp_path / "out")]) == 0
    assert main(["run", "--plugin", "l1norm", "--protocol", "twin"]) == 2
    assert "defined twice" in capsys.readouterr().err


def test_left_out_lines_escape_control_characters_of_file_names(monkeypatch, capsys, tmp_path):
    """A protocol file named with a line break or an ANSI escape cannot forge a ``left out:``
    line or clear the terminal; a folder named like a protocol file is named too."""
    from pruning_suite.cli.main import main
    from pruning_suite.protocol import catalogue

    (tmp_path / "evil\nleft out: fake.toml").write_text("id = 'evil'\n[dataset\n")
    (tmp_path / "\x1b[2J.toml").write_text("id = 'x'\n")
    (tmp_path / "y.toml").mkdir()
    _folders_plugin(monkeypatch, "evil", {"evil": tmp_path})

    problems = catalogue.catalogue_problems()
    assert len(problems) == 3
    assert problems[0] == (
        f"protocol folder 'evil' holds {tmp_path / 'y.toml'}, which is not a file "
        "(a protocol is one <id>.toml file: rename or remove it)"
    )
    assert main(["protocols"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 3 and all(line.startswith("left out: ") for line in lines)
    assert "\x1b" not in err and "\\u001b[2J.toml" in err
    assert "evil\\nleft out: fake.toml" in err
    assert lines[0] == f"left out: {problems[0]}"


def test_hook_register_datasets(monkeypatch, tmp_path) -> None:
    import json

    from pruning_suite.cli.main import main
    from pruning_suite.data.datasets import compute_checksum, dataset_source

    add_entry_points(monkeypatch, tiny="tests.tiny_plugin")
    registry = load_registry()
    assert tiny_plugin.DATASET in registry.datasets
    assert {"digits", "mnist", "fashion-mnist", "cifar10", "imagenet100"} <= set(registry.datasets)
    source = dataset_source(tiny_plugin.DATASET)
    assert (source.channels, source.has_official_test, source.is_folder) == (1, False, False)
    assert compute_checksum(tiny_plugin.DATASET) == tiny_plugin.tiny_checksum()
    out = tmp_path / "runs"
    argv = ["run", "--protocol", tiny_plugin.PROTOCOL, "--plugin", "l1norm", "--smoke"]
    assert main([*argv, "--out", str(out)]) == 0
    (path,) = (out / tiny_plugin.PROTOCOL / "l1norm").glob("*.json")
    text = path.read_text(encoding="utf-8")
    assert tiny_plugin.tiny_checksum() in text
    assert json.loads(text)["protocol"]["id"] == tiny_plugin.PROTOCOL


@pytest.mark.parametrize("name", ["../../escaped-method", "Upper", "a/b", "", "-lead"])
def test_a_method_name_that_is_not_a_plain_folder_name_is_refused(name, tmp_path) -> None:
    """Issue 14: a plugin named '../../escaped-method' wrote its submission outside --out."""
    from pruning_suite.run.runner import RunConfig, run

    escaped = type("Escaped", (PruningMethod,), {"name": name, "version": "1", "score": None})

    class Provider:
        @hookimpl
        def register_methods(self):
            return [escaped]

    registry = load_registry(extra_plugins=(Provider(),))
    assert name not in registry.methods
    assert "lower-case letters, digits and '-'" in " ".join(registry.broken.values())
    with pytest.raises(PluginError):
        run(RunConfig(plugin=name or "x", smoke=True, out=tmp_path / "out"), registry)
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("ok-name", "../1", "a version is up to 64"),
        ("ok-name", "1\n2", "a version is up to 64"),
        ("ok-name", "1" * 65, "a version is up to 64"),
        ("x" * 65, "1", "a method name is up to 64"),
    ],
)
def test_versions_and_overlong_names_are_refused_at_registration(name, version, message) -> None:
    cls = type("Odd", (PruningMethod,), {"name": name, "version": version, "score": None})

    class Provider:
        @hookimpl
        def register_methods(self):
            return [cls]

    registry = load_registry(extra_plugins=(Provider(),))
    assert name not in registry.methods
    assert message in " ".join(registry.broken.values())


def test_two_entry_points_naming_one_module_leave_the_second_broken(monkeypatch) -> None:
    add_entry_points(
        monkeypatch,
        **{"zz-twin": "pruning_suite_plugins.l1norm", "zz-twin-2": "pruning_suite_plugins.l1norm"},
    )
    registry = load_registry()  # no traceback: one module registers once
    assert "l1norm" in registry.methods
    (name, why), *_ = [(n, w) for n, w in registry.broken.items() if n.startswith("zz-twin")]
    assert "already registered; give each entry point its own module" in why


def test_validate_and_report_know_a_plugins_protocol_without_a_file(
    monkeypatch, capsys, tmp_path
) -> None:
    """A run under a plugin's protocol is judged under that protocol (its rules and seeds), as a
    shipped one is: no ``--protocol FILE`` needed (the walkthrough of issue 11)."""
    from pruning_suite.cli.main import main
    from pruning_suite.protocol.catalogue import any_protocol, find_protocol, load_protocol

    add_entry_points(monkeypatch, tiny="tests.tiny_plugin")
    protocol = load_protocol(tiny_plugin.PROTOCOL)
    found = find_protocol(protocol.id, protocol.version, protocol.content_hash)
    assert found is not None and found.content_hash == protocol.content_hash
    assert find_protocol(protocol.id, protocol.version, "0" * 64) is None  # other content
    assert any_protocol(protocol.id, protocol.version) == protocol  # its seeds count in report
    args = ["run", "--plugin", "l1norm", "--protocol", tiny_plugin.PROTOCOL, "--smoke"]
    assert main([*args, "--quiet", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["validate", "--strict", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "R-PROTO-1" not in out.out + out.err
