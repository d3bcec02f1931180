"""The model registry: every model builds, runs, is deterministic, keeps its output layer last."""

from __future__ import annotations

import fnmatch

import pytest
import torch
from torch import nn

from pruning_suite.engine import architectures, models
from pruning_suite.engine.models import MODELS, build_model, register_model
from pruning_suite.errors import ProtocolError
from pruning_suite.protocol.spec import ArchitectureSpec, list_protocols

# One example per registered model: (input_shape, kwargs, output layer name).
EXAMPLES = {
    "digits_convnet": ((1, 8, 8), {}, "fc"),
    "lenet5": ((1, 28, 28), {}, "fc3"),
    "mlp": ((1, 32, 32), {"widths": [100] * 6, "activation": "none"}, "layers.6"),
    "resnet20": ((3, 32, 32), {"shortcut": "A"}, "fc"),
    "resnet56": ((3, 32, 32), {"shortcut": "B"}, "fc"),
    "resnet110": ((3, 32, 32), {}, "fc"),
    "vgg16_bn": ((3, 32, 32), {}, "classifier"),
    "vgg19_bn": ((3, 32, 32), {}, "classifier"),
}


def _build(name: str, seed: int = 0, num_classes: int = 10) -> nn.Module:
    shape, kwargs, _ = EXAMPLES[name]
    torch.manual_seed(seed)
    return build_model(ArchitectureSpec(name=name, kwargs=kwargs), shape, num_classes)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_registered_model_has_an_example() -> None:
    assert set(EXAMPLES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_output_shape(name: str) -> None:
    shape = EXAMPLES[name][0]
    assert _build(name, num_classes=7)(torch.randn(5, *shape)).shape == (5, 7)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_build_is_deterministic_under_manual_seed(name: str) -> None:
    a, b, c = _build(name, seed=1), _build(name, seed=1), _build(name, seed=2)
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), key
    assert any(not torch.equal(x, z) for x, z in zip(a.parameters(), c.parameters(), strict=True))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_output_layer_is_the_last_linear_or_conv(name: str) -> None:
    model = _build(name, num_classes=7)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    last_name, last = layers[-1]
    assert last_name == EXAMPLES[name][2]
    assert isinstance(last, nn.Linear) and last.out_features == 7


def test_param_counts_by_hand() -> None:
    # digits_convnet: conv1 1*16*9+16, bn1 2*16, conv2 16*32*9+32, bn2 2*32,
    # fc1 (32*4*4)*64+64, fc 64*10+10.
    assert _params(_build("digits_convnet")) == 160 + 32 + 4640 + 64 + 32832 + 650 == 38378
    # lenet5: conv1 6*25+6, conv2 16*6*25+16, fc1 400*120+120, fc2 120*84+84, fc3 84*10+10; the
    # padding of conv1 (2 on 28x28, 0 on 32x32) keeps fc1 at 16*5*5 inputs either way.
    lenet = 156 + 2416 + 48120 + 10164 + 850
    assert lenet == 61706
    for shape in ((1, 28, 28), (1, 32, 32)):
        model = build_model(ArchitectureSpec(name="lenet5"), shape, 10)
        assert model.fc1.in_features == 400 and _params(model) == lenet
    # MLP-7-Linear (Wang et al.): 1024-100-100-100-100-100-100-10, biases on.
    assert _params(_build("mlp")) == 1024 * 100 + 100 + 5 * (100 * 100 + 100) + 100 * 10 + 10
    assert _params(_build("mlp")) == 154010


def test_module_names_match_protocol_patterns() -> None:
    names = [n for n, m in _build("digits_convnet").named_modules() if isinstance(m, nn.Conv2d)]
    assert names == ["conv1", "conv2"] == fnmatch.filter(names, "conv*")
    mlp = _build("mlp")
    linear = [n for n, m in mlp.named_modules() if isinstance(m, nn.Linear)]
    assert linear == [f"layers.{i}" for i in range(7)]
    assert [layer.in_features for layer in mlp.layers] == [1024] + [100] * 6


def test_mlp_without_activation_is_affine_and_with_relu_is_not() -> None:
    a, b = torch.randn(3, 1, 32, 32), torch.randn(3, 1, 32, 32)
    linear = _build("mlp")
    affine_gap = linear(a) + linear(b) - linear(torch.zeros_like(a)) - linear(a + b)
    assert affine_gap.abs().max() < 1e-4
    torch.manual_seed(0)
    relu = build_model(
        ArchitectureSpec(name="mlp", kwargs={"widths": [100] * 6, "activation": "relu"}),
        (1, 32, 32),
        10,
    )
    gap = relu(a) + relu(b) - relu(torch.zeros_like(a)) - relu(a + b)
    assert gap.abs().max() > 1e-4


