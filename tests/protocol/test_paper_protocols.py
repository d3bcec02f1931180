"""The paper's benchmarks as shipped protocols: recipes, targets, references, and a smoke run of each
on small files written in its dataset's real on-disk layout.

The ImageNet protocols are smoke-tested through test-only copies that change only what a CPU test
cannot afford (32x32 inputs instead of 224x224, a handful of images, 10 classes for ImageNet-1k)
and, for ResNet-50, the sha256 of the pretrained weights: the test writes a weights file under
torchvision's file name into a temporary torch hub cache. Everything else (dataset code path,
torchvision architecture, targets, recipes) is the shipped file's.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pruning_suite.cli.main import main
from pruning_suite.data import datasets as data
from pruning_suite.data import imagefolder
from pruning_suite.data.datasets import CIFAR_LAYOUTS, IDX_FILES
from pruning_suite.data.imagefolder import read_class_list
from pruning_suite.engine.models import build_model
from pruning_suite.protocol.spec import load_protocol
from pruning_suite.run.basecache import file_sha256
from pruning_suite.run.cachekey import base_model_key
from pruning_suite.run.preview import preview_pruning
from pruning_suite.run.runner import RunConfig, run

PAPER = {
    "mnist-mlp7-linear": "mnist-mlp7-linear-lr1e-3",
    "fashion-mnist-mlp7-linear": "fashion-mnist-mlp7-linear-lr1e-3",
    "cifar10-resnet56": "cifar10-resnet56-lr1e-3",
    "cifar100-vgg19": "cifar100-vgg19-lr1e-3",
    "imagenet100-resnet34": "imagenet100-resnet34-lr1e-3",
    "imagenet-resnet50": None,
}
"""The paper's benchmarks: LR 0.01 arm -> LR 0.001 arm (ResNet-50 / ImageNet has one arm)."""
BEST_EPOCH = "best-epoch test accuracy, population std"


def test_protocols_lists_the_five_paper_benchmarks(capsys: pytest.CaptureFixture) -> None:
    assert main(["protocols"]) == 0
    listed = capsys.readouterr().out
    for arm, other in PAPER.items():
        assert re.search(rf"^{re.escape(arm)}\s", listed, re.M)
        assert other is None or re.search(rf"^{re.escape(other)}\s", listed, re.M)


@pytest.mark.parametrize(("arm", "other"), [(a, o) for a, o in PAPER.items() if o])
def test_lr_arms_differ_only_in_the_retraining_lr_and_share_the_base_model(
    arm: str, other: str
) -> None:
    first, second = load_protocol(arm), load_protocol(other)
    assert first.retraining.stages[0][1] == 0.01 and second.retraining.stages[0][1] == 0.001
    same = {"id", "version", "title", "description", "references", "retraining"}
    assert first.model_dump(exclude=same) == second.model_dump(exclude=same)
    assert first.retraining.model_dump(exclude={"lr_schedule"}) == second.retraining.model_dump(
        exclude={"lr_schedule"}
    )
    key = [
        base_model_key(p, p.base_model.recipe, "0" * 64, False, torch.device("cpu"))
        for p in (first, second)
    ]
    assert key[0] == key[1]


def test_recipes_are_papers() -> None:
    """arXiv 2301.05219, 'Recipes and reference results'."""
    expect = {
        "cifar10-resnet56": (
            "0:0.1,100:0.01,150:0.001",
            200,
            128,
            5e-4,
            "0:0.01,60:0.001,90:0.0001",
            120,
        ),
        "cifar10-resnet56-lr1e-3": (None, None, 128, 5e-4, "0:0.001,80:0.0001", 120),
        "cifar100-vgg19": (
            "0:0.1,100:0.01,150:0.001",
            200,
            256,
            5e-4,
            "0:0.01,60:0.001,90:0.0001",
            120,
        ),
        "cifar100-vgg19-lr1e-3": (None, None, 256, 5e-4, "0:0.001,80:0.0001", 120),
        "imagenet-resnet50": (None, None, 256, 1e-4, "0:0.01,30:0.001,60:0.0001,75:0.00001", 90),
        "imagenet100-resnet34": (
            "0:0.1,30:0.01,60:0.001,90:1e-4,105:1e-5",
            120,
            256,
            1e-4,
            None,
            90,
        ),
        "mnist-mlp7-linear": (None, None, 100, 1e-4, "0:0.01,30:0.001,60:0.0001", 90),
        "mnist-mlp7-linear-lr1e-3": (None, None, 100, 1e-4, "0:0.001,45:0.0001", 90),
    }
    for pid, (base_lr, base_epochs, batch, wd, lr, epochs) in expect.items():
        p = load_protocol(pid)
        assert base_lr in (None, p.base_model.recipe.lr_schedule), pid
        assert base_epochs in (None, p.base_model.recipe.epochs), pid
        assert (p.retraining.batch_size, p.retraining.weight_decay, p.retraining.epochs) == (
            batch,
            wd,
            epochs,
        ), pid
        assert lr in (None, p.retraining.lr_schedule), pid
    mlp = load_protocol("mnist-mlp7-linear")
    assert (mlp.dataset.input_shape, mlp.dataset.mean, mlp.dataset.std) == (
        (1, 32, 32),
        (0.1307,),
        (0.3081,),
    )


