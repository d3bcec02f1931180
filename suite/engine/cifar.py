"""CIFAR models of the paper's experiments: ResNet-20/56/110 and VGG-16/19 with BatchNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ProtocolError
from .architectures import positive_ints, register_model

__all__ = [
    "BasicBlock",
    "CifarResNet",
    "CifarVGG",
    "ZeroPadShortcut",
    "resnet20",
    "resnet56",
    "resnet110",
    "vgg16_bn",
    "vgg19_bn",
]


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
        (blocks,) = positive_ints([blocks], "resnet", "blocks", count=1)
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
