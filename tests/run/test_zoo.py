"""The base-model zoo: ``pruning-suite base train | import | list`` and pretrained weights.

Each test gets its own empty base-model cache and torch hub folder. The digits protocol (embedded
data, seconds to train) stands in for any protocol; pretrained weights are tested through a copy
of it that names a weights file the test writes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from pruning_suite.cli.main import main
from pruning_suite.contract.codedigest import modules_sha256, reached_modules
from pruning_suite.engine.models import build_model
from pruning_suite.errors import CheckpointError, OutputError
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run import basecache, cachekey
from pruning_suite.run.basecache import file_sha256, pretrained_path
from pruning_suite.run.cachekey import base_model_key, import_key
from pruning_suite.run.config import cpu_threads_in_force
from pruning_suite.run.runner import RunConfig, run
from pruning_suite.run.zoo import import_base, list_bases, smoke_recipe, train_base

DIGITS = "digits-convnet"
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _fresh_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRUNING_SUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def _digits_state(seed: int) -> dict[str, torch.Tensor]:
    protocol = load_protocol(DIGITS)
    torch.manual_seed(seed)
    spec = protocol.dataset
    return build_model(protocol.architecture, spec.input_shape, spec.num_classes).state_dict()


def _key(protocol_id: str = DIGITS, smoke: bool = False) -> str:
    protocol = load_protocol(protocol_id)
    recipe = smoke_recipe(protocol.base_model.recipe) if smoke else protocol.base_model.recipe
    with cpu_threads_in_force(CPU):  # as base train and run train
        return base_model_key(protocol, recipe, protocol.dataset.sha256, smoke, CPU)


def _import_key(protocol_id: str = DIGITS) -> str:
    protocol = load_protocol(protocol_id)
    return import_key(protocol, protocol.dataset.sha256)


def test_base_train_caches_what_run_then_uses(tmp_path: Path, capsys) -> None:
    assert main(["base", "train", "--protocol", DIGITS, "--smoke"]) == 0
    out = capsys.readouterr().out
    assert "base epoch 2:" in out and "trained" in out and _key(smoke=True) in out
    again = train_base(DIGITS, smoke=True)
    assert again.source == "cached" and again.key == _key(smoke=True)
    result = run(RunConfig(plugin="l1norm", smoke=True, out=tmp_path / "out"))
    assert result.submission.base_model.source == "cached"
    assert result.submission.base_model.checkpoint_sha256 == again.sha256
    assert result.submission.base_model.dense_test_top1 == again.dense_test_top1


def test_base_import_registers_a_state_dict_that_run_uses(tmp_path: Path, capsys) -> None:
    file = tmp_path / "mine.pt"
    torch.save(_digits_state(seed=5), file)
    assert main(["base", "import", str(file), "--protocol", DIGITS]) == 0
    assert "imported" in capsys.readouterr().out
    (entry,) = [row for row in list_bases() if row.protocol == f"{DIGITS}@1"]
    assert (entry.source, entry.key, entry.sha256) == ("imported", _import_key(), file_sha256(file))
    assert entry.dense_test_top1 is not None and 0 <= entry.dense_test_top1 <= 100

    result = run(RunConfig(plugin="l1norm", out=tmp_path / "out"))  # full budget: finds the import
    base = result.submission.base_model
    assert (base.source, base.checkpoint_sha256) == ("imported", file_sha256(file))
    assert base.dense_test_top1 == entry.dense_test_top1


def test_a_base_model_trained_by_other_training_code_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache entry written by other training code (an older suite, a checkout with edits
    sharing the cache folder) is another key: this code trains its own. An imported base model
    was trained by neither, so it stays the protocol's base model under any training code."""
    ours = train_base(DIGITS, smoke=True)
    monkeypatch.setattr(cachekey, "training_code_sha256", lambda: "0" * 64)
    other = train_base(DIGITS, smoke=True)
    assert (ours.source, other.source) == ("trained", "trained")
    assert other.key != ours.key and other.key == _key(smoke=True)
    file = tmp_path / "mine.pt"
    torch.save(_digits_state(seed=5), file)
    import_base(file, DIGITS)
    monkeypatch.setattr(cachekey, "training_code_sha256", lambda: "1" * 64)
    result = run(RunConfig(plugin="l1norm", out=tmp_path / "out"))
    assert result.submission.base_model.source == "imported"
    assert result.submission.base_model.checkpoint_sha256 == file_sha256(file)


