"""Time the suite's pruning against calling torch-pruning directly (torchvision ResNet-50, CPU).

Removes 50% of the filters of ``conv1`` and ``conv2`` of every Bottleneck (lowest L1 norm, via
``select_removals``) from a randomly initialised ResNet-50, twice on identical copies:

- ``torch-pruning``: build the DependencyGraph, get and check each layer's group, prune it;
- ``suite``: ``apply_structured_pruning`` (the same graph and groups, plus the masked reference
  copy and the verification forward passes);

then times ``measure`` (parameters, and MACs counted two ways) on the pruned model. The suite's
overhead is verification; counting is reported apart. Both results must be identical.

Usage::

    python benchmarks/bench_prune_resnet50.py [--repeats 3] [--size 224] [--threads N]
"""

from __future__ import annotations

import pruning_suite  # noqa: F401  (first: pins the CPU numerics before torch loads)

# isort: split

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch_pruning as tp
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck

from pruning_suite.engine.measure import measure
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    count_params,
    find_prunable_layers,
    select_removals,
)


def removals_for(model: nn.Module) -> dict[str, list[int]]:
    """50% of conv1/conv2 of every Bottleneck, lowest mean |w| first."""
    patterns = [
        f"{name}.conv{i}"
        for name, m in model.named_modules()
        if isinstance(m, Bottleneck)
        for i in (1, 2)
    ]
    layers = find_prunable_layers(model, patterns)
    scores = {layer.name: layer.module.weight.detach().abs().flatten(1).mean(1) for layer in layers}
    return select_removals(scores, {layer.name: 0.5 for layer in layers}, layers)


def prune_with_torch_pruning(
    model: nn.Module, removals: dict[str, list[int]], x: torch.Tensor
) -> None:
    """The same surgery with torch-pruning alone (no verification)."""
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False)
    groups = [
        graph.get_pruning_group(model.get_submodule(name), tp.prune_conv_out_channels, idxs)
        for name, idxs in removals.items()
    ]
    for group in groups:
        assert graph.check_pruning_group(group)
        group.prune()


def timed(fn: Callable[[], object], repeats: int, setup: Callable[[], None]) -> list[float]:
    """Wall-clock seconds of ``fn`` after ``setup``, ``repeats`` times, after one warm-up run."""
    seconds = []
    for _ in range(repeats + 1):
        setup()
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=224, help="input height = width")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    dense = torchvision.models.resnet50().eval()
    x = torch.randn(1, 3, args.size, args.size)
    removals = removals_for(dense)
    box: dict[str, nn.Module] = {}

    def fresh() -> None:
        box["model"] = copy.deepcopy(dense)

    direct = timed(lambda: prune_with_torch_pruning(box["model"], removals, x), args.repeats, fresh)
    by_tp = box["model"]
    suite = timed(lambda: apply_structured_pruning(box["model"], removals, x), args.repeats, fresh)
    by_suite = box["model"]
    counting = timed(
        lambda: measure(by_suite, (3, args.size, args.size)), args.repeats, lambda: None
    )

    same = all(
        torch.equal(a, b)
        for a, b in zip(by_tp.state_dict().values(), by_suite.state_dict().values(), strict=True)
    )
    counts = measure(by_suite, (3, args.size, args.size))
    dense_counts = measure(dense, (3, args.size, args.size))
    print(
        f"torch {torch.__version__}, torch-pruning {tp.__version__}, "
        f"{torch.get_num_threads()} threads, input 1x3x{args.size}x{args.size}, "
        f"{len(removals)} layers pruned by 50%, {args.repeats} repeats (median, min)"
    )
    print(
        f"params {count_params(dense):,} -> {counts.params:,}; "
        f"MACs {dense_counts.macs:,} -> {counts.macs:,}; identical results: {same}"
    )
    for label, seconds in [
        ("torch-pruning directly", direct),
        ("apply_structured_pruning", suite),
        ("measure() on pruned", counting),
    ]:
        print(
            f"{label:<26} {statistics.median(seconds):7.3f} s  (min {min(seconds):.3f} s; "
            f"all {' '.join(f'{s:.3f}' for s in seconds)})"
        )
    overhead = statistics.median(suite) - statistics.median(direct)
    print(
        f"verification overhead    {overhead:7.3f} s  "
        f"({statistics.median(suite) / statistics.median(direct):.2f}x)"
    )


if __name__ == "__main__":
    main()