def test_unknown_architecture_says_did_you_mean() -> None:
    with pytest.raises(ProtocolError) as info:
        build_model(ArchitectureSpec(name="lenet"), (1, 28, 28), 10)
    assert "did you mean 'lenet5'" in info.value.hint
    assert "digits_convnet, lenet5, mlp" in info.value.hint


@pytest.mark.parametrize(
    ("name", "kwargs", "shape", "words"),
    [
        ("mlp", {"width": [10], "activation": "none"}, (1, 8, 8), "accepts: widths, activation"),
        ("mlp", {"widths": [10], "activation": "tanh"}, (1, 8, 8), "activation 'tanh'"),
        ("mlp", {"widths": [10, 0], "activation": "relu"}, (1, 8, 8), "positive integers"),
        ("digits_convnet", {"widths": [8, 8]}, (1, 8, 8), "3 positive integers"),
        ("lenet5", {}, (1, 8, 8), "at least 16x16"),
    ],
)
def test_bad_arguments_are_protocol_errors(
    name: str, kwargs: dict, shape: tuple, words: str
) -> None:
    with pytest.raises(ProtocolError, match=words):
        build_model(ArchitectureSpec(name=name, kwargs=kwargs), shape, 10)


def test_register_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(architectures, "MODELS", dict(MODELS))

    @register_model("tiny")
    def tiny(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[1] * input_shape[2], num_classes))

    model = models.build_model(ArchitectureSpec(name="tiny"), (1, 4, 4), 3)
    assert isinstance(model, nn.Sequential)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny")(tiny)
    assert "tiny" not in MODELS


def test_shipped_protocols_build_and_their_patterns_match_layers() -> None:
    for protocol in list_protocols():
        dataset = protocol.dataset
        model = build_model(protocol.architecture, dataset.input_shape, dataset.num_classes)
        assert model(torch.zeros(2, *dataset.input_shape)).shape == (2, dataset.num_classes)
        names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        for pattern in protocol.prunable_layers:
            assert fnmatch.filter(names, pattern), f"{protocol.id}: {pattern!r} matches no layer"


TINY_ARCH_PLUGIN = '''
from torch import nn

from pruning_suite import hookimpl


def tiny_mlp(input_shape, num_classes, hidden=16):
    """Flatten, fc1 (hidden units), ReLU, fc2 (the output layer)."""
    c, h, w = input_shape
    return _Tiny(c * h * w, hidden, num_classes)


class _Tiny(nn.Module):
    def __init__(self, inputs, hidden, classes):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)).relu())


@hookimpl
def register_architectures():
    return {"tiny_mlp": tiny_mlp}
'''


def _digits_protocol_naming(architecture: str, kwargs: str) -> str:
    """The default digits protocol, renamed, with ``architecture`` and only ``fc1`` prunable."""
    from importlib import resources

    text = (resources.files("pruning_suite.protocol.files") / "digits-convnet.toml").read_text()
    text = text.replace('id = "digits-convnet"', 'id = "digits-tiny-mlp"')
    text = text.replace('prunable_layers = ["conv1", "conv2", "fc1"]', 'prunable_layers = ["fc1"]')
    return text.replace('name = "digits_convnet"', f'name = "{architecture}"\nkwargs = {kwargs}')


def test_hook_register_architectures(tmp_path, monkeypatch, capsys) -> None:
    """A third-party plugin adds an architecture; a protocol file names it; ``pruning-suite run``
    builds, trains, prunes and retrains it."""
    import json
    from importlib.metadata import EntryPoint

    from pruning_suite.cli.main import main
    from pruning_suite.contract import plugins

    (tmp_path / "tiny_arch_plugin.py").write_text(TINY_ARCH_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = plugins.entry_points
    tiny = EntryPoint(name="tiny-arch", value="tiny_arch_plugin", group=plugins.ENTRY_POINT_GROUP)

    def entry_points(**selection):
        found = list(real(**selection))
        return [*found, tiny] if selection == {"group": plugins.ENTRY_POINT_GROUP} else found

    monkeypatch.setattr(plugins, "entry_points", entry_points)
    assert "tiny_mlp" in plugins.load_registry().architectures
    protocol = tmp_path / "digits-tiny-mlp.toml"
    protocol.write_text(_digits_protocol_naming("tiny_mlp", "{ hidden = 12 }"))
    out = tmp_path / "out"
    argv = ["run", "--plugin", "l1norm", "--protocol", str(protocol), "--smoke", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0, capsys.readouterr().err
    (written,) = (out / "digits-tiny-mlp" / "l1norm").glob("*.json")
    submission = json.loads(written.read_text())
    layers = submission["pruning"]["layers"]
    assert [(la["name"], la["before"], la["after"]) for la in layers] == [("fc1", 12, 6)]
    assert submission["base_model"]["params"] == 64 * 12 + 12 + 12 * 10 + 10


def test_an_architecture_no_plugin_registers_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unknown architecture 'tiny_mlp'"):
        build_model(ArchitectureSpec(name="tiny_mlp"), (1, 8, 8), 10)
