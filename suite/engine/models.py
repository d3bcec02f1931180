"""The model registry: architectures a protocol can name (``[architecture] name = ...``).

A builder is registered with :func:`register_model` and called as
``builder(input_shape, num_classes, **kwargs)``, the kwargs coming from the protocol's
``architecture.kwargs``. Every model here follows three rules the rest of the suite relies on:

- it is built deterministically from the global torch RNG (``torch.manual_seed``), with PyTorch's
  default initialization;
- its module names are readable and stable, because protocol patterns (``prunable_layers``,
  target ``layer_ratios``) match them with fnmatch: ``conv1``, ``fc1``, ``layers.0``, ...;
- its output layer (the classifier, never pruned) is the last ``nn.Linear`` / ``nn.Conv2d`` in
  ``named_modules()`` order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ProtocolError

if TYPE_CHECKING:
    from ..protocol.spec import ArchitectureSpec

__all__ = [
    "MODELS",
    "MLP",
    "TORCHVISION_PREFIX",
    "BasicBlock",
    "CifarResNet",
    "CifarVGG",
    "DigitsConvNet",
    "LeNet5",
    "ModelBuilder",
    "ZeroPadShortcut",
    "build_model",
    "register_model",
    "torchvision_model",
]

ModelBuilder = Callable[..., nn.Module]
"""``builder(input_shape: (C, H, W), num_classes: int, **kwargs) -> nn.Module``."""

MODELS: dict[str, ModelBuilder] = {}
"""Registered builders by architecture name."""

TORCHVISION_PREFIX = "torchvision:"
"""Architecture names ``"torchvision:<name>"`` build torchvision's classification model ``<name>``."""

_B = TypeVar("_B", bound=ModelBuilder)


def register_model(name: str) -> Callable[[_B], _B]:
    """Class or function decorator adding a builder to :data:`MODELS` under ``name``.

    Args:
        name: The architecture name protocols use.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorator(builder: _B) -> _B:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered (by {MODELS[name]!r})")
        MODELS[name] = builder
        return builder

    return decorator


def build_model(arch: ArchitectureSpec, input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build the protocol's architecture with fresh weights from the global torch RNG.

    Names are the keys of :data:`MODELS`, or ``"torchvision:<name>"`` for any torchvision
    classification model (see :func:`torchvision_model`).

    Args:
        arch: Registry name and keyword arguments.
        input_shape: ``(C, H, W)`` of one input.
        num_classes: Outputs of the classifier.

    Returns:
        The model, in training mode, on the CPU; its output is ``[N, num_classes]`` logits.

    Raises:
        ProtocolError: Unknown name ("did you mean" and the known names in the hint), keyword
            arguments the builder does not take, or values it refuses.
    """
    if arch.name.startswith(TORCHVISION_PREFIX):
        return _build_torchvision(arch, input_shape, num_classes)
    builder = MODELS.get(arch.name)
    if builder is None:
        raise _unknown_architecture(arch.name)
    shape = tuple(int(d) for d in input_shape)
    try:
        inspect.signature(builder).bind(shape, num_classes, **arch.kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(builder).parameters][2:]
        raise ProtocolError(
            f"architecture {arch.name!r} cannot be built with kwargs {arch.kwargs}: {err}",
            f"it accepts: {', '.join(accepted) or 'no kwargs'}; fix architecture.kwargs",
        ) from err
    return builder(shape, num_classes, **arch.kwargs)


def _unknown_architecture(name: str) -> ProtocolError:
    """The error for a name that is neither registered nor ``torchvision:``-prefixed."""
    close = get_close_matches(name, list(MODELS), n=3)
    if name in _torchvision_names():
        close.insert(0, TORCHVISION_PREFIX + name)
    guess = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return ProtocolError(
        f"unknown architecture {name!r}",
        f"{guess}known architectures: {', '.join(sorted(MODELS))}, and "
        f"'{TORCHVISION_PREFIX}<name>' for any torchvision classification model",
    )


