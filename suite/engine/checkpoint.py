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
        "run_id": "0123456789ab",      # runner.compute_run_id: 12 hex digits
        ...                            # optional: method, method_version, target, seed, ...
    }

so that, with ``a = read_checkpoint(path).architecture``, ``load_pruned(path, lambda:
build_model(ArchitectureSpec(name=a["name"], kwargs=a["kwargs"]), a["input_shape"],
a["num_classes"]))`` rebuilds the model (``build_model`` from :mod:`pruning_suite.engine.models`,
``ArchitectureSpec`` from :mod:`pruning_suite.protocol.spec`).
"""

from __future__ import annotations

import math
import os
import pickle
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from ..errors import CheckpointError, OutputError, PruningError
from .pruning import PRUNABLE_TYPES, apply_structured_pruning

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


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output units of every Conv2d/Linear of ``model``: the ``widths`` a checkpoint records.

    Args:
        model: Any model, pruned or dense.

    Returns:
        Module name -> ``out_channels`` (Conv2d) or ``out_features`` (Linear), in module order.
    """
    return {name: _units(m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


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
    _shrink(model, widths, checkpoint.architecture, example_input, path)
    _check_fits(model, state, path)
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as handle:  # honours the umask, unlike mkstemp's 0600
            torch.save(content, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(
            f"cannot write checkpoint {path}: {err.strerror or err}",
            "check that the folder is writable and the disk not full",
        ) from err
    finally:
        if tmp.exists():  # only after a failure between creating and replacing it
            tmp.unlink()
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


def _shrink(
    model: nn.Module,
    widths: Mapping[str, int],
    architecture: Mapping[str, Any],
    example_input: torch.Tensor | None,
    path: str | os.PathLike[str],
) -> None:
    """Shrink every layer in ``widths`` to its width, in place: the last units of each block."""
    dense = _checked_dense(model, widths, path)
    counts = {name: dense[name] - width for name, width in widths.items() if width < dense[name]}
    if not counts:
        return
    batch = example_input if example_input is not None else _example(model, architecture, path)
    reached = _grouped_convs_reached(model, counts, batch, path)
    removals = {
        name: _last_units(name, dense[name], count, reached[name], path)
        for name, count in counts.items()
    }
    try:
        apply_structured_pruning(model, removals, batch)
    except PruningError as err:
        raise CheckpointError(
            f"cannot shrink the built model to the widths saved in {path}: {err.message}",
            "check that build() makes the architecture the checkpoint was pruned from",
        ) from err


def _checked_dense(
    model: nn.Module, widths: Mapping[str, int], path: str | os.PathLike[str]
) -> dict[str, int]:
    """The dense widths of ``model``, after checking that ``widths`` can shrink them."""
    dense = layer_widths(model)
    unknown = [name for name in widths if name not in dense]
    if unknown:
        raise CheckpointError(
            f"{path} records widths for {_few(unknown)}, which build() has no Conv2d/Linear "
            f"for; its Conv2d/Linear layers: {_few(list(dense))}",
            "check that build() makes the architecture the checkpoint was pruned from",
        )
    grown = [f"{n!r} ({w} saved > {dense[n]} dense)" for n, w in widths.items() if w > dense[n]]
    if grown:
        raise CheckpointError(
            f"{path} records widths larger than build()'s dense model: {_few(grown)}",
            "check that build() makes the architecture (and widths) the checkpoint came from",
        )
    return dense


@dataclass(frozen=True)
class _Reach:
    """A grouped conv whose channels shrink with a layer's units.

    Attributes:
        conv: Its module name.
        groups: Its ``groups``.
        block: Its group size (of the channels the layer reaches) if the layer's unit 0 maps to
            the first channel of one of its groups, else None.
    """

    conv: str
    groups: int
    block: int | None


def _grouped_convs_reached(
    model: nn.Module,
    layers: Sequence[str],
    example_input: torch.Tensor,
    path: str | os.PathLike[str],
) -> dict[str, list[_Reach]]:
    """Layer -> the grouped convs whose output or input channels shrink with its units.

    Those are the grouped convs in the layer's torch-pruning dependency group. The model is traced
    (in eval mode, modes restored after) only if it has a grouped conv at all.
    """
    if not any(_is_grouped(m) for m in model.modules()):
        return {layer: [] for layer in layers}
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()  # tracing runs a forward pass: it must not update BatchNorm statistics
        with torch.enable_grad():  # torch-pruning traces through autograd
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, verbose=False
            )
        names = {module: name for name, module in model.named_modules()}
        return {layer: _grouped_in_group(graph, model, layer, names) for layer in layers}
    except Exception as err:  # torch-pruning fails in many ways on models it cannot trace
        raise CheckpointError(
            f"cannot rebuild the pruned shapes of {path}: torch-pruning could not trace which "
            f"layers shrink with grouped convs: {err}",
            "check that build()'s model runs on example_input (or on the saved input_shape)",
        ) from err
    finally:
        for module, training in modes.items():
            module.train(training)


def _grouped_in_group(
    graph: tp.DependencyGraph, model: nn.Module, layer: str, names: Mapping[nn.Module, str]
) -> list[_Reach]:
    module = model.get_submodule(layer)
    if module not in graph.module2node:
        return []  # not used in the forward pass: apply_structured_pruning says so
    conv = isinstance(module, nn.Conv2d)
    fn = tp.prune_conv_out_channels if conv else tp.prune_linear_out_channels
    reached = []
    for dep, idxs in graph.get_pruning_group(module, fn, [0]):  # where unit 0 lands
        target = dep.target.module
        if _is_grouped(target):
            out = graph.is_out_channel_pruning_fn(dep.handler)
            size = (target.out_channels if out else target.in_channels) // target.groups
            aligned = len(idxs) == 1 and int(idxs[0]) % size == 0
            reached.append(_Reach(names[target], target.groups, size if aligned else None))
    return reached


def _last_units(
    name: str, units: int, count: int, reached: Sequence[_Reach], path: str | os.PathLike[str]
) -> list[int]:
    """The last ``count / blocks`` units of each equal block of ``range(units)``.

    A block is as large as the greatest common divisor of the group sizes of the grouped convs
    ``reached`` (``units``, i.e. one block, if none), so each of their groups loses equally many.
    """
    convs = ", ".join(f"{r.conv!r} (groups={r.groups})" for r in reached)
    sizes = [r.block for r in reached if r.block is not None and units % r.block == 0]
    if len(sizes) < len(reached):
        raise CheckpointError(
            f"cannot rebuild {name!r} of {path}: its {units} units reach the grouped convs "
            f"{convs} without covering whole groups of them (e.g. through a split, or a "
            "concatenation not aligned with their groups), so removing the last units of each "
            "group does not apply",
            "load_pruned cannot rebuild this architecture yet; report it",
        )
    size = math.gcd(units, *sizes)
    blocks = units // size
    if count % blocks:
        raise CheckpointError(
            f"{path} records width {units - count} for {name!r} (dense {units}), but {name!r} "
            f"reaches the grouped convs {convs}, which must lose equally many channels in each "
            f"of their groups, so the {count} units removed from {name!r} must be a multiple of "
            f"{blocks} (as many from each block of {size}); no valid pruning of this "
            "architecture gives that width",
            "check that build() makes the architecture (and widths) the checkpoint came from",
        )
    kept = size - count // blocks
    return [b * size + j for b in range(blocks) for j in range(kept, size)]


def _is_grouped(module: Any) -> bool:
    """A grouped conv: ``1 < groups < out_channels`` (not depthwise), not transposed."""
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and not module.transposed
        and 1 < module.groups < module.out_channels
    )


def _example(
    model: nn.Module, architecture: Mapping[str, Any], path: str | os.PathLike[str]
) -> torch.Tensor:
    shape = architecture.get("input_shape")
    ok = isinstance(shape, (list, tuple)) and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    )
    if not ok:
        raise CheckpointError(
            f"{path} needs an example input to rebuild the pruned shapes, and its architecture "
            f"has no usable 'input_shape' (got {shape!r})",
            "pass load_pruned(..., example_input=batch), or save with arch={..., "
            "'input_shape': [C, H, W]}",
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, *shape, generator=generator).to(device)


def _check_fits(
    model: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]
) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {list(state[k].shape)} saved vs {list(v.shape)} built"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [
        f"{what}: {_few(keys)}"
        for what, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"the state_dict in {path} does not fit the rebuilt model; " + "; ".join(problems),
            "check that build() makes the checkpoint's architecture; a 'module.' prefix is "
            "stripped only when every key has it",
        )


def _units(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) if " " in str(i) else repr(i) for i in items[:_SHOWN])
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return f"[{shown}{more}]"
