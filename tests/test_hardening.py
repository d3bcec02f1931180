"""Bad input found by adversarial testing: each gets a clear error, and nothing computed is lost."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch
from torch import nn

from pruning_suite import PruningMethod, hookimpl
from pruning_suite.cli.main import main
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import (
    OutputError,
    PluginError,
    ProtocolError,
    PruningSuiteError,
    TrainingError,
)
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run.basecache import cache_dir
from pruning_suite.run.runner import RunConfig, run

DEFAULT_TOML = (resources.files("pruning_suite.protocol.files") / "digits-convnet.toml").read_text()


def _method(name: str, score=None, ratios=None) -> type[PruningMethod]:
    def default_score(self, ctx):
        return {
            layer.name: torch.arange(layer.num_units, dtype=torch.float32) for layer in ctx.layers
        }

    attrs = {"name": name, "version": "1", "score": score or default_score}
    if ratios is not None:
        attrs["layer_ratios"] = ratios
    return type(name.title(), (PruningMethod,), attrs)


def _registry(*classes):
    class Provider:
        @hookimpl
        def register_methods(self):
            return list(classes)

    return load_registry(extra_plugins=(Provider(),))


def test_R_PROTO_2_protocol_file_may_not_shadow_a_shipped_protocol(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(DEFAULT_TOML.replace("epochs = 20", "epochs = 60"))
    with pytest.raises(ProtocolError, match="reuses the id and version of the shipped protocol"):
        load_protocol(str(path))
    path.write_text(DEFAULT_TOML)  # an identical copy is fine
    assert load_protocol(str(path)).content_hash == load_protocol(None).content_hash


@pytest.mark.parametrize(
    ("score", "ratios", "message"),
    [
        (lambda self, ctx: None, None, "score() returned NoneType"),
        (lambda self, ctx: [torch.zeros(16)], None, "score() returned list"),
        (
            lambda self, ctx: {"conv1": "abc"},
            None,
            "scores for layer 'conv1' are not a real-valued tensor",
        ),
        (lambda self, ctx: {"conv1": torch.zeros(16, device="meta")}, None, "'conv1'"),
        (None, lambda self, ctx: None, "layer_ratios() returned NoneType"),
        (None, lambda self, ctx: {"conv1": "abc"}, "ratio for layer 'conv1' is 'abc'"),
        (None, lambda self, ctx: {"conv1": 0.5 + 0j}, "not a number"),
        (lambda self, ctx: exec("import sys; sys.exit(0)"), None, "raised SystemExit in score()"),
    ],
)
def test_malformed_plugin_returns_are_plugin_errors(tmp_path, score, ratios, message) -> None:
    registry = _registry(_method("odd", score, ratios))
    with pytest.raises(PluginError) as info:
        run(RunConfig(plugin="odd", smoke=True, out=tmp_path, isolate=False), registry)
    assert message in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def _swap(self, ctx):
    ctx.model.relu = nn.Tanh()
    return {layer.name: torch.arange(layer.num_units, dtype=torch.float32) for layer in ctx.layers}


def _hook(self, ctx):
    ctx.model.fc1.register_forward_hook(lambda module, inputs, output: output * 0.5)
    return {layer.name: torch.arange(layer.num_units, dtype=torch.float32) for layer in ctx.layers}


@pytest.mark.parametrize("score", [_swap, _hook])
def test_R_PRUNE_4_methods_score_a_copy_and_changes_are_caught(tmp_path, score) -> None:
    registry = _registry(_method("sneaky", score))
    with pytest.raises(PluginError, match="modified the model"):
        run(RunConfig(plugin="sneaky", smoke=True, out=tmp_path, isolate=False), registry)


class _BrokenObserver:
    @hookimpl
    def on_epoch_end(self, phase, row):
        raise RuntimeError("observer bug")


def test_a_raising_observer_does_not_abort_the_run(tmp_path) -> None:
    registry = load_registry(extra_plugins=(_BrokenObserver(),))
    with pytest.warns(RuntimeWarning, match="observer bug"):
        result = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path), registry)
    assert result.path.is_file()


def test_register_methods_returning_a_non_list_is_listed_as_broken() -> None:
    class Five:
        @hookimpl
        def register_methods(self):
            return 5

    registry = load_registry(extra_plugins=(Five(),))
    assert any("returned int" in why for why in registry.broken.values())
    assert "l1norm" in registry.methods


def test_R_TRAIN_1_diverging_training_is_an_error_and_nothing_is_cached(tmp_path) -> None:
    path = tmp_path / "diverge.toml"
    text = DEFAULT_TOML.replace('id = "digits-convnet"', 'id = "digits-diverge"')
    path.write_text(text.replace('lr_schedule = "0:0.05,20:0.005"', 'lr_schedule = "0:1e10"'))
    cached_before = (
        set((cache_dir() / "base").glob("*")) if (cache_dir() / "base").exists() else set()
    )
    with pytest.raises(TrainingError, match="training diverged"):
        run(RunConfig(plugin="l1norm", protocol=str(path), smoke=True, out=tmp_path / "out"))
    assert set((cache_dir() / "base").glob("*")) == cached_before
    assert not list((tmp_path / "out").rglob("*.json"))


@pytest.mark.parametrize("seed", [-1, 2**63, 10**20])
def test_seeds_out_of_range_are_refused(tmp_path, seed) -> None:
    with pytest.raises(PruningSuiteError, match="seed"):
        run(RunConfig(plugin="l1norm", seed=seed, out=tmp_path))


def test_cli_refuses_negative_seed(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--plugin", "l1norm", "--seed", "-1", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "seed must be in [0, 2**63)" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["meta", "mps", "nonsense"])
def test_unsupported_devices_are_refused_before_anything_is_written(tmp_path, device) -> None:
    with pytest.raises(PruningSuiteError, match="device"):
        run(RunConfig(plugin="l1norm", device=device, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_directory_where_the_submission_goes_fails_before_training(tmp_path) -> None:
    from pruning_suite.run.runner import plan_run

    run_id = plan_run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path)).run_id
    (tmp_path / "digits-convnet" / "l1norm" / f"{run_id}.json").mkdir(parents=True)
    with pytest.raises(OutputError, match="is not a file"):
        run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path))


def test_a_corrupt_cache_entry_is_retrained_not_trusted(tmp_path) -> None:
    from pruning_suite.run.cachekey import base_model_key
    from pruning_suite.run.config import cpu_threads_in_force
    from pruning_suite.run.runner import SMOKE_MAX_EPOCHS

    first = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path))
    protocol = load_protocol(None)
    recipe = protocol.base_model.recipe.model_copy(update={"epochs": SMOKE_MAX_EPOCHS})
    with cpu_threads_in_force(torch.device("cpu")):
        key = base_model_key(protocol, recipe, protocol.dataset.sha256, True, torch.device("cpu"))
    meta = cache_dir() / "base" / f"{key}.json"
    assert meta.is_file()
    meta.write_text("null")
    again = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path))
    assert again.submission.base_model.source == "trained"
    assert again.submission.final == first.submission.final
    assert (
        json.loads(meta.read_text())["checkpoint_sha256"]
        == again.submission.base_model.checkpoint_sha256
    )


def test_config_nested_too_deeply(tmp_path, capsys) -> None:
    assert main(["run", "--plugin", "l1norm", "--config", "[" * 60000, "--out", str(tmp_path)]) == 2
    assert "nested too deeply" in capsys.readouterr().err