@register_model("digits_convnet")
class DigitsConvNet(nn.Module):
    """A small ConvNet for 8x8 digits: two 3x3 conv-BN-ReLU blocks, a 2x2 max-pool, two Linear.

    Modules, in order: ``conv1`` (3x3, padding 1), ``bn1``, ``relu1``, ``conv2`` (3x3, padding 1),
    ``bn2``, ``relu2``, ``pool`` (2x2), ``flatten``, ``fc1``, ``relu3``, ``fc`` (output). With
    the default widths on 1x8x8 inputs and 10 classes it has 38,378 parameters.

    Args:
        input_shape: ``(C, H, W)``; H and W at least 2.
        num_classes: Outputs of ``fc``.
        widths: Output channels of ``conv1`` and ``conv2`` and output features of ``fc1``.

    Raises:
        ProtocolError: ``widths`` is not three positive integers, or the input is too small.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        widths: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__()
        c1, c2, hidden = _positive_ints(widths, "digits_convnet", "widths", count=3)
        channels, height, width = input_shape
        spatial = (height // 2) * (width // 2)
        if spatial == 0:
            raise ProtocolError(
                f"digits_convnet needs inputs of at least 2x2, got {input_shape}",
                "fix dataset.input_shape",
            )
        self.conv1 = nn.Conv2d(channels, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c2)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * spatial, hidden)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` inputs to ``[N, num_classes]`` logits."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(self.relu3(self.fc1(self.flatten(x))))


@register_model("lenet5")
class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling, for 28x28 or 32x32 inputs.

    Modules, in order: ``conv1`` (5x5, 6 filters; padding 2 on 28x28 inputs, else 0), ``relu1``,
    ``pool1``, ``conv2`` (5x5, 16 filters), ``relu2``, ``pool2``, ``flatten``, ``fc1`` (120),
    ``relu3``, ``fc2`` (84), ``relu4``, ``fc3`` (output). On 1x28x28 or 1x32x32 inputs with 10
    classes it has 61,706 parameters.

    Args:
        input_shape: ``(C, H, W)``.
        num_classes: Outputs of ``fc3``.

    Raises:
        ProtocolError: The input is too small for two 5x5 convolutions and two 2x2 pools.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        padding = 2 if (height, width) == (28, 28) else 0

        def after_blocks(size: int) -> int:
            return ((size + 2 * padding - 4) // 2 - 4) // 2

        out_h, out_w = after_blocks(height), after_blocks(width)
        if out_h < 1 or out_w < 1:
            raise ProtocolError(
                f"lenet5 needs inputs of at least 16x16 (made for 28x28 or 32x32), got "
                f"{input_shape}",
                "fix dataset.input_shape or pick another architecture",
            )
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=padding)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * out_h * out_w, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` inputs to ``[N, num_classes]`` logits."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


@register_model("mlp")
class MLP(nn.Module):
    """A multi-layer perceptron on flattened inputs; ``[100]*6`` + ``"none"`` is MLP-7-Linear.

    Modules, in order: ``flatten``, ``act`` (``nn.ReLU`` or ``nn.Identity``, applied after every
    layer but the last), ``layers.0`` .. ``layers.L-1`` (``nn.Linear``; ``layers.L-1`` is the
    output). With ``widths=[100]*6``, ``activation="none"`` on 1x32x32 inputs and 10 classes this
    is the paper's MLP-7-Linear (Wang et al., arXiv 2301.05219: 1024-100-100-100-100-100-
    100-10, no activation, bias on), 154,010 parameters.

    Args:
        input_shape: ``(C, H, W)``; the first layer takes ``C * H * W`` features.
        num_classes: Outputs of the last layer.
        widths: Hidden widths, one per hidden layer (may be empty: a linear classifier).
        activation: ``"none"`` (a deep linear network) or ``"relu"``.
        bias: Give every Linear a bias.

    Raises:
        ProtocolError: A width is not a positive integer, or ``activation`` is unknown.
    """

    ACTIVATIONS = ("none", "relu")

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        widths: Sequence[int],
        activation: str,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = _positive_ints(widths, "mlp", "widths")
        if activation not in self.ACTIVATIONS:
            raise ProtocolError(
                f"mlp activation {activation!r} is unknown",
                f"set architecture.kwargs.activation to one of: {', '.join(self.ACTIVATIONS)}",
            )
        self.activation = activation
        sizes = [input_shape[0] * input_shape[1] * input_shape[2], *hidden, num_classes]
        self.flatten = nn.Flatten()
        self.act = nn.ReLU() if activation == "relu" else nn.Identity()
        self.layers = nn.ModuleList(
            nn.Linear(n_in, n_out, bias=bias) for n_in, n_out in zip(sizes, sizes[1:], strict=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` inputs to ``[N, num_classes]`` logits."""
        x = self.flatten(x)
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)


# ----------------------------------------------------------------------------------------------
# CIFAR ResNets (He et al., CVPR 2016, Sec. 4.2), as in the authors' code (Wang et al.)


