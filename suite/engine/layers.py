"""Which layers a protocol may prune, and the small facts about layers the pruning steps share.

*Unit*: an output channel (filter) of a Conv2d or an output feature (neuron) of a Linear.
*Output layer*: the LAST ``nn.Linear`` or ``nn.Conv2d`` in ``model.named_modules()`` order (the
classifier). Its units are the model's outputs, so it is never prunable.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

from ..contract.method import PrunableLayer
from ..errors import PruningError

__all__ = [
    "PRUNABLE_TYPES",
    "count_params",
    "few",
    "find_prunable_layers",
    "layer_widths",
    "num_units",
    "output_layer_name",
    "prunable_modules",
    "short",
]

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)

# ----------------------------------------------------------------------------------------------
# 1. Which layers


def output_layer_name(model: nn.Module) -> str | None:
    """Name of the output layer: the last ``nn.Linear`` or ``nn.Conv2d`` in module order.

    Args:
        model: Any model.

    Returns:
        Its name in ``model.named_modules()``, or ``None`` if the model has no such layer.
    """
    layers = prunable_modules(model)
    return layers[-1][0] if layers else None


def find_prunable_layers(model: nn.Module, patterns: Sequence[str]) -> tuple[PrunableLayer, ...]:
    """The Conv2d and Linear layers whose module name matches any of ``patterns``.

    The output layer (see :func:`output_layer_name`) is always excluded: its units are the classes.

    Args:
        model: The dense model.
        patterns: ``fnmatch`` patterns matched case-sensitively (``fnmatch.fnmatchcase``) against
            module names, e.g. ``["features.*", "classifier.0"]``.

    Returns:
        One :class:`~pruning_suite.contract.method.PrunableLayer` per match, in ``model.named_modules()``
        order; ``num_units`` is ``out_channels`` (Conv2d) or ``out_features`` (Linear).

    Raises:
        PruningError: No layer matches (the message lists the patterns and some module names).
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    output = output_layer_name(model)
    candidates = prunable_modules(model)
    layers = tuple(
        PrunableLayer(name, module, num_units(module))
        for name, module in candidates
        if name != output and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    )
    if not layers:
        raise PruningError(
            f"no prunable Conv2d/Linear layer matches the patterns {patterns} "
            f"(the output layer {output!r} is never prunable); "
            f"the model's Conv2d/Linear layers are {few([n for n, _ in candidates])}",
            "fix 'prunable_layers' in the protocol (fnmatch patterns, e.g. 'layer1.*.conv1')",
        )
    return layers


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor counted once; buffers such as BN stats excluded).

    Args:
        model: Any model.

    Returns:
        ``sum(p.numel() for p in model.parameters())``.
    """
    return sum(p.numel() for p in model.parameters())


def prunable_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]


def num_units(module: nn.Module) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels
    return module.out_features


def short(idxs: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in idxs[:limit])
    return f"[{shown}, ... ({len(idxs)} in all)]" if len(idxs) > limit else f"[{shown}]"


def few(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)} in all)"


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output units of every Conv2d/Linear of ``model``: the ``widths`` a checkpoint records.

    Args:
        model: Any model, pruned or dense.

    Returns:
        Module name -> ``out_channels`` (Conv2d) or ``out_features`` (Linear), in module order.
    """
    return {
        name: num_units(m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)
    }
