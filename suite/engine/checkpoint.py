"""Saving and loading physically pruned models, safely (``torch.load(weights_only=True)``).

A pruned model's layers are narrower than its architecture's, so a plain ``state_dict`` does not
fit a freshly built model, and pickling the whole ``nn.Module`` (``torch.save(model)``) is unsafe
to load (unpickling runs arbitrary code) and breaks whenever the class's source moves. A pruned
checkpoint therefore stores only tensors and plain data::

    {
        "state_dict":   {name: Tensor},   # the pruned model's state_dict, on the CPU
        "widths":       {layer: int},     # output units of each Conv2d/Linear after pruning
        "architecture": {...},            # how to build the dense model (plain data)
        "meta":         {...},            # anything else worth keeping (plain data)
    }

Loading builds the dense architecture, shrinks every layer in ``widths`` to its saved width by
physically removing its LAST units (per group for grouped convs, see below) with
:func:`pruning_suite.engine.pruning.apply_structured_pruning` (which also narrows BatchNorms and
consumers' inputs, i.e. recreates the pruned SHAPES), and then loads the saved weights strictly.
Which units were removed originally does not matter: the shapes match, and every value comes
from the state_dict.

Grouped convs (``1 < groups < out_channels``, e.g. ResNeXt's 3x3) must lose equally many channels
in every group, so "the last ``k`` units" would be refused. The rebuild therefore first finds, for
every layer to shrink, the grouped convs whose channels shrink with its units: its own outputs if
it is one, the inputs of the grouped convs it feeds (directly or through BatchNorms, activations,
residual adds and concatenations), the outputs of the grouped convs it is coupled with through a
residual add. It splits the layer's units into blocks as large as the greatest common divisor of
those convs' group sizes (as seen from the layer) and removes the last ``k / blocks`` units of
each block: 16 -> 12 units feeding a ``groups=4`` conv removes units 3, 7, 11 and 15; with no
grouped conv reached there is one block, the last ``k`` units.

The grouped convs reached are read from torch-pruning's ``DependencyGraph`` (traced once on the
example input, only when the model has a grouped conv), not guessed by retrying the flat pattern
after :func:`~pruning_suite.engine.pruning.apply_structured_pruning` refuses it: the refusal names the
grouped conv, not which requested layer should change, and a layer coupled with a grouped conv
through a residual add (a ResNeXt stem) must change too, with the same pattern. Layers coupled
with each other share one dependency group, so they always get the same pattern, as
``apply_structured_pruning`` requires. Depthwise convs (``groups == out_channels``) shrink one to
one with the conv feeding them and need no blocks. A :class:`CheckpointError` says why when ``k``
is not a multiple of the number of blocks (no balanced pruning of this architecture gives the
saved width), or when a layer's units do not cover whole groups of a grouped conv it reaches
(e.g. through a split, or a concatenation slice not aligned with the groups).

Metadata convention. ``architecture`` and ``meta`` are free-form plain data; the runner fills them
as below (only ``input_shape`` is read here, for :func:`load_pruned`'s default example input)::

    architecture = {
        "name": "digits_convnet",      # ArchitectureSpec.name: registry key or "torchvision:..."
        "kwargs": {},                  # ArchitectureSpec.kwargs, passed to the builder
        "input_shape": [1, 8, 8],      # the dataset's [C, H, W] of ONE input (no batch dim)
        "num_classes": 10,             # the dataset's classes: outputs of the classifier
    }
    meta = {
        "protocol": "digits-convnet",  # protocol id
        "protocol_version": 1,         # protocol version (int)
        "run_id": "0123456789ab",      # record.identity.run_id: 12 hex digits
        ...                            # optional: method, method_version, target, seed, ...
    }

so that, with ``a = read_checkpoint(path).architecture``, ``load_pruned(path, lambda:
build_model(ArchitectureSpec(name=a["name"], kwargs=a["kwargs"]), a["input_shape"],
a["num_classes"]))`` rebuilds the model (``build_model`` from :mod:`pruning_suite.engine.models`,
``ArchitectureSpec`` from :mod:`pruning_suite.protocol.spec`).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, OutputError
from ..record.safefiles import write_atomic
from .layers import layer_widths
from .shrink import check_fits, shrink_to_widths

__all__ = [
    "CheckpointError",
    "PrunedCheckpoint",
    "layer_widths",
    "load_pruned",
    "read_checkpoint",
    "save_pruned",
]

KEYS = ("state_dict", "widths", "architecture", "meta")
"""The top-level keys of a pruned checkpoint, all required."""

PREFIX = "module."
"""The prefix ``nn.DataParallel`` / ``DistributedDataParallel`` put on every key."""

_SHOWN = 5
_HOW_TO_SAVE = (
    "save pruned models with pruning_suite.engine.checkpoint.save_pruned(model, path, "
    "widths=layer_widths(model), arch=..., meta=...), which stores tensors and plain data only"
)
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


@dataclass(frozen=True)
class PrunedCheckpoint:
    """The validated content of a pruned checkpoint file.

    Attributes:
        state_dict: Parameter and buffer name -> CPU tensor, as saved (prefixes untouched).
        widths: Conv2d/Linear module name -> output units after pruning (``>= 1``).
        architecture: How the dense model is built (plain data); ``input_shape`` ``[C, H, W]``,
            when present, lets :func:`load_pruned` make its own example input. The runner's keys:
            ``name``, ``kwargs``, ``input_shape``, ``num_classes`` (see the module docstring).
        meta: Free-form plain data; the runner's keys: ``protocol`` (id), ``protocol_version``,
            ``run_id``, then anything else (method, seed, accuracy, ...).
    """

    state_dict: dict[str, torch.Tensor]
    widths: dict[str, int]
    architecture: dict[str, Any]
    meta: dict[str, Any]


def save_pruned(
    model: nn.Module,
    path: str | os.PathLike[str],
    widths: Mapping[str, int],
    arch: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> Path:
    """Write a pruned model atomically, in a form ``torch.load(weights_only=True)`` reads.

    The file is written to a temporary name in the same folder, flushed to disk and moved over
    ``path`` with ``os.replace``, so a reader never sees a half-written checkpoint.

    Args:
        model: The (pruned) model; its ``state_dict()`` is saved, copied to the CPU.
        path: Destination file; missing parent folders are created.
        widths: Conv2d/Linear module name -> current output units, usually
            :func:`layer_widths` ``(model)``; every entry must equal the model's actual width.
        arch: How to build the dense model (plain data: dicts with str keys, lists, tuples, str,
            int, float, bool, None, tensors). Include ``"input_shape": [C, H, W]`` so that
            :func:`load_pruned` needs no example input. The runner stores the protocol's
            architecture as ``{"name", "kwargs", "input_shape", "num_classes"}``.
        meta: Anything else, same plain-data rule. The runner stores at least ``"protocol"``
            (id), ``"protocol_version"`` (int) and ``"run_id"`` (12 hex digits).

    Returns:
        The path written.

    Raises:
        CheckpointError: ``widths`` names a module that is not a Conv2d/Linear of ``model`` or
            disagrees with its width, or ``arch`` / ``meta`` hold a value ``weights_only``
            loading would refuse (the message gives its key path).
        OutputError: The file cannot be written.
    """
    _check_widths_match(model, widths)
    content = {
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "widths": {str(k): int(v) for k, v in widths.items()},
        "architecture": _plain(arch, "arch"),
        "meta": _plain(meta, "meta"),
    }
    return _atomic_save(content, Path(path))


def read_checkpoint(path: str | os.PathLike[str]) -> PrunedCheckpoint:
    """Read and validate a pruned checkpoint with ``torch.load(weights_only=True)``.

    Args:
        path: A file written by :func:`save_pruned`.

    Returns:
        Its content, tensors on the CPU.

    Raises:
        CheckpointError: The file is missing or unreadable, holds a pickled object (an
            ``nn.Module`` from ``torch.save(model)``, a numpy array, ...) that ``weights_only``
            refuses, is not a torch file, or is not in the suite's format (e.g. a bare
            state_dict).
    """
    content = _safe_load(Path(path))
    if not isinstance(content, dict) or not set(KEYS) <= set(content):
        bare = isinstance(content, dict) and all(
            isinstance(v, torch.Tensor) for v in content.values()
        )
        what = "a bare state_dict" if bare else f"a {type(content).__name__}"
        raise CheckpointError(
            f"{path} holds {what}, not a pruned checkpoint with keys {list(KEYS)}", _HOW_TO_SAVE
        )
    return PrunedCheckpoint(
        state_dict=_checked_state_dict(content["state_dict"], path),
        widths=_checked_widths(content["widths"], path),
        architecture=_checked_dict(content["architecture"], "architecture", path),
        meta=_checked_dict(content["meta"], "meta", path),
    )


def load_pruned(
    path: str | os.PathLike[str],
    build: Callable[[], nn.Module],
    *,
    example_input: torch.Tensor | None = None,
) -> nn.Module:
    """Rebuild a pruned model: dense ``build()``, shrink to the saved widths, load strictly.

    Key handling: ONE leading ``module.`` (``nn.DataParallel``) is stripped from the state_dict
    keys only when EVERY key has it and the built model's keys do not; the same rule applies to
    the ``widths`` names. Otherwise keys are used untouched, so a checkpoint in which only some
    keys carry the prefix fails the strict load.

    Args:
        path: A file written by :func:`save_pruned`.
        build: Returns the DENSE architecture (fresh weights are fine: all of them are
            replaced), e.g. ``lambda: build_model(arch, input_shape, num_classes)``.
        example_input: A batch the model accepts (e.g. ``[B, C, H, W]``), used to trace the
            layers' dependencies (what shrinks with what, which layers reach grouped convs).
            Default: ``[2, *input_shape]`` random values, ``input_shape`` taken from the
            checkpoint's ``architecture``.

    Returns:
        The pruned model with the saved weights, in the train/eval mode ``build()`` left it in,
        on ``build()``'s device.

    Raises:
        CheckpointError: Everything :func:`read_checkpoint` raises; ``build()`` returns no
            ``nn.Module``; ``widths`` names a module ``build()`` lacks or a width larger than the
            dense one; a layer reaching a grouped conv has lost units that cannot be spread
            evenly over the conv's groups; no example input is available; the tracing or the
            shrinking fails; or the state_dict's keys or shapes do not match the rebuilt model
            (the first offending keys listed).
    """
    checkpoint = read_checkpoint(path)
    model = build()
    if not isinstance(model, nn.Module):
        raise CheckpointError(
            f"build() returned a {type(model).__name__}, not an nn.Module",
            "pass a function that builds the dense architecture",
        )
    own = list(model.state_dict())
    state = _strip_prefix(checkpoint.state_dict, own)
    widths = _strip_prefix(checkpoint.widths, [n for n, _ in model.named_modules() if n])
    shrink_to_widths(model, widths, checkpoint.architecture, example_input, path)
    check_fits(model, state, path)
    model.load_state_dict(state, strict=True)
    return model


# ----------------------------------------------------------------------------------------------
# Saving


def _check_widths_match(model: nn.Module, widths: Mapping[str, int]) -> None:
    actual = layer_widths(model)
    wrong = [
        f"{name!r}: {width} given, "
        + (f"{actual[name]} in the model" if name in actual else "no such Conv2d/Linear")
        for name, width in widths.items()
        if actual.get(name) != width
    ]
    if wrong:
        raise CheckpointError(
            f"widths disagree with the model to save: {_few(wrong)}",
            "pass widths=layer_widths(model) of the PRUNED model",
        )


def _plain(value: Any, where: str) -> Any:
    """``value`` (a copy of its containers) if it holds only weights_only-loadable plain data."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise CheckpointError(f"{where} has a non-string key {bad[0]!r}", "use string keys")
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise CheckpointError(
        f"{where} is a {type(value).__name__}, which torch.load(weights_only=True) refuses",
        "store plain data only: dicts with str keys, lists, tuples, str, int, float, bool, None, "
        "tensors (e.g. str(path), float(x), array.tolist())",
    )


