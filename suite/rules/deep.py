"""Deep rules (``validate --deep``): recount what a submission claims instead of trusting it.

A file rule checks that a submission's numbers agree with each other; a forger who keeps them
consistent (MACs x4, as at another input resolution, with the speedup kept) passes. These rules
rebuild the protocol's architecture and recount (issue 14, "validate never recomputes what it
can"):

- R-DEEP-1: the dense model's params and MACs, and the pruned ones after removing each layer's
  recorded ``before - after`` units (filter granularity: which units go does not change counts);
- R-DEEP-2: the saved model (``--save-model``), bounded in size before it is read, loaded with
  ``torch.load(weights_only=True)`` and rebuilt: its widths, its zeros (weight granularity), its
  params and MACs, and its weight digest (``evidence.weights_sha256``) are the claimed ones.

They import torch and build models, so they run only when asked (scope ``"deep"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .rule import CheckContext, Finding

__all__ = ["MAX_MODEL_BYTES", "check_recounted_counts", "check_saved_model"]

MAX_MODEL_BYTES = 2 << 30
"""The largest saved model ``validate --deep`` reads (2 GiB; ResNet-50 in float32 is 98 MB)."""


def check_recounted_counts(ctx: CheckContext) -> Iterator[Finding]:
    """R-DEEP-1: the params and MACs recounted from the architecture and the recorded widths
    are the claimed ones (dense always; pruned for filter granularity)."""
    if ctx.protocol is None:
        return
    from ..engine.measure import measure

    sub, protocol = ctx.submission, ctx.protocol
    model = _dense_model(protocol)
    shape = tuple(protocol.dataset.input_shape)
    dense = measure(model, shape)
    m = sub.pruning
    yield from _compare("$.pruning.params_dense", m.params_dense, dense.params)
    yield from _compare("$.pruning.macs_dense", m.macs_dense, dense.macs)
    if m.granularity != "filter":
        return
    problem = _prune_to_claimed_widths(model, sub, protocol)
    if problem is not None:
        yield problem
        return
    pruned = measure(model, shape)
    yield from _compare("$.pruning.params_pruned", m.params_pruned, pruned.params)
    yield from _compare("$.pruning.macs_pruned", m.macs_pruned, pruned.macs)


def check_saved_model(ctx: CheckContext) -> Iterator[Finding]:
    """R-DEEP-2: the saved model's widths, zeros, params, MACs and weight digest are the
    claimed ones (read only below :data:`MAX_MODEL_BYTES`, with ``weights_only=True``)."""
    sub, saved = ctx.submission, ctx.submission.pruned_model
    if saved is None or ctx.path is None or ctx.protocol is None:
        return
    path = ctx.path.parent / saved.file
    if path.is_symlink() or not path.is_file():
        return  # R-FILE-1 says so
    if path.stat().st_size > MAX_MODEL_BYTES:
        yield Finding(
            "$.pruned_model.file",
            f"{saved.file} is {path.stat().st_size:,} bytes, over the {MAX_MODEL_BYTES:,} "
            "bytes validate --deep reads",
            "recount it on a machine meant for it, or drop the saved model",
            severity="warning",
        )
        return
    yield from _saved_model_findings(path, sub, ctx.protocol)


def _saved_model_findings(path: Path, sub: Any, protocol: Any) -> Iterator[Finding]:
    from ..engine.checkpoint import layer_widths, load_pruned
    from ..engine.evidence import weights_sha256
    from ..engine.measure import measure, measure_effective
    from ..errors import PruningSuiteError

    try:
        model = load_pruned(path, lambda: _dense_model(protocol))
    except PruningSuiteError as err:
        yield Finding("$.pruned_model.file", f"{path.name} cannot be rebuilt: {err.message}")
        return
    widths, weight = layer_widths(model), sub.pruning.granularity == "weight"
    for i, layer in enumerate(sub.pruning.layers):
        module = model.get_submodule(layer.name)
        found = int((module.weight != 0).sum()) if weight else widths.get(layer.name)
        if found != layer.after:
            what = "non-zero weights" if weight else "units"
            yield Finding(
                f"$.pruning.layers[{i}].after",
                f"layer {layer.name!r} has {found} {what} in {path.name}; the file claims {layer.after}",
            )
    shape = tuple(protocol.dataset.input_shape)
    counts = measure_effective(model, shape) if weight else measure(model, shape)
    claimed = (
        (sub.pruning.macs_effective or sub.pruning.macs_pruned)
        if weight
        else sub.pruning.macs_pruned
    )
    yield from _compare("$.pruning.macs_pruned", claimed, counts.macs, path.name)
    if sub.evidence is not None and weights_sha256(model) != sub.evidence.weights_sha256:
        yield Finding(
            "$.evidence.weights_sha256",
            f"the weights in {path.name} are not the ones the run's evidence digests",
            "the saved model belongs to another run (or was edited)",
        )


def _dense_model(protocol: Any) -> Any:
    from ..engine.models import build_model

    spec = protocol.dataset
    return build_model(protocol.architecture, spec.input_shape, spec.num_classes).eval()


def _prune_to_claimed_widths(model: Any, sub: Any, protocol: Any) -> Finding | None:
    """Remove the lowest-index ``before - after`` units of every recorded layer, in place."""
    import torch

    from ..engine.layers import find_prunable_layers
    from ..engine.pruning import select_removals
    from ..engine.surgery import apply_structured_pruning
    from ..errors import PruningSuiteError

    layers = find_prunable_layers(model, protocol.prunable_layers)
    units = {layer.name: layer.num_units for layer in layers}
    claimed = {w.name: w for w in sub.pruning.layers}
    if set(claimed) != set(units) or any(claimed[n].before != units[n] for n in units):
        return Finding(
            "$.pruning.layers",
            "the recorded layers and widths are not the protocol architecture's prunable layers",
        )
    ratios = {n: (claimed[n].before - claimed[n].after) / units[n] for n in units}
    scores = {layer.name: torch.zeros(layer.num_units) for layer in layers}
    try:
        removals = select_removals(scores, ratios, layers)
        apply_structured_pruning(model, removals, torch.zeros(2, *protocol.dataset.input_shape))
    except PruningSuiteError as err:
        return Finding("$.pruning.layers", f"the recorded widths cannot be built: {err.message}")
    return None


def _compare(
    where: str, claimed: int, recounted: int, source: str = "the architecture"
) -> Iterator[Finding]:
    if claimed != recounted:
        yield Finding(
            where,
            f"{where[len('$.pruning.') :]} is {claimed:,} but recounting {source} gives {recounted:,}",
            "a submission's counts are the suite's measurements; rerun instead of editing",
        )