def test_the_training_code_digest_covers_the_training_path_only() -> None:
    """The digest is over the loop, architectures, data pipeline and cache, and not over the
    pruning stage, rules or records: editing those keeps every cached base model."""
    starts = [importlib.import_module(f"pruning_suite.{m}") for m in cachekey.TRAINING_MODULES]
    names = {
        m.__name__.removeprefix("pruning_suite.") for m in reached_modules(starts, "pruning_suite")
    }
    assert {"engine.train", "engine.nets", "engine.resume", "data.splits", "data.idx",
            "run.basecache"} <= names  # fmt: skip
    assert not {"run.stages", "run.pruning_loop", "engine.surgery", "record.submission"} & names
    assert not any(name.startswith(("rules", "methods", "validate")) for name in names)
    assert cachekey.training_code_sha256() == modules_sha256(
        reached_modules(starts, "pruning_suite")
    )


def test_import_refuses_a_pickled_module(tmp_path: Path, capsys) -> None:
    file = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), file)
    assert main(["base", "import", str(file), "--protocol", DIGITS]) == 2
    err = capsys.readouterr().err
    assert "pickles Python objects (torch.nn.modules.linear.Linear; e.g. a whole nn.Module" in err
    assert "torch.save(model.state_dict(), FILE)" in err
    assert not list((tmp_path / "cache").rglob("*.pt"))


def test_import_refuses_another_architecture(tmp_path: Path) -> None:
    file = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(64, 10).state_dict(), file)
    with pytest.raises(CheckpointError) as info:
        import_base(file, DIGITS)
    assert "does not fit protocol 'digits-convnet'" in info.value.message
    assert "Missing key(s)" in info.value.message


