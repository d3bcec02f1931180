"""The main job end to end on real data: run, submission, determinism, hooks, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pruning_suite import PruningMethod, hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import DatasetError, OutputError, PluginError, ProtocolError
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.validate import validate_file

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _volatile(data: dict) -> dict:
    """The submission without what legitimately differs between identical runs."""
    data = json.loads(json.dumps(data))
    for key in ("created", "timings", "latency"):  # wall-clock measurements
        data.pop(key, None)
    data["base_model"].pop("source")
    data["suite"].pop("git_commit")  # provenance: a commit may land between the two runs
    return data


def test_run_writes_a_valid_submission_where_the_layout_says(default_runs) -> None:
    result = default_runs["l1norm"]
    sub = result.submission
    assert result.path == default_runs["out"] / "digits-convnet" / "l1norm" / f"{sub.run_id}.json"
    assert validate_file(result.path) == []
    assert sub.protocol.id == "digits-convnet" and sub.method.name == "l1norm"
    assert sub.rankable and not sub.smoke


def test_R_PRUNE_1_run_measures_the_default_target(default_runs) -> None:
    """uniform-50 on conv1 16, conv2 32, fc1 64: ceil(0.5 n) removed, params and MACs by hand."""
    p = default_runs["l1norm"].submission.pruning
    assert [(layer.name, layer.before, layer.after) for layer in p.layers] == [
        ("conv1", 16, 8),
        ("conv2", 32, 16),
        ("fc1", 64, 32),
    ]
    # conv1 1->16 3x3 + bn, conv2 16->32 3x3 + bn, fc1 512->64, fc 64->10 (all with bias)
    dense = (16 * 9 + 16) + 2 * 16 + (32 * 16 * 9 + 32) + 2 * 32 + (512 * 64 + 64) + (64 * 10 + 10)
    pruned = (8 * 9 + 8) + 2 * 8 + (16 * 8 * 9 + 16) + 2 * 16 + (256 * 32 + 32) + (32 * 10 + 10)
    assert (p.params_dense, p.params_pruned) == (dense, pruned)
    macs_dense = 64 * 16 * 9 + 64 * 32 * 16 * 9 + 512 * 64 + 64 * 10
    macs_pruned = 64 * 8 * 9 + 64 * 16 * 8 * 9 + 256 * 32 + 32 * 10
    assert (p.macs_dense, p.macs_pruned) == (macs_dense, macs_pruned)
    assert p.flops_pruned == 2 * p.macs_pruned
    assert p.speedup == pytest.approx(macs_dense / macs_pruned)
    assert p.sparsity == pytest.approx(1 - pruned / dense)


def test_reported_accuracy_is_the_final_epoch(default_runs) -> None:
    sub = default_runs["l1norm"].submission
    assert len(sub.retraining) == 20
    assert sub.final.test_top1 == sub.retraining[-1].test_top1
    assert sub.final.delta_top1 == pytest.approx(
        sub.final.test_top1 - sub.base_model.dense_test_top1
    )
    assert [row.lr for row in sub.retraining] == [0.01] * 10 + [0.001] * 10
    assert sub.final.test_top1 > 90.0, "a retrained 50% digits ConvNet should classify digits"


def test_R_BASE_1_methods_share_the_base_model(default_runs) -> None:
    l1, rnd = default_runs["l1norm"].submission, default_runs["random"].submission
    assert l1.base_model.checkpoint_sha256 == rnd.base_model.checkpoint_sha256
    assert rnd.base_model.source == "cached"
    assert [layer.after for layer in l1.pruning.layers] == [
        layer.after for layer in rnd.pruning.layers
    ]


def test_same_seed_gives_identical_numbers(default_runs, tmp_path) -> None:
    again = run(RunConfig(plugin="l1norm", out=tmp_path))
    first = default_runs["l1norm"]
    assert again.submission.run_id == first.submission.run_id
    assert _volatile(again.submission.model_dump()) == _volatile(first.submission.model_dump())
    assert not again.kept_stored  # a new folder: written


def test_a_rerun_that_reproduces_the_stored_file_keeps_it(default_runs, tmp_path) -> None:
    """A committed result stays byte for byte what it was when a rerun only reproduces it (its
    created time and latency are the first run's); a stored file it does not reproduce is
    replaced."""
    stored = tmp_path / default_runs["l1norm"].path.relative_to(default_runs["out"])
    stored.parent.mkdir(parents=True)
    original = default_runs["l1norm"].path.read_bytes()
    stored.write_bytes(original)
    again = run(RunConfig(plugin="l1norm", out=tmp_path))
    assert again.kept_stored and again.path == stored
    assert stored.read_bytes() == original
    edited = json.loads(original)
    edited["final"]["test_top1"] = 99.0
    stored.write_text(json.dumps(edited))
    third = run(RunConfig(plugin="l1norm", out=tmp_path))
    assert not third.kept_stored
    assert json.loads(stored.read_text())["final"]["test_top1"] == third.submission.final.test_top1


def test_random_depends_on_the_seed(default_runs, tmp_path) -> None:
    other = run(RunConfig(plugin="random", seed=1, out=tmp_path, smoke=True))
    assert other.submission.run_id != default_runs["random"].submission.run_id


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    @hookimpl
    def on_run_start(self, run):
        self.events.append(("start", run["method"], run["seed"]))

    @hookimpl
    def on_stage(self, stage):
        self.events.append(("stage", stage))

    @hookimpl
    def on_phase_start(self, phase, epochs):
        self.events.append(("phase", phase, epochs))

    @hookimpl
    def on_epoch_end(self, phase, row):
        self.events.append(("epoch", phase, row["epoch"]))

    @hookimpl
    def on_run_end(self, submission, path):
        self.events.append(("end", submission["run_id"], Path(path).exists()))

    @hookimpl
    def on_batches(self, phase, done, total):
        self.events.append(("batches", phase, done, total))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[_Recorder, object]:
    recorder = _Recorder()
    registry = load_registry(extra_plugins=(recorder,))
    result = run(
        RunConfig(plugin="l1norm", seed=3, smoke=True, out=tmp_path_factory.mktemp("hooks")),
        registry,
    )
    return recorder, result


def test_hook_on_run_start(recorded) -> None:
    recorder, _ = recorded
    assert recorder.events[0] == ("start", "l1norm", 3)


def test_hook_on_epoch_end(recorded) -> None:
    recorder, result = recorded
    retrain = [e for e in recorder.events if e[:2] == ("epoch", "retraining")]
    assert [e[2] for e in retrain] == list(range(len(result.submission.retraining)))


def test_hook_on_batches(tmp_path, monkeypatch) -> None:
    """Within an epoch, the batches trained so far (throttled to once a second; here every
    batch, the throttle at 0 s), for base training and retraining."""
    import pruning_suite.engine.train as train_module

    monkeypatch.setattr(train_module, "BATCH_REPORT_S", 0.0)
    recorder = _Recorder()
    registry = load_registry(extra_plugins=(recorder,))
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))  # base trained here
    run(RunConfig(plugin="l1norm", seed=5, smoke=True, out=tmp_path), registry)
    for phase in ("base", "retraining"):
        reports = [e[2:] for e in recorder.events if e[:2] == ("batches", phase)]
        per_epoch = reports[0][1]
        assert per_epoch == 20  # the smoke budget's batches per epoch
        epochs = [e for e in recorder.events if e[:2] == ("epoch", phase)]
        assert reports == [(done, 20) for _ in epochs for done in range(20)]


def test_hook_on_stage(recorded) -> None:
    recorder, _ = recorded
    stages = [e[1] for e in recorder.events if e[0] == "stage"]
    assert stages == [
        "data",
        "base model",
        "pruning",
        "measure",
        "re-initialize",
        "retraining",
        "evaluation",
        "save model",
        "assembly",
        "write",
    ]


def test_hook_on_phase_start(recorded) -> None:
    recorder, result = recorded
    starts = [e for e in recorder.events if e[0] == "phase"]
    assert starts[-1] == ("phase", "retraining", len(result.submission.retraining))
    at = recorder.events.index(starts[-1])
    assert recorder.events[at + 1] == ("epoch", "retraining", 0)


def test_a_run_observer_is_a_plugin_for_the_run_only(tmp_path) -> None:
    """The progress display's base class hears the run through the hooks, then is unregistered."""
    from pruning_suite.run.runner import RunObserver

    class Seen(RunObserver):
        def __init__(self) -> None:
            self.seen: list[tuple] = []

        def stage(self, name):
            self.seen.append(("stage", name))

        def phase_start(self, phase, epochs):
            self.seen.append(("phase", phase, epochs))

        def epoch_end(self, phase, row):
            self.seen.append(("epoch", phase, row.epoch, row.lr))

    registry = load_registry()
    observer = Seen()
    result = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path), registry, observer)
    assert observer.seen[0] == ("stage", "data")
    epochs = [e for e in observer.seen if e[:2] == ("epoch", "retraining")]
    assert [(e[2], e[3]) for e in epochs] == [(r.epoch, r.lr) for r in result.submission.retraining]
    assert not registry.manager.is_registered(observer)


