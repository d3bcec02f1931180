"""Building the architecture a protocol names (``[architecture] name = ...``).

Architectures are looked up in the plugin registry (hook ``register_architectures``): the suite's
own (:mod:`~pruning_suite.engine.architectures`, :mod:`~pruning_suite.engine.nets`,
:mod:`~pruning_suite.engine.cifar`, offered by :mod:`pruning_suite.engine.builtin`) and any
installed plugin's, so a third-party package can add an architecture its protocols name.
``"torchvision:<name>"`` builds any torchvision classification model.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING

from torch import nn

from ..contract.registry import Registry
from ..errors import ProtocolError, did_you_mean
from .architectures import MODELS, ModelBuilder, register_model
from .cifar import BasicBlock, CifarResNet, CifarVGG, ZeroPadShortcut
from .nets import MLP, DigitsConvNet, LeNet5

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
    "reinitialize",
    "torchvision_model",
]

TORCHVISION_PREFIX = "torchvision:"
"""Architecture names ``"torchvision:<name>"`` build torchvision's classification model ``<name>``."""


def build_model(
    arch: ArchitectureSpec,
    input_shape: Sequence[int],
    num_classes: int,
    architectures: Registry[ModelBuilder] | None = None,
) -> nn.Module:
    """Build the protocol's architecture with fresh weights from the global torch RNG.

    Names are those registered through the hook ``register_architectures`` (the suite's own
    in :data:`MODELS`, and any plugin's), or ``"torchvision:<name>"`` for any torchvision
    classification model (see :func:`torchvision_model`).

    Args:
        arch: Registry name and keyword arguments.
        input_shape: ``(C, H, W)`` of one input.
        num_classes: Outputs of the classifier.
        architectures: The registered builders (``PluginRegistry.architectures``); None = those
            of a freshly loaded plugin registry.

    Returns:
        The model, in training mode, on the CPU; its output is ``[N, num_classes]`` logits.

    Raises:
        ProtocolError: Unknown name ("did you mean" and the known names in the hint), keyword
            arguments the builder does not take, or values it refuses.
    """
    if arch.name.startswith(TORCHVISION_PREFIX):
        return _build_torchvision(arch, input_shape, num_classes)
    if architectures is None:
        from ..contract.plugins import load_registry

        architectures = load_registry().architectures
    if arch.name not in architectures.names():
        raise _unknown_architecture(arch.name, architectures.names())
    builder = architectures.get(arch.name)
    shape = tuple(int(d) for d in input_shape)
    try:
        inspect.signature(builder).bind(shape, num_classes, **arch.kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(builder).parameters][2:]
        raise ProtocolError(
            f"architecture {arch.name!r} cannot be built with kwargs {arch.kwargs}: {err}",
            f"it accepts: {', '.join(accepted) or 'no kwargs'}; fix architecture.kwargs",
        ) from err
    try:
        return builder(shape, num_classes, **arch.kwargs)
    except (RuntimeError, MemoryError, OverflowError) as err:  # e.g. a width of 4e9
        raise ProtocolError(
            f"architecture {arch.name!r} with kwargs {arch.kwargs} could not be built: "
            f"{type(err).__name__}: {str(err)[:200]}",
            "the widths or class count are too large for memory; fix architecture.kwargs",
        ) from err


def _unknown_architecture(name: str, known: Sequence[str]) -> ProtocolError:
    """The error for a name that is neither registered nor ``torchvision:``-prefixed."""
    close = get_close_matches(name, list(known), n=3)
    if name in _torchvision_names():
        close.insert(0, TORCHVISION_PREFIX + name)
    guess = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return ProtocolError(
        f"unknown architecture {name!r}",
        f"{guess}known architectures: {', '.join(sorted(known))}, and "
        f"'{TORCHVISION_PREFIX}<name>' for any torchvision classification model",
    )


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
        guess = did_you_mean(name, known, prefix=TORCHVISION_PREFIX)
        raise ProtocolError(
            f"unknown architecture {TORCHVISION_PREFIX + name!r}: torchvision has no "
            f"classification model {name!r}",
            f"{guess}torchvision's classification models: {', '.join(known)}",
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


def reinitialize(model: nn.Module) -> None:
    """Re-initialize every parameter with PyTorch's default init (each module's
    ``reset_parameters``): how a base model starts, and how a scratch baseline does."""
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
