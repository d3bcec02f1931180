"""Small models of the suite: a digits CNN, LeNet-5 and an MLP (registered by name)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ProtocolError
from .architectures import positive_ints, register_model

__all__ = ["MLP", "DigitsConvNet", "LeNet5"]


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
        c1, c2, hidden = positive_ints(widths, "digits_convnet", "widths", count=3)
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
        hidden = positive_ints(widths, "mlp", "widths")
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