def test_hook_on_run_end(recorded) -> None:
    recorder, result = recorded
    assert recorder.events[-1] == ("end", result.submission.run_id, True)


def test_smoke_runs_are_marked_not_rankable(recorded) -> None:
    _, result = recorded
    sub = result.submission
    assert sub.smoke and not sub.rankable
    assert len(sub.retraining) == 2
    assert validate_file(result.path) == []


class _Crashing(PruningMethod):
    name = "crashing"
    version = "1"

    def score(self, ctx):
        raise ZeroDivisionError("division by zero in my criterion")


class _Mutating(PruningMethod):
    name = "mutating"
    version = "1"

    def score(self, ctx):
        import torch

        with torch.no_grad():
            ctx.layers[0].module.weight.zero_()
        return {
            layer.name: torch.arange(layer.num_units, dtype=torch.float32) for layer in ctx.layers
        }


class _BadScores(PruningMethod):
    name = "badscores"
    version = "1"

    def score(self, ctx):
        import torch

        return {layer.name: torch.zeros(3) for layer in ctx.layers}


class _Provider:
    @hookimpl
    def register_methods(self):
        return [_Crashing, _Mutating, _BadScores]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ("crashing", "plugin 'crashing' raised ZeroDivisionError in score()"),
        ("mutating", "plugin 'mutating' modified the model"),
        ("badscores", "conv1"),
    ],
)
def test_misbehaving_plugins_get_a_clear_error_and_write_nothing(tmp_path, plugin, message) -> None:
    registry = load_registry(extra_plugins=(_Provider(),))
    with pytest.raises(PluginError) as info:
        run(RunConfig(plugin=plugin, smoke=True, out=tmp_path), registry)
    assert message in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def test_unwritable_output_fails_before_any_training(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError) as info:
        run(RunConfig(plugin="l1norm", out=blocker / "sub"))
    assert "--out" in info.value.hint