def _atomic_save(content: dict[str, Any], path: Path) -> Path:
    write_atomic(
        path,
        lambda handle: torch.save(content, handle),
        lambda err: OutputError(
            f"cannot write checkpoint {path}: {err.strerror or err}",
            "check that the folder is writable and the disk not full",
        ),
    )
    return path


# ----------------------------------------------------------------------------------------------
# Reading


def _safe_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} does not exist", "check the path") from err
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err.strerror or err}") from err
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found is None:
            raise CheckpointError(
                f"{path} is not a readable torch checkpoint (corrupt, or not written by "
                "torch.save)",
                _HOW_TO_SAVE,
            ) from err
        raise CheckpointError(
            f"{path} holds a pickled {found.group(1)}; pruning-suite refuses pickled modules "
            "and other pickled objects (unpickling runs arbitrary code; checkpoints are read "
            "with torch.load(weights_only=True))",
            f"{_HOW_TO_SAVE}; to convert a file you trust: model = torch.load(path, "
            "weights_only=False), then save_pruned(model, ...)",
        ) from err
    except RuntimeError as err:  # e.g. a truncated zip archive
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {err}") from err


def _checked_state_dict(value: Any, path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )
    if not ok:
        raise CheckpointError(f"{path}: 'state_dict' is not a str -> Tensor mapping", _HOW_TO_SAVE)
    return dict(value)


def _checked_widths(value: Any, path: str | os.PathLike[str]) -> dict[str, int]:
    ok = isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 1
        for k, v in value.items()
    )
    if not ok:
        raise CheckpointError(
            f"{path}: 'widths' is not a module name -> positive int mapping", _HOW_TO_SAVE
        )
    return dict(value)


def _checked_dict(value: Any, key: str, path: str | os.PathLike[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: {key!r} is a {type(value).__name__}, not a dict")
    return dict(value)


# ----------------------------------------------------------------------------------------------
# Loading


def _strip_prefix(saved: Mapping[str, Any], own: Sequence[str]) -> dict[str, Any]:
    """``saved`` without one leading ``module.`` if every key has it and ``own`` keys do not."""
    everywhere = bool(saved) and all(k.startswith(PREFIX) for k in saved)
    model_has_it = bool(own) and all(k.startswith(PREFIX) for k in own)
    if everywhere and not model_has_it:
        return {k[len(PREFIX) :]: v for k, v in saved.items()}
    return dict(saved)


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) if " " in str(i) else repr(i) for i in items[:_SHOWN])
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return f"[{shown}{more}]"
