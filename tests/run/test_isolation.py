"""Method code runs in the pruning stage's own process (issue 14): it cannot rewrite the
evaluation, a hang is stopped by the protocol's time limit, a crash is a clear error, and only
plain data comes back."""

from __future__ import annotations

import io
import json
import os
import pickle
import time
from dataclasses import replace

import pytest
import torch

from pruning_suite import PruningMethod, hookimpl
from pruning_suite.contract.plugins import load_registry
from pruning_suite.errors import PluginError
from pruning_suite.protocol.builtin import shipped_folder
from pruning_suite.run import isolation, stages
from pruning_suite.run.runner import RunConfig, run
from tests.helpers import l1_scores


class _RewritesEvaluate(PruningMethod):
    """The attack of issue 14: score() makes every evaluation report 100%."""

    name = "rewrites-evaluate"
    version = "1"

    def score(self, ctx):
        import pruning_suite.engine.train as train_module
        import pruning_suite.run.stages as stages_module

        train_module.evaluate = stages_module.evaluate = lambda *args, **kwargs: 100.0
        return l1_scores(ctx)


class _Hangs(PruningMethod):
    name = "hangs"
    version = "1"

    def score(self, ctx):
        time.sleep(3600)


class _ExitsHard(_Hangs):
    name = "exits-hard"

    def score(self, ctx):
        os._exit(7)


_PROBE = "PRUNING_SUITE_TEST_PROBE"


class _LooksForTestData(PruningMethod):
    """score() writes the size of every data split its process holds to the file ``$PROBE``."""

    name = "looks-for-test-data"
    version = "1"

    def score(self, ctx):
        import gc

        from pruning_suite.data.splits import Split

        splits = [obj for obj in gc.get_objects() if type(obj) is Split]
        sizes = sorted({len(s) for s in splits})
        stored = sorted({s.images.untyped_storage().nbytes() for s in splits if len(s) == 0})
        with open(os.environ[_PROBE], "a") as probe:
            probe.write(json.dumps({"sizes": sizes, "empty_storage_bytes": stored}) + "\n")
        return l1_scores(ctx)


class _AsksForTestAccuracy(PruningMethod):
    """After every stage epoch, asks the runner to evaluate weights of its own choosing."""

    name = "asks-for-test-accuracy"
    version = "1"

    def score(self, ctx):
        return l1_scores(ctx)

    def on_pruning_epoch_end(self, ctx, model):
        import gc
        from multiprocessing.connection import Connection

        (conn,) = [obj for obj in gc.get_objects() if type(obj) is Connection]
        isolation._send(conn, "evaluate", {k: v.clone() for k, v in model.state_dict().items()})
        conn.recv_bytes()


class _ForgesItsResult(PruningMethod):
    """Rewrites the stage's final message: claims a trained stage and sends its own weights."""

    name = "forges-its-result"
    version = "1"

    def score(self, ctx):
        from multiprocessing.connection import Connection

        send = Connection.send_bytes

        def forged(conn, data, *args):
            kind, body = torch.load(io.BytesIO(data), weights_only=True)
            if kind == "done":
                body["record"]["epochs"] = 1
                body["state_dict"] = {
                    k: torch.zeros_like(v) for k, v in ctx.model.state_dict().items()
                }
                buffer = io.BytesIO()
                torch.save((kind, body), buffer)
                data = buffer.getvalue()
            return send(conn, data, *args)

        Connection.send_bytes = forged
        return l1_scores(ctx)


class _Provider:
    @hookimpl
    def register_methods(self):
        return [
            _RewritesEvaluate,
            _Hangs,
            _ExitsHard,
            _LooksForTestData,
            _AsksForTestAccuracy,
            _ForgesItsResult,
        ]


@pytest.fixture
def hostile():
    return load_registry(extra_plugins=(_Provider(),))


def test_a_method_that_rewrites_evaluate_does_not_change_the_result(tmp_path, hostile) -> None:
    original = stages.evaluate
    result = run(RunConfig(plugin="rewrites-evaluate", smoke=True, out=tmp_path), hostile)
    assert stages.evaluate is original  # the runner's process never ran the method's code
    honest = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path), load_registry())
    final, reference = result.submission.final, honest.submission.final
    assert final.test_top1 < 100.0
    assert final.test_top1 == reference.test_top1  # same scores as l1norm: same model
    before = final.pruned_test_top1_before_retraining
    assert before == reference.pruned_test_top1_before_retraining


def _protocol_with_time_limit(tmp_path, seconds: float):
    text = (shipped_folder() / "digits-convnet.toml").read_text()
    text = text.replace('id = "digits-convnet"', 'id = "digits-convnet-limited"')
    path = tmp_path / "limited.toml"
    path.write_text(f"{text}\n[pruning_budget]\ntime_limit_s = {seconds}\n")
    return path