def test_unknown_target_and_protocol(tmp_path) -> None:
    with pytest.raises(ProtocolError, match="no target 'uniform-55'"):
        run(RunConfig(plugin="l1norm", target="uniform-55", out=tmp_path))
    with pytest.raises(ProtocolError, match="unknown protocol"):
        run(RunConfig(plugin="l1norm", protocol="cifar-99", out=tmp_path))


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch) -> None:
    import pruning_suite.data.datasets as data

    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", {}, raising=False)
    monkeypatch.delenv("PRUNING_SUITE_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as info:
        run(
            RunConfig(
                plugin="l1norm", protocol="fashion-mnist-lenet5", data_dir=empty, out=tmp_path
            )
        )
    assert "apt-get install dataset-fashion-mnist" in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def _require_fmnist() -> None:
    if not FMNIST.exists():
        if os.environ.get("PRUNING_SUITE_REQUIRE_FMNIST") == "1":
            pytest.fail("Fashion-MNIST is required here: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")


@pytest.mark.parametrize("protocol", ["fashion-mnist-lenet5", "fashion-mnist-mlp7-linear"])
def test_fashion_mnist_protocols_run_on_the_real_60k_10k_data(tmp_path, protocol) -> None:
    """Reduced budget (smoke: 2 epochs of 20 batches per phase), so marked not rankable."""
    _require_fmnist()
    result = run(RunConfig(plugin="l1norm", protocol=protocol, smoke=True, out=tmp_path))
    sub = result.submission
    assert (
        sub.protocol.dataset_sha256
        == "028c7a574bf9c7f86776f147157a9889d4db6d8b20ecdd074f497c8156f73515"
    )
    assert not sub.rankable
    assert validate_file(result.path) == []
    # 40 batches of SGD per phase: well above chance (10%), far below a full run.
    assert sub.base_model.dense_test_top1 > 25.0
    assert sub.final.test_top1 > 15.0
    if protocol.endswith("mlp7-linear"):
        assert [(layer.before, layer.after) for layer in sub.pruning.layers] == [(100, 20)] * 6


def test_the_scratch_regime_is_the_scratch_baseline_file(tmp_path) -> None:
    """Scratch is a training regime of the run; ``--plugin scratch`` stays its file format."""
    by_regime = run(RunConfig(plugin="l1norm", regime="scratch", smoke=True, out=tmp_path / "a"))
    by_plugin = run(
        RunConfig(
            plugin="scratch",
            method_config={"arch_from": "l1norm", "setup": "SX-B"},
            smoke=True,
            out=tmp_path / "b",
        )
    )
    assert by_regime.path.parent.name == "scratch"
    assert by_regime.submission.run_id == by_plugin.submission.run_id
    assert by_regime.submission.scratch is not None and by_regime.submission.scratch.setup == "SX-B"
    assert _volatile(by_regime.submission.model_dump()) == _volatile(
        by_plugin.submission.model_dump()
    )


def test_a_scratch_method_cannot_run_under_the_prune_regime(tmp_path) -> None:
    with pytest.raises(PluginError, match="cannot run under regime 'prune'"):
        run(RunConfig(plugin="scratch", regime="prune", smoke=True, out=tmp_path))
    assert not any(tmp_path.iterdir())


def test_a_run_records_what_decided_its_cpu_arithmetic(default_runs) -> None:
    env = default_runs["l1norm"].submission.environment
    assert env.device == "cpu" and env.cpu_numerics is not None
    assert env.cpu_numerics.startswith("ATen ") and "MKL_CBWR=" in env.cpu_numerics
