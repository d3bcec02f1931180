"""Time Table 6's grid with the suite, epochs scaled down, and project the full grid's hours.

Table 6 of Wang et al. (arXiv 2301.05219), as the suite encodes it: protocols
``cifar10-resnet56`` (retraining LR 0.01) and ``cifar10-resnet56-lr1e-3`` (LR 0.001), each with
targets l1-30 .. l1-90 and 3 seeds: 24 runs of ``l1norm`` sharing one base model. This script
writes random CIFAR-10 files in torchvision's layout (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``; speed does not depend on pixel values) with ``--images`` training images (of
which a tenth is the validation split) and ``--images / 5`` test images: the proportions of
CIFAR-10 (45,000 / 5,000 / 10,000), so every epoch's work (train, then evaluate validation and
test) is ``--images / 50,000`` of a full epoch's. It copies the two protocols with the base
recipe cut to ``--base-epochs``, retraining to ``--epochs`` and the validation split to a
tenth (the LR schedules unchanged: their milestones lie past the cut), trains the base model
once (``pruning_suite.run.zoo.train_base``, timed alone, as a study's first run would) and runs
the grid as a study (``run_study``, ``LocalExecutor(--jobs)``) into a temporary folder with a
temporary base-model cache.

It prints the wall time, retraining epochs per second over all runs, and the projected hours of
the full grid on this device: 200 base epochs and 24 x 120 retraining epochs of 50,000 images,
scaling the measured seconds that grow with epochs and images (base training; each run's
retraining, ``timings.retraining``) by epochs and by ``50,000 / --images``, and keeping the rest
of each run (process start, pruning, evaluation of the pruned model, latency) as measured. The
pruned networks of each ratio are what is retrained and timed, so no MAC scaling is needed; the
projection ignores per-epoch costs that do not grow with images (it overestimates them when
``--images`` is small) and evaluation after pruning growing with images (underestimated).

Usage::

    python benchmarks/bench_table6_grid.py [--images 500] [--epochs 1] [--base-epochs 1]
        [--seeds 3] [--targets l1-30 ...] [--jobs 1] [--device cpu|cuda]

With ``--targets`` or ``--seeds`` below the grid's, the projection takes the mean run of those
measured for all 24 (the smaller ratios retrain slower).
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

PROTOCOLS = {"LR 0.01": "cifar10-resnet56", "LR 0.001": "cifar10-resnet56-lr1e-3"}
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000  # images in CIFAR-10's training and test files


def write_cifar10(root: Path, train: int, test: int, seed: int = 0) -> None:
    """Random CIFAR-10 files in torchvision's layout: ``root/cifar-10-batches-py/``
    ``data_batch_1..5`` (``train / 5`` images each) and ``test_batch`` (``test`` images)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else train // 5
        entry = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))


def scaled_protocol(shipped: str, folder: Path, args: argparse.Namespace) -> Path:
    """A copy of protocol ``shipped`` under id ``bench-<shipped>``: base and retraining epochs
    and the validation split cut as ``args`` says; everything else as shipped."""
    from pruning_suite.protocol.catalogue import load_protocol

    text = files("pruning_suite.protocol.files").joinpath(f"{shipped}.toml").read_text()
    full = load_protocol(shipped)
    replacements = {
        f'id = "{shipped}"': f'id = "bench-{shipped}"',
        f"epochs = {full.base_model.recipe.epochs}\n": f"epochs = {args.base_epochs}\n",
        f"epochs = {full.retraining.epochs}\n": f"epochs = {args.epochs}\n",
        f"val_size = {full.dataset.val_size}\n": f"val_size = {args.images // 10}\n",
    }
    for old, new in replacements.items():
        if text.count(old) != 1:
            raise SystemExit(f"{shipped}.toml: expected one {old.strip()!r}; update this script")
        text = text.replace(old, new)
    path = folder / f"bench-{shipped}.toml"
    path.write_text(text)
    copy = load_protocol(str(path))
    assert copy.base_model.recipe.epochs == args.base_epochs
    assert copy.retraining.epochs == args.epochs and copy.dataset.val_size == args.images // 10
    return path