class ZeroPadShortcut(nn.Module):
    """The parameter-free "option A" shortcut: subsample by 2, zero-pad the new channels.

    ``x[:, :, ::2, ::2]`` with ``(out_channels - in_channels) // 2`` zero channels before and the
    rest after (He et al., CVPR 2016, Sec. 4.2; the authors' ``ZeroPaddingX2`` pads
    ``in_channels // 2`` on each side when the width doubles, which is the same). A module, not a
    lambda, so torch-pruning can trace it and ``copy.deepcopy`` works.

    Input channel ``i`` lands on output channel ``(out_channels - in_channels) // 2 + i``, a
    mapping torch-pruning does not know (it maps channel ``i`` to ``i``). So the residual
    channels of an option-A network (the stem ``conv1`` and every block's ``conv2``) cannot be
    pruned: ``apply_structured_pruning`` fails, usually with a VerificationError carrying this
    module's message (its forward refuses a pruned input). Pruning ``conv1`` of the blocks (the
    paper's layers) is unaffected; option ``"B"`` allows both.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output; at least ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W]`` to ``[N, out_channels, ceil(H / 2), ceil(W / 2)]``.

        Raises:
            RuntimeError: ``x`` does not have ``in_channels`` channels (its producers were pruned).
        """
        if x.shape[1] != self.in_channels:
            raise RuntimeError(
                f"an option-A (zero-padding) shortcut built for {self.in_channels} channels got "
                f"{x.shape[1]}: the residual channels of an option-A CIFAR ResNet cannot be "
                'pruned; prune only "layer*.conv1", or build the model with shortcut "B"'
            )
        extra = self.out_channels - self.in_channels
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, extra // 2, extra - extra // 2))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual add: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + s(x))``.

    Modules, in order: ``conv1`` (3x3, ``stride``, no bias), ``bn1``, ``conv2`` (3x3, no bias),
    ``bn2``, ``relu``, and on a downsampling block (``stride != 1`` or a width change)
    ``downsample``: a :class:`ZeroPadShortcut` (option ``"A"``) or ``nn.Sequential`` of a 1x1
    conv (``stride``, no bias) and a BatchNorm (option ``"B"``), named ``downsample.0`` and
    ``downsample.1``. Other blocks have ``downsample = None`` (identity shortcut).

    Args:
        in_planes: Input channels.
        planes: Output channels of ``conv1``, ``conv2`` and the block.
        stride: Stride of ``conv1`` (and of the shortcut).
        shortcut: ``"A"`` or ``"B"``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                if stride != 2 or planes < in_planes:
                    raise ValueError("option A shortcuts need stride 2 and planes >= in_planes")
                self.downsample = ZeroPadShortcut(in_planes, planes)
            else:
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_planes, H, W]`` to ``[N, planes, H / stride, W / stride]``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. (CVPR 2016, Sec. 4.2): depth ``6 * blocks + 2``.

    A 3x3 conv with 16 filters, then three stages of ``blocks`` :class:`BasicBlock` of widths 16,
    32, 64 (stride 2 at the first block of stages 2 and 3), global average pooling and one Linear.
    This is the network the authors prune (Wang et al., arXiv 2301.05219, Table 6; their code takes
    it from github.com/akamaster/pytorch_resnet_cifar10, option A); PyTorch's default
    initialization here (theirs is Kaiming normal in GReg, PyTorch's default in TPP).

    Modules, in order: ``conv1`` (no bias), ``bn1``, ``relu``, ``layer1`` .. ``layer3``
    (``nn.Sequential`` of blocks: ``layer2.0.conv1``, ``layer2.0.downsample.0``, ...),
    ``avgpool``, ``flatten``, ``fc`` (output). The first conv of every block, the layers the paper
    prunes, are ``layer*.conv1``. MACs per 3x32x32 example (10 classes): 40,551,040 (ResNet-20),
    125,485,696 (ResNet-56), 252,887,680 (ResNet-110) with option A; option B's two 1x1 convs add
    262,144.

    Args:
        input_shape: ``(C, H, W)``.
        num_classes: Outputs of ``fc``.
        blocks: BasicBlocks per stage: 3 (ResNet-20), 9 (ResNet-56), 18 (ResNet-110).
        shortcut: ``"A"``: parameter-free :class:`ZeroPadShortcut` on downsampling blocks, the
            authors' choice (ResNet-56: 853,018 parameters with 10 classes, akamaster's "0.85M");
            ``"B"``: 1x1 conv + BatchNorm projection (ResNet-56: 855,770 parameters).

    Raises:
        ProtocolError: ``shortcut`` is not ``"A"`` or ``"B"``, or ``blocks`` not a positive int.
    """

    SHORTCUTS = ("A", "B")
    WIDTHS = (16, 32, 64)

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        blocks: int,
        shortcut: str = "A",
    ) -> None:
        super().__init__()
        (blocks,) = _positive_ints([blocks], "resnet", "blocks", count=1)
        if shortcut not in self.SHORTCUTS:
            raise ProtocolError(
                f"CIFAR ResNet shortcut {shortcut!r} is unknown",
                'set architecture.kwargs.shortcut to "A" (zero-padding, the paper\'s) or "B" '
                "(1x1 conv projection)",
            )
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        for index, planes in enumerate(self.WIDTHS):
            stride = 1 if index == 0 else 2
            stage = []
            for block in range(blocks):
                stage.append(BasicBlock(in_planes, planes, stride if block == 0 else 1, shortcut))
                in_planes = planes
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` inputs to ``[N, num_classes]`` logits."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


@register_model("resnet20")
def resnet20(
    input_shape: tuple[int, int, int], num_classes: int, shortcut: str = "A"
) -> CifarResNet:
    """ResNet-20 for CIFAR: :class:`CifarResNet` with 3 blocks per stage.

    269,722 parameters (option A) or 272,474 (option B) with 10 classes.
    """
    return CifarResNet(input_shape, num_classes, blocks=3, shortcut=shortcut)


@register_model("resnet56")
def resnet56(
    input_shape: tuple[int, int, int], num_classes: int, shortcut: str = "A"
) -> CifarResNet:
    """ResNet-56 for CIFAR: :class:`CifarResNet` with 9 blocks per stage (Wang et al., Table 6).

    853,018 parameters (option A, the well-known "0.85M") or 855,770 (option B) with 10 classes.
    """
    return CifarResNet(input_shape, num_classes, blocks=9, shortcut=shortcut)


@register_model("resnet110")
def resnet110(
    input_shape: tuple[int, int, int], num_classes: int, shortcut: str = "A"
) -> CifarResNet:
    """ResNet-110 for CIFAR: :class:`CifarResNet` with 18 blocks per stage.

    1,727,962 parameters (option A, the "1.7M") or 1,730,714 (option B) with 10 classes.
    """
    return CifarResNet(input_shape, num_classes, blocks=18, shortcut=shortcut)


# ----------------------------------------------------------------------------------------------
# CIFAR VGG, as in the authors' code (Wang et al.; from EigenDamage, Wang et al., ICML 2019)


class CifarVGG(nn.Module):
    """VGG with BatchNorm for 32x32 inputs, the variant the authors prune (VGG-19, Table 7).

    ``features``: for every number in the configuration a 3x3 conv (padding 1, no bias), a
    BatchNorm and a ReLU; for every ``"M"`` a 2x2 max-pool. The configurations are Simonyan &
    Zisserman's D (16) and E (19) without the last max-pool; instead global average pooling
    (over 2x2 on 32x32 inputs) and ONE ``Linear(512, num_classes)`` replace the three FC layers,
    as in the authors' ``model/vgg.py`` (taken from EigenDamage). PyTorch's default
    initialization here (theirs is Kaiming normal).

    Modules, in order: ``features`` (``features.0`` conv, ``features.1`` BN, ``features.2`` ReLU,
    ``features.3`` conv, ...), ``avgpool``, ``flatten``, ``classifier`` (output). On 3x32x32
    inputs: VGG-16 14,724,042 parameters and 313,201,664 MACs with 10 classes; VGG-19
    20,081,188 parameters and 398,182,400 MACs with 100 classes (Wang et al., Table 7).

    Args:
        input_shape: ``(C, H, W)``; H and W at least 16 (four 2x2 max-pools).
        num_classes: Outputs of ``classifier``.
        depth: 16 or 19.

    Raises:
        ProtocolError: The input is smaller than 16x16.
    """

    CONFIGS = {
        16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
        19: (
            *(64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"),
            *(512, 512, 512, 512, "M", 512, 512, 512, 512),
        ),
    }

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        if min(height, width) < 16:
            raise ProtocolError(
                f"vgg{depth}_bn needs inputs of at least 16x16 (made for 32x32), got {input_shape}",
                "fix dataset.input_shape or pick another architecture",
            )
        layers: list[nn.Module] = []
        for item in self.CONFIGS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                conv = nn.Conv2d(channels, item, 3, padding=1, bias=False)
                layers += [conv, nn.BatchNorm2d(item), nn.ReLU()]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` inputs to ``[N, num_classes]`` logits."""
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model("vgg16_bn")
def vgg16_bn(input_shape: tuple[int, int, int], num_classes: int) -> CifarVGG:
    """VGG-16 with BatchNorm for CIFAR: :class:`CifarVGG` with depth 16."""
    return CifarVGG(input_shape, num_classes, depth=16)


