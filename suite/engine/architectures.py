"""The architecture table: builders a protocol can name (``[architecture] name = ...``).

A builder is registered with :func:`register_model` and called as
``builder(input_shape, num_classes, **kwargs)``, the kwargs coming from the protocol's
``architecture.kwargs``. The suite's builders are offered to the plugin registry by
:mod:`pruning_suite.engine.builtin` (hook ``register_architectures``), beside any plugin's.
Every model follows three rules the rest of the suite relies on:

- it is built deterministically from the global torch RNG (``torch.manual_seed``), with PyTorch's
  default initialization;
- its module names are readable and stable, because protocol patterns (``prunable_layers``,
  target ``layer_ratios``) match them with fnmatch: ``conv1``, ``fc1``, ``layers.0``, ...;
- its output layer (the classifier, never pruned) is the last ``nn.Linear`` / ``nn.Conv2d`` in
  ``named_modules()`` order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from torch import nn

from ..errors import ProtocolError

__all__ = ["MODELS", "ModelBuilder", "positive_ints", "register_model"]

ModelBuilder = Callable[..., nn.Module]
"""``builder(input_shape: (C, H, W), num_classes: int, **kwargs) -> nn.Module``."""

MODELS: dict[str, ModelBuilder] = {}
"""The suite's builders by architecture name."""

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


def positive_ints(
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