def grid_arms(paths: dict[str, Path], args: argparse.Namespace, data: Path, out: Path) -> list:
    """One study arm per (LR arm, target), one job per seed."""
    from pruning_suite.protocol.catalogue import load_protocol
    from pruning_suite.run.config import RunConfig
    from pruning_suite.studies import Arm

    arms = []
    for label, path in paths.items():
        for target in load_protocol(str(path)).targets:
            if args.targets and target.id not in args.targets:
                continue
            jobs = tuple(
                RunConfig(
                    plugin="l1norm",
                    protocol=str(path),
                    target=target.id,
                    seed=seed,
                    device=args.device,
                    data_dir=data,
                    out=out,
                )
                for seed in range(args.seeds)
            )
            arms.append(Arm(f"{label} {target.id}", jobs))
    return arms


def train_base_alone(path: Path, data: Path, device: str | None) -> float:
    """Train the grid's base model into the cache, as a study's first run would; its seconds."""
    import torch

    from pruning_suite.run.config import cpu_threads, resolve_device
    from pruning_suite.run.zoo import train_base

    before = torch.get_num_threads()
    if resolve_device(device).type == "cpu":
        torch.set_num_threads(cpu_threads())  # the runner's count, so runs reuse this model
    try:
        return train_base(str(path), data, device).seconds
    finally:
        torch.set_num_threads(before)


def report(args, base_seconds: float, grid_seconds: float, result) -> None:
    """Print the measured figures and the projection of the full grid."""
    from pruning_suite.protocol.catalogue import load_protocol

    runs = [sub for subs in result.arms.values() for sub in subs]
    full = load_protocol(PROTOCOLS["LR 0.01"])
    full_runs = len(PROTOCOLS) * len(full.targets) * full.seeds
    images = CIFAR_TRAIN / args.images  # every epoch's work (train, val, test) scales alike
    epochs = len(runs) * args.epochs
    retrain = sum(sub.timings.retraining for sub in runs)
    share = retrain / sum(sub.timings.total for sub in runs)  # of each run's wall time
    per_run = grid_seconds / len(runs)  # wall seconds per run, --jobs side by side included
    grown = per_run * share * images * full.retraining.epochs / args.epochs
    projected = base_seconds * images * full.base_model.recipe.epochs / args.base_epochs
    projected += full_runs * (grown + per_run * (1 - share))
    print(
        f"\nTable 6 grid, scaled: {len(runs)} runs x {args.epochs} retraining epoch(s) "
        f"+ {args.base_epochs} base epoch(s), {args.images} training images "
        f"({args.images // 10} of them validation), {args.images // 5} test images, "
        f"--jobs {args.jobs}, device {args.device or 'default'}"
    )
    print(f"  base model: {base_seconds:.1f} s ({args.base_epochs / base_seconds:.3f} epochs/s)")
    print(
        f"  grid: {grid_seconds:.1f} s wall, {epochs / grid_seconds:.3f} retraining epochs/s "
        f"over all runs; retraining is {100 * share:.0f}% of the runs' own seconds"
    )
    print(
        f"  projected full grid ({full.base_model.recipe.epochs} base epochs + {full_runs} runs x "
        f"{full.retraining.epochs} epochs, {CIFAR_TRAIN:,} images): {projected / 3600:.1f} h"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500, help="training images (x10)")
    parser.add_argument("--epochs", type=int, default=1, help="retraining epochs per run")
    parser.add_argument("--base-epochs", type=int, default=1, help="base-model epochs")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per (LR arm, ratio)")
    parser.add_argument(
        "--targets", nargs="+", help="only these targets (default all: l1-30 .. l1-90)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (study --jobs)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    args = parser.parse_args()
    if args.images < 50 or args.images % 50:
        raise SystemExit("--images must be a multiple of 50 (5 batches, a tenth validation)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PRUNING_SUITE_CACHE"] = str(Path(tmp) / "cache")
        from pruning_suite.studies import LocalExecutor, run_study

        write_cifar10(Path(tmp) / "data", args.images, args.images // 5)
        paths = {label: scaled_protocol(p, Path(tmp), args) for label, p in PROTOCOLS.items()}
        base = train_base_alone(paths["LR 0.01"], Path(tmp) / "data", args.device)
        arms = grid_arms(paths, args, Path(tmp) / "data", Path(tmp) / "subs")
        started = time.perf_counter()
        result = run_study(arms, LocalExecutor(args.jobs), progress=print)
        report(args, base, time.perf_counter() - started, result)


if __name__ == "__main__":
    main()