def test_a_method_that_hangs_is_stopped_at_the_protocols_time_limit(tmp_path, hostile) -> None:
    protocol = _protocol_with_time_limit(tmp_path, 5)
    with pytest.raises(PluginError, match=r"ran over its time limit of 5 s") as caught:
        run(RunConfig(plugin="hangs", protocol=str(protocol), smoke=True, out=tmp_path), hostile)
    assert "pruning_budget.time_limit_s" in caught.value.hint
    assert not list(tmp_path.rglob("*.json"))  # no submission


def test_a_method_that_kills_its_process_is_a_clear_error(tmp_path, hostile) -> None:
    with pytest.raises(PluginError, match=r"process died \(exit code 7\)"):
        run(RunConfig(plugin="exits-hard", smoke=True, out=tmp_path), hostile)


def test_a_method_class_defined_in_a_function_is_refused_with_a_hint(tmp_path) -> None:
    class Local(PruningMethod):
        name = "local-method"
        version = "1"

        def score(self, ctx):
            return l1_scores(ctx)

    class Provider:
        @hookimpl
        def register_methods(self):
            return [Local]

    registry = load_registry(extra_plugins=(Provider(),))
    with pytest.raises(PluginError, match="own process") as caught:
        run(RunConfig(plugin="local-method", smoke=True, out=tmp_path), registry)
    assert "top level of an importable module" in caught.value.hint


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_only_plain_data_comes_back_from_the_stage() -> None:
    with pytest.raises(PluginError, match="not plain data"):
        isolation._message(pickle.dumps(("done", _Payload()), protocol=2))
    buffer = io.BytesIO()
    torch.save(("done", {"scores": torch.zeros(3)}), buffer)
    kind, body = isolation._message(buffer.getvalue())
    assert kind == "done" and torch.equal(body["scores"], torch.zeros(3))


def test_the_time_limit_is_a_bounded_protocol_field() -> None:
    from pydantic import ValidationError

    from pruning_suite.protocol.sections import PruningBudget

    assert PruningBudget().time_limit_s == 3600.0
    for bad in (0, -1, 1e12):
        with pytest.raises(ValidationError):
            PruningBudget(time_limit_s=bad)


def test_in_process_runs_give_the_same_bits_for_debugging(tmp_path) -> None:
    isolated = run(RunConfig(plugin="fpgm", protocol="digits-convnet-s4", smoke=True, out=tmp_path))
    here = run(
        RunConfig(
            plugin="fpgm",
            protocol="digits-convnet-s4",
            smoke=True,
            out=tmp_path / "here",
            isolate=False,
        )
    )
    assert here.submission.evidence == isolated.submission.evidence
    assert here.submission.pruning_stage == isolated.submission.pruning_stage


def test_the_stage_process_holds_no_validation_or_test_example(
    tmp_path, hostile, monkeypatch
) -> None:
    """A method's process holds the training split alone; the runner evaluates the stage's epochs
    (digits-convnet-s4 trains in its pruning stage), and the log is the one-process log."""
    probe = tmp_path / "probe.txt"
    monkeypatch.setenv(_PROBE, str(probe))
    config = RunConfig(plugin="looks-for-test-data", protocol="digits-convnet-s4", smoke=True)
    result = run(replace(config, out=tmp_path / "a"), hostile)
    (line,) = probe.read_text().splitlines()  # one round
    seen = json.loads(line)
    empty, train = seen["sizes"]
    assert empty == 0 and train > result.submission.final.test_examples  # val and test emptied
    assert seen["empty_storage_bytes"] == [0]  # fresh storage, not a [:0] view of the split
    probe.unlink()
    here = run(replace(config, out=tmp_path / "b", isolate=False), hostile)
    assert len(json.loads(probe.read_text())["sizes"]) == 3  # in one process: train, val, test
    log = result.submission.pruning_stage.log
    assert log and log == here.submission.pruning_stage.log  # the runner's figures, same bits
    assert all(row.test_top1 > 0 for row in log)


def test_a_method_cannot_ask_the_runner_for_more_evaluations(tmp_path, hostile) -> None:
    config = RunConfig(plugin="asks-for-test-accuracy", protocol="digits-convnet-s4", smoke=True)
    with pytest.raises(PluginError, match="more epoch evaluations|other rounds or accuracies"):
        run(replace(config, out=tmp_path), hostile)
    assert not list(tmp_path.rglob("*.json"))


def test_a_forged_stage_result_is_refused_and_sends_no_weights(tmp_path, hostile) -> None:
    """A one-shot stage (0 epochs, the runner's own count) takes back no weights; a result that
    claims otherwise is refused."""
    with pytest.raises(PluginError, match="other rounds or accuracies"):
        run(RunConfig(plugin="forges-its-result", smoke=True, out=tmp_path), hostile)
    assert not list(tmp_path.rglob("*.json"))