@register_model("vgg19_bn")
def vgg19_bn(input_shape: tuple[int, int, int], num_classes: int) -> CifarVGG:
    """VGG-19 with BatchNorm for CIFAR (Wang et al., Table 7): :class:`CifarVGG` with depth 19."""
    return CifarVGG(input_shape, num_classes, depth=19)


# ----------------------------------------------------------------------------------------------
# Any torchvision classification model


def torchvision_model(
    name: str, input_shape: Sequence[int], num_classes: int, **kwargs: object
) -> nn.Module:
    """torchvision's classification model ``name``, untrained, with ``num_classes`` outputs.

    ``torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)``,
    initialized by torchvision from the global torch RNG. ``googlenet`` and ``inception_v3`` get
    ``aux_logits=False`` unless ``kwargs`` say otherwise, so that they return plain logits in
    training mode too. Module names are torchvision's (``layer1.0.conv1``, ``features.0.0``, ...).

    Args:
        name: A name in ``torchvision.models.list_models(module=torchvision.models)``, e.g.
            ``"resnet18"``, ``"mobilenet_v2"``.
        input_shape: ``(C, H, W)``; C must be 3 (torchvision's models take RGB images).
        num_classes: Outputs of the classifier.
        **kwargs: Passed on to the model's builder (e.g. ``width_mult`` for ``mobilenet_v2``).

    Returns:
        The model; its output is ``[N, num_classes]`` logits.

    Raises:
        ProtocolError: ``name`` is not a torchvision classification model ("did you mean" in the
            hint), C is not 3, or the builder refuses ``kwargs``.
    """
    import torchvision  # lazily: it is slow to import and only these models need it

    known = _torchvision_names()
    if name not in known:
        close = get_close_matches(name, known, n=3)
        guess = f"did you mean {', '.join(repr(TORCHVISION_PREFIX + c) for c in close)}? "
        raise ProtocolError(
            f"unknown architecture {TORCHVISION_PREFIX + name!r}: torchvision has no "
            f"classification model {name!r}",
            f"{guess if close else ''}torchvision's classification models: {', '.join(known)}",
        )
    if input_shape[0] != 3:
        raise ProtocolError(
            f"architecture {TORCHVISION_PREFIX + name!r} takes 3-channel inputs, got "
            f"{tuple(input_shape)}",
            "fix dataset.input_shape or pick a model of the suite's registry",
        )
    if name in ("googlenet", "inception_v3"):
        kwargs = {"aux_logits": False, "init_weights": True, **kwargs}
    try:
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as err:
        raise ProtocolError(
            f"architecture {TORCHVISION_PREFIX + name!r} cannot be built with kwargs {kwargs}: "
            f"{err}",
            "fix architecture.kwargs (they go to torchvision.models.get_model)",
        ) from err


