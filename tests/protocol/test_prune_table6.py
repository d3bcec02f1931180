"""cifar10-resnet56 reproduces the headers of Wang et al. 2023, Table 6 (ResNet-56 / CIFAR-10).

``pruning-suite prune`` with L1-norm at the four ratios lands on the sparsity and speedup the
paper prints above each column. Without CIFAR-10 on the machine the method scores synthetic inputs,
which L1-norm does not use; the widths, and so the counts, depend only on the ratios.
"""

from __future__ import annotations

import json
import math

import pytest

from pruning_suite.cli.main import main
from pruning_suite.data import datasets as data
from pruning_suite.protocol.spec import load_protocol

PROTOCOL = "cifar10-resnet56"

TABLE6 = {  # target: (ratio, sparsity in percent, speedup), Wang et al. 2023, Table 6 headers
    "l1-30": (0.3, 31.14, 1.45),
    "l1-50": (0.5, 49.82, 1.99),
    "l1-70": (0.7, 70.57, 3.59),
    "l1-90": (0.9, 90.39, 11.41),
}


@pytest.fixture(autouse=True)
def no_env_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_ENV, raising=False)


@pytest.mark.parametrize("target", TABLE6)
def test_l1norm_hits_table6_sparsity_and_speedup(target: str, capsys) -> None:
    argv = ["prune", "--protocol", PROTOCOL, "--plugin", "l1norm", "--target", target, "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    ratio, sparsity, speedup = TABLE6[target]

    assert abs(100 * result["sparsity"] - sparsity) <= 1.0
    assert result["speedup"] == pytest.approx(speedup, rel=0.02)
    assert result["params_dense"] == 853_018 and result["macs_dense"] == 125_485_696
    layers = result["layers"]
    assert len(layers) == 27 and all(
        layer["name"].startswith("layer") and layer["name"].endswith(".conv1") for layer in layers
    )
    for layer in layers:  # ceil(ratio * n) filters removed from each block's conv1
        assert layer["after"] == layer["before"] - math.ceil(ratio * layer["before"])


def test_protocol_encodes_the_papers_recipe() -> None:
    protocol = load_protocol(PROTOCOL)
    assert protocol.architecture.name == "resnet56"
    assert protocol.architecture.kwargs == {"shortcut": "A"}
    assert protocol.dataset.name == "cifar10" and protocol.dataset.sha256 == "unpinned"
    assert (protocol.dataset.val_size, protocol.seeds) == (5000, 3)
    base, retrain = protocol.base_model.recipe, protocol.retraining
    assert (base.epochs, base.lr_schedule) == (200, "0:0.1,100:0.01,150:0.001")
    assert (retrain.epochs, retrain.lr_schedule) == (120, "0:0.01,60:0.001,90:0.0001")
    for recipe in (base, retrain):
        assert (recipe.batch_size, recipe.weight_decay, recipe.momentum) == (128, 5e-4, 0.9)
        assert recipe.augmentation.random_crop_padding == 4 and recipe.augmentation.horizontal_flip
    assert [t.id for t in protocol.targets] == list(TABLE6) and protocol.default_target == "l1-50"
    for target in protocol.targets:
        assert target.layer_ratios == {"layer*.conv1": TABLE6[target.id][0]}


def test_references_are_table6_rows() -> None:
    refs = {(r.method, r.target): (r.top1, r.std) for r in load_protocol(PROTOCOL).references}
    assert refs[("l1norm", "l1-30")] == (93.79, 0.06)
    assert refs[("l1norm", "l1-90")] == (86.75, 0.31)
    assert refs[("scratch", "l1-50")] == (92.78, 0.23)
    assert refs[("scratch", "l1-90")] == (88.36, 0.20)
    assert refs[("dense", "")] == (93.78, None)  # the paper's dense base model
    assert len(refs) == 9
    for ref in load_protocol(PROTOCOL).references:
        if ref.method == "dense":
            continue
        assert ref.source == "Wang et al. 2023, Table 6"
        assert ref.statistic == "best-epoch test accuracy, population std"
        assert ref.sparsity is not None and ref.speedup is not None