def test_imagenet_protocols_use_torchvisions_transforms_and_weights() -> None:
    r50, r34 = load_protocol("imagenet-resnet50"), load_protocol("imagenet100-resnet34")
    for p in (r50, r34):
        assert p.dataset.input_shape == (3, 224, 224) and p.dataset.eval_resize == 256
        assert (p.dataset.mean, p.dataset.std) == (
            imagefolder.IMAGENET_MEAN,
            imagefolder.IMAGENET_STD,
        )
        assert p.retraining.augmentation.horizontal_flip
        assert p.retraining.augmentation.random_crop_padding == 0  # RandomResizedCrop instead
    weights = r50.base_model.pretrained
    assert weights is not None and weights.file_name == "resnet50-0676ba61.pth"
    assert weights.sha256 == "0676ba61" and weights.top1 == 76.13  # the prefix in the file name
    assert (
        r34.base_model.pretrained is None
    )  # trained from scratch on ImageNet-100 (Wang et al., arXiv 2301.05219)
    assert r34.dataset.class_list == "imagenet100-classes-v1.txt"
    assert len(read_class_list(r34.dataset.class_list)) == r34.dataset.num_classes == 100


def test_cifar_references_are_best_epoch_with_population_std() -> None:
    for pid in (
        "cifar10-resnet56",
        "cifar10-resnet56-lr1e-3",
        "cifar100-vgg19",
        "cifar100-vgg19-lr1e-3",
    ):
        pruned = [r for r in load_protocol(pid).references if r.method != "dense"]
        assert pruned and all(r.statistic == BEST_EPOCH for r in pruned)
        targets = {t.id for t in load_protocol(pid).targets}
        assert {r.target for r in pruned} == targets


def test_table7_references_by_sparsity() -> None:
    """Table 7 (Wang et al., arXiv 2301.05219), rows L1 LR 0.01 / L1 LR 0.001 / scratch, matched on sparsity."""
    rows = {
        "cifar100-vgg19": (74.01, 73.01, 71.49, 66.05),
        "cifar100-vgg19-lr1e-3": (73.67, 72.04, 70.21, 64.72),
    }
    for pid, l1 in rows.items():
        refs = load_protocol(pid).references
        by = {(r.method, r.sparsity): r.top1 for r in refs}
        sparsity = (0.1924, 0.5101, 0.7487, 0.9098)
        assert [by["l1norm", s] for s in sparsity] == list(l1)
        assert [by["scratch", s] for s in sparsity] == [72.84, 71.88, 70.79, 66.52]


@pytest.mark.parametrize("target", ["l1-10", "l1-70"])
def test_vgg19_targets_achieve_table7_sparsity(target: str) -> None:
    """The ratios 0.1 .. 0.7 reproduce Table 7's printed sparsities to the last digit.

    The extremes only, to keep the test short; `pruning-suite prune` shows l1-30 and l1-50 give
    51.01% and 74.87%, as printed.
    """
    p = load_protocol("cifar100-vgg19")
    result = preview_pruning("cifar100-vgg19", "l1norm", target, 0, {}, Path("/nonexistent"))
    (ref,) = [r for r in p.references if r.method == "l1norm" and r.target == target]
    assert round(result.sparsity, 4) == ref.sparsity
    assert result.dense.params == 20_081_188


def test_resnet50_target_achieves_table1_speedup() -> None:
    result = preview_pruning("imagenet-resnet50", "l1norm", "speedup-2.31x", 0, {}, Path("/none"))
    assert result.dense.macs == 4_089_184_256
    assert round(result.speedup, 2) == 2.31


# ----------------------------------------------------------------------------------------------
# Smoke runs on small files in each real layout


def _write_idx(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """MNIST's four IDX files (plain, torchvision's raw/ folder)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, n in zip(IDX_FILES, (n_train, n_train, n_test, n_test), strict=True):
        if "images" in stem:
            body = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, 28, 28)
        else:
            body = rng.integers(0, 10, n, dtype=np.uint8)
            header = struct.pack(">BBBBI", 0, 0, 0x08, 1, n)
        (folder / stem).write_bytes(header + body.tobytes())


def _write_cifar(root: Path, name: str, n_train: int, n_test: int) -> None:
    """torchvision's pickled CIFAR batches, ``n_train`` training images in all."""
    layout = CIFAR_LAYOUTS[name]
    rng = np.random.default_rng(0)
    classes = 10 if name == "cifar10" else 100
    per_file = -(-n_train // len(layout.train_files))
    for file in (*layout.train_files, *layout.test_files):
        n = n_test if file in layout.test_files else per_file
        entry = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            layout.label_key.encode(): [int(v) for v in rng.integers(0, classes, n)],
        }
        path = root / layout.folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(entry))


