"""The plugin kernel: entry-point discovery, the hookspecs, and clear errors for bad plugins."""

from __future__ import annotations

import pytest

from pruning_suite import PruningMethod, hookimpl
from pruning_suite.contract import hookspecs
from pruning_suite.contract.plugins import get_plugin_manager, load_registry
from pruning_suite.errors import PluginError


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
    """datasette's meta-test: a hook without a test_hook_<name> test fails the suite."""
    import inspect

    names = [
        n
        for n, f in vars(hookspecs).items()
        if inspect.isfunction(f) and hasattr(f, "pruning_suite_spec")
    ]
    assert names, "no hookspecs found"
    tested = {n for n in globals() if n.startswith("test_hook_")}
    import tests.test_runner as runner_tests

    tested |= {n for n in vars(runner_tests) if n.startswith("test_hook_")}
    missing = [n for n in names if f"test_hook_{n}" not in tested]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_hook_register_methods(registry) -> None:
    hook_results = registry.manager.hook.register_methods()
    flat = {cls.name for result in hook_results for cls in result}
    assert {"l1norm", "random"} <= flat