def _torchvision_names() -> list[str]:
    """torchvision's classification models (not detection, segmentation, video, quantized)."""
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def _build_torchvision(
    arch: ArchitectureSpec, input_shape: Sequence[int], num_classes: int
) -> nn.Module:
    reserved = sorted({"weights", "num_classes"} & set(arch.kwargs))
    if reserved:
        raise ProtocolError(
            f"architecture {arch.name!r} cannot take kwargs {reserved}",
            "remove them from architecture.kwargs: the number of classes comes from the dataset, "
            "and models are always built untrained (the base model is the protocol's recipe)",
        )
    shape = tuple(int(d) for d in input_shape)
    return torchvision_model(
        arch.name[len(TORCHVISION_PREFIX) :], shape, num_classes, **arch.kwargs
    )


def _positive_ints(
    values: Sequence[int], model: str, kwarg: str, count: int | None = None
) -> tuple[int, ...]:
    """``values`` as a tuple of positive ints, or a ProtocolError naming the kwarg."""
    ok = isinstance(values, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    )
    if not ok or (count is not None and len(values) != count):
        size = f"{count} " if count is not None else ""
        raise ProtocolError(
            f"{model} {kwarg} must be a list of {size}positive integers, got {values!r}",
            f"fix architecture.kwargs.{kwarg} in the protocol",
        )
    return tuple(values)