def _write_folder(root: Path, classes: tuple[str, ...], train: int, val: int) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for cls in classes:
            for i in range(n):
                path = root / split / cls / f"{cls}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                size = (rng.integers(20, 48), rng.integers(20, 48), 3)
                Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)


def _test_copy(protocol_id: str, folder: Path, replace: dict[str, str]) -> Path:
    """The shipped protocol file with a new id and the given line replacements, nothing else."""
    text = (
        Path(imagefolder.__file__).parents[1] / "protocol" / "files" / f"{protocol_id}.toml"
    ).read_text()
    text = text.replace(f'id = "{protocol_id}"', f'id = "test-{protocol_id}"', 1)
    for old, new in replace.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / f"test-{protocol_id}.toml"
    path.write_text(text)
    return path


def _smoke(protocol: str, data_dir: Path, out: Path) -> None:
    result = run(
        RunConfig(plugin="l1norm", protocol=protocol, data_dir=data_dir, out=out, smoke=True)
    )
    sub = result.submission
    assert sub.smoke and not sub.rankable
    assert len(sub.retraining) == 2  # the smoke budget: 2 epochs
    assert sub.pruning.sparsity > 0
    assert result.path.is_file()


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv(imagefolder.WORKERS_ENV, "0")


@pytest.mark.parametrize("protocol", ["mnist-mlp7-linear", "mnist-mlp7-linear-lr1e-3"])
def test_mnist_protocols_smoke(protocol: str, tmp_path: Path, no_env: None) -> None:
    _write_idx(tmp_path / "MNIST" / "raw", n_train=5_040, n_test=50)  # 40 left to train on
    _smoke(protocol, tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    "protocol",
    ["cifar10-resnet56", "cifar10-resnet56-lr1e-3", "cifar100-vgg19", "cifar100-vgg19-lr1e-3"],
)
def test_cifar_protocols_smoke(protocol: str, tmp_path: Path, no_env: None) -> None:
    _write_cifar(tmp_path, load_protocol(protocol).dataset.name, n_train=5_040, n_test=50)
    _smoke(protocol, tmp_path, tmp_path / "out")


@pytest.mark.parametrize("protocol", ["imagenet100-resnet34", "imagenet100-resnet34-lr1e-3"])
def test_imagenet100_protocols_smoke(protocol: str, tmp_path: Path, no_env: None) -> None:
    """All 100 classes of the committed list, two training and one validation image each."""
    _write_folder(tmp_path / "imagenet100", read_class_list("imagenet100-classes-v1.txt"), 2, 1)
    shrink = {
        "input_shape = [3, 224, 224]": "input_shape = [3, 32, 32]",
        "eval_resize = 256": "eval_resize = 36",
        "val_size = 5000": "val_size = 10",
    }
    _smoke(str(_test_copy(protocol, tmp_path, shrink)), tmp_path, tmp_path / "out")


def test_imagenet_resnet50_smoke_from_pretrained_weights(
    tmp_path: Path, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights read from TORCH_HOME under torchvision's file name, sha256-verified, strictly loaded."""
    classes = tuple(f"n{i:08d}" for i in range(10))
    _write_folder(tmp_path / "imagenet", classes, 3, 1)
    protocol = load_protocol("imagenet-resnet50")
    torch.manual_seed(0)
    model = build_model(protocol.architecture, (3, 32, 32), len(classes))
    weights = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    weights.parent.mkdir(parents=True)
    torch.save(model.state_dict(), weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    sha = file_sha256(weights)
    shrink = {
        "input_shape = [3, 224, 224]": "input_shape = [3, 32, 32]",
        "eval_resize = 256": "eval_resize = 36",
        "val_size = 10000": "val_size = 4",
        "num_classes = 1000": f"num_classes = {len(classes)}",
        'sha256 = "0676ba61"': f'sha256 = "{sha}"',
    }
    path = _test_copy("imagenet-resnet50", tmp_path, shrink)
    result = run(
        RunConfig(
            plugin="l1norm", protocol=str(path), data_dir=tmp_path, out=tmp_path / "o", smoke=True
        )
    )
    base = result.submission.base_model
    assert (base.source, base.checkpoint_sha256) == ("pretrained", sha)
    assert result.submission.pruning.speedup > 1.5


def test_fashion_mnist_mlp7_linear_lr1e3_runs_on_the_real_data(tmp_path: Path) -> None:
    """The LR 0.001 arm on real Fashion-MNIST (Debian's dataset-fashion-mnist), smoke budget."""
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        if os.environ.get("PRUNING_SUITE_REQUIRE_FMNIST") == "1":
            pytest.fail("Fashion-MNIST is required here: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not installed: apt-get install dataset-fashion-mnist")
    result = run(
        RunConfig(
            plugin="l1norm", protocol="fashion-mnist-mlp7-linear-lr1e-3", smoke=True, out=tmp_path
        )
    )
    assert (
        result.submission.protocol.dataset_sha256
        == load_protocol("fashion-mnist-mlp7-linear-lr1e-3").dataset.sha256
    )
    assert [row.lr for row in result.submission.retraining] == [0.001, 0.001]