def test_import_does_not_overwrite_without_replace(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(_digits_state(1), first)
    torch.save({"state_dict": _digits_state(2)}, second)  # the common wrapper is accepted
    import_base(first, DIGITS)
    with pytest.raises(CheckpointError, match="already has a cached base model"):
        import_base(second, DIGITS)
    assert import_base(second, DIGITS, replace=True).sha256 == file_sha256(second)


def test_import_of_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        import_base(tmp_path / "absent.pt", DIGITS)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        import_base(tmp_path / "junk.pt", DIGITS)


# ----------------------------------------------------------------------------------------------
# Pretrained weights named by a protocol


def _pretrained_copy(tmp_path: Path, sha256: str) -> str:
    """digits-convnet, renamed, starting from the weights file 'digits-convnet-test.pth'."""
    text = (
        Path(basecache.__file__).parents[1] / "protocol" / "files" / f"{DIGITS}.toml"
    ).read_text()
    text = text.replace(f'id = "{DIGITS}"', 'id = "digits-pretrained"')
    text = text.replace(
        "[base_model]\nseed = 0\n",
        "[base_model]\nseed = 0\n\n[base_model.pretrained]\n"
        f'file_name = "digits-convnet-test.pth"\nsha256 = "{sha256}"\n',
    )
    path = tmp_path / "digits-pretrained.toml"
    path.write_text(text)
    return str(path)


def _hub_weights(tmp_path: Path) -> Path:
    path = tmp_path / "torch" / "hub" / "checkpoints" / "digits-convnet-test.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_digits_state(seed=3), path)
    return path


def test_pretrained_weights_come_from_torch_hub_verified(tmp_path: Path) -> None:
    weights = _hub_weights(tmp_path)
    sha = file_sha256(weights)
    protocol = load_protocol(_pretrained_copy(tmp_path, sha[:8]))  # a prefix, as torchvision's
    assert pretrained_path(protocol.base_model.pretrained) == weights
    row = train_base(str(tmp_path / "digits-pretrained.toml"), smoke=True)
    assert (row.source, row.sha256, row.key) == ("pretrained", sha, "-")
    result = run(
        RunConfig(
            plugin="l1norm",
            protocol=str(tmp_path / "digits-pretrained.toml"),
            smoke=True,
            out=tmp_path / "o",
        )
    )
    assert result.submission.base_model.source == "pretrained"
    assert result.submission.base_model.dense_test_top1 == row.dense_test_top1
    assert result.submission.timings.base_model == 0


def test_pretrained_weights_with_another_sha256_are_refused(tmp_path: Path) -> None:
    _hub_weights(tmp_path)
    path = _pretrained_copy(tmp_path, "0123abcd")
    with pytest.raises(CheckpointError, match="expects 0123abcd"):
        train_base(path)
    with pytest.raises(CheckpointError, match="expects 0123abcd"):
        import_base(tmp_path / "torch" / "hub" / "checkpoints" / "digits-convnet-test.pth", path)


def test_missing_pretrained_weights_say_how_to_get_them(tmp_path: Path, capsys) -> None:
    path = _pretrained_copy(tmp_path, "0123abcd")
    assert main(["base", "train", "--protocol", path]) == 2
    err = capsys.readouterr().err
    assert "found neither in torch's hub cache" in err
    assert "pruning-suite base import FILE --protocol digits-pretrained" in err


def test_missing_torchvision_weights_name_torchvisions_download(capsys) -> None:
    """The shipped ResNet-50 protocol: the hint gives torchvision's call that downloads them."""
    protocol = load_protocol("imagenet-resnet50")
    model = build_model(protocol.architecture, (3, 32, 32), 1000)
    with pytest.raises(CheckpointError) as info:
        basecache._load_pretrained(model, protocol, "0" * 64)
    assert "resnet50-0676ba61.pth (ResNet50_Weights.IMAGENET1K_V1)" in info.value.message
    assert "get_weight('ResNet50_Weights.IMAGENET1K_V1').get_state_dict()" in info.value.hint


def test_base_list_shows_cache_and_pretrained_weights(tmp_path: Path, capsys) -> None:
    file = tmp_path / "mine.pt"
    torch.save(_digits_state(seed=5), file)
    import_base(file, DIGITS)
    assert main(["base", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    imported = [r for r in rows if r["source"] == "imported"]
    assert [(r["protocol"], r["key"], r["sha256"]) for r in imported] == [
        (f"{DIGITS}@1", _import_key(), file_sha256(file))
    ]
    (resnet,) = [r for r in rows if r["protocol"].startswith("imagenet-resnet50@")]
    assert resnet["source"] == "pretrained" and resnet["sha256"] is None
    assert resnet["note"].startswith("missing (expected sha256 0676ba61...): put resnet50-")
    assert main(["base", "list"]) == 0
    table = capsys.readouterr().out
    assert "imported" in table and file_sha256(file)[:16] in table


def test_dense_accuracy_of_a_trained_base_is_recorded() -> None:
    row = train_base(DIGITS, smoke=True)
    (entry,) = basecache.list_cache()
    assert (entry.source, entry.smoke, entry.key) == ("trained", True, _key(smoke=True))
    assert (entry.dense_val_top1, entry.dense_test_top1) == (
        row.dense_val_top1,
        row.dense_test_top1,
    )


# ----------------------------------------------------------------------------------------------
# base train --force


def test_base_train_force_trains_again_and_replaces_the_entry(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Without --force a cached base model is only loaded; with it, the entry is deleted under
    the base model's own lock (the one obtain_base_model takes) and trained again."""
    first = train_base(DIGITS, smoke=True)
    meta_path = first.checkpoint.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "dense_val_top1": 1.0}))  # marks the old entry
    assert train_base(DIGITS, smoke=True).source == "cached"
    locks: list[Path] = []
    held = basecache.exclusive  # base_lock's, taken by --force and by obtain_base_model
    monkeypatch.setattr(
        basecache, "exclusive", lambda path, what: locks.append(path) or held(path, what)
    )
    assert main(["base", "train", "--protocol", DIGITS, "--smoke", "--force", "--quiet"]) == 0
    assert "trained" in capsys.readouterr().out
    assert locks == [basecache.work_dir() / f"base-{first.key}.lock"] * 2
    (entry,) = basecache.list_cache()
    assert (entry.key, entry.source, entry.smoke) == (first.key, "trained", True)
    assert entry.dense_val_top1 == first.dense_val_top1 != 1.0


def test_base_train_force_says_what_it_cannot_remove() -> None:
    first = train_base(DIGITS, smoke=True)
    meta_path = first.checkpoint.with_suffix(".json")
    meta_path.unlink()
    meta_path.mkdir()  # a folder where the entry's metadata belongs
    with pytest.raises(OutputError, match=f"cannot remove {meta_path} from the base-model cache"):
        train_base(DIGITS, smoke=True, force=True)


def test_base_train_force_leaves_imported_and_pretrained_weights_alone(tmp_path: Path) -> None:
    file = tmp_path / "mine.pt"
    torch.save(_digits_state(seed=5), file)
    import_base(file, DIGITS)
    with pytest.raises(CheckpointError, match="imported base model .* --force does not retrain"):
        train_base(DIGITS, force=True)
    assert [entry.source for entry in basecache.list_cache()] == ["imported"]
    with pytest.raises(CheckpointError, match="published weights: there is nothing to retrain"):
        train_base(_pretrained_copy(tmp_path, "0123abcd"), force=True)
