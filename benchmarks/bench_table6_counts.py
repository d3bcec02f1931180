"""Which ResNet-56 and which counting convention give the headers of Table 6 (Wang et al.)?

Table 6 of arXiv 2301.05219 heads its columns "0.3 (31.14% / 1.45x)", "0.5 (49.82% / 1.99x)",
"0.7 (70.57% / 3.59x)", "0.9 (90.39% / 11.41x)": ResNet-56 on CIFAR-10 after L1 pruning of
``layer*.conv1``. For both shortcut options of the suite's ``resnet56`` this prunes each ratio with
the suite's pipeline (``select_removals`` on mean |w| scores, ``apply_structured_pruning``) and
prints sparsity = 1 - params / dense params under three conventions, and speedup = dense MACs /
MACs:

- ``all``: every parameter, BatchNorm included (the suite's ``measure``);
- ``conv+lin``: weights and biases of Conv2d and Linear only (the authors' ``get_n_params_``);
- ``conv``: Conv2d weights only.

MACs are those of every Conv/Linear (the suite's ``measure``, and the authors' ``get_n_flops_``
up to its factor 2, which cancels in the ratio). Usage::

    python benchmarks/bench_table6_counts.py
"""

from __future__ import annotations

import pruning_suite  # noqa: F401  (first: pins the CPU numerics before torch loads)

# isort: split

import torch
from torch import nn

from pruning_suite.engine.measure import measure
from pruning_suite.engine.models import build_model
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    find_prunable_layers,
    select_removals,
)
from pruning_suite.protocol.spec import ArchitectureSpec

SHAPE = (3, 32, 32)
TABLE6 = {0.3: (31.14, 1.45), 0.5: (49.82, 1.99), 0.7: (70.57, 3.59), 0.9: (90.39, 11.41)}


def counts(model: nn.Module) -> dict[str, int]:
    """Parameters under the three conventions, and MACs per 3x32x32 example."""

    def params(types: tuple[type, ...], weights_only: bool = False) -> int:
        return sum(
            p.numel()
            for m in model.modules()
            if isinstance(m, types)
            for name, p in m.named_parameters(recurse=False)
            if not weights_only or name == "weight"
        )

    measured = measure(model, SHAPE)
    return {
        "all": measured.params,
        "conv+lin": params((nn.Conv2d, nn.Linear)),
        "conv": params((nn.Conv2d,), weights_only=True),
        "macs": measured.macs,
    }


def pruned(shortcut: str, ratio: float) -> nn.Module:
    """ResNet-56 with ``ceil(ratio * n)`` lowest-L1 filters of every ``layer*.conv1`` removed."""
    torch.manual_seed(0)
    model = build_model(ArchitectureSpec(name="resnet56", kwargs={"shortcut": shortcut}), SHAPE, 10)
    if ratio:
        layers = find_prunable_layers(model, ["layer*.conv1"])
        scores = {layer.name: layer.module.weight.abs().flatten(1).mean(1) for layer in layers}
        removals = select_removals(scores, {layer.name: ratio for layer in layers}, layers)
        apply_structured_pruning(model, removals, torch.randn(1, *SHAPE))
    return model


def main() -> None:
    print("option ratio | sparsity % all / conv+lin / conv | speedup | paper")
    for shortcut in ("A", "B"):
        dense = counts(pruned(shortcut, 0.0))
        print(f"{shortcut}      dense | params {dense['all']:,} / {dense['conv+lin']:,} / ", end="")
        print(f"{dense['conv']:,} | MACs {dense['macs']:,}")
        for ratio, (paper_sparsity, paper_speedup) in TABLE6.items():
            now = counts(pruned(shortcut, ratio))
            sparsity = [100 * (1 - now[k] / dense[k]) for k in ("all", "conv+lin", "conv")]
            speedup = dense["macs"] / now["macs"]
            shown = " / ".join(f"{s:6.3f}" for s in sparsity)
            print(
                f"{shortcut}      {ratio:5} | {shown} | {speedup:7.3f}x | "
                f"{paper_sparsity}% / {paper_speedup}x"
            )


if __name__ == "__main__":
    main()
