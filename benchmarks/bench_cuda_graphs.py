"""Seconds per epoch of the suite's training loop with and without CUDA graphs, and whether the
two train the same weights.

For each protocol asked for (default ``fashion-mnist-lenet5`` and ``cifar10-resnet56``) it builds
the protocol's architecture and random uint8 data of the protocol's image shape (speed does not
depend on pixel values; 55,000 / 45,000 training images as the protocols split them, 5,000
validation and 10,000 test images), then trains two copies of one initial model with the
protocol's retraining recipe cut to ``--epochs`` epochs and the same seed: eagerly
(``train(cuda_graphs=False)``) and with each full batch's step replayed as a CUDA graph
(``cuda_graphs=True``, :mod:`pruning_suite.engine.graphed`). A third copy trains one epoch first,
untimed, so that neither timed copy pays for warming up the device and libraries. Every epoch
(training, then evaluating the validation and test images, which stays eager in both) is timed
on its own, bracketed by ``torch.cuda.synchronize``; the first epoch holds the graph's capture.
It prints the median epoch of each, the speedup of whole epochs, the epoch-log rows side by
side, and the largest difference between the two final state_dicts (0: bit-identical).

On the CPU there are no CUDA graphs: both copies train eagerly (with the suite's CPU threads,
:func:`pruning_suite.run.config.cpu_threads`), and the table says so.

Usage: ``python benchmarks/bench_cuda_graphs.py [--device cuda] [--epochs 3]
[--protocols fashion-mnist-lenet5 cifar10-resnet56] [--images N]``.
"""

from __future__ import annotations

import pruning_suite  # noqa: F401  (first: pins the CPU numerics before torch loads)

# isort: split

import argparse
import copy
import statistics
import time

import torch
from tabulate import tabulate

from pruning_suite.data.datasets import DataSplits, Split
from pruning_suite.engine.models import build_model
from pruning_suite.engine.train import EpochStats, train
from pruning_suite.protocol.catalogue import load_protocol
from pruning_suite.run.config import cpu_threads_in_force

SPLIT_IMAGES = {"fashion-mnist-lenet5": 55_000, "cifar10-resnet56": 45_000}
VAL_IMAGES, TEST_IMAGES = 5_000, 10_000


def _data(protocol, images: int, device: torch.device) -> DataSplits:
    spec = protocol.dataset
    gen = torch.Generator().manual_seed(0)
    total = images + VAL_IMAGES + TEST_IMAGES
    pixels = torch.randint(0, 256, (total, *spec.input_shape), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, spec.num_classes, (total,), generator=gen)
    pixels, labels = pixels.to(device), labels.to(device)

    def split(start: int, stop: int) -> Split:
        return Split(pixels[start:stop], labels[start:stop], 255, spec.mean, spec.std)

    return DataSplits(
        split(0, images), split(images, images + VAL_IMAGES), split(images + VAL_IMAGES, total),
        "0" * 64, "",
    )  # fmt: skip


def _timed_training(model, data, recipe, graphs: bool, device) -> tuple[list[float], list]:
    times, last = [], [time.perf_counter()]

    def on_epoch(row: EpochStats) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    log = train(model, data, recipe, seed=1, on_epoch=on_epoch, cuda_graphs=graphs)
    return times, log


def _bench(protocol_id: str, args: argparse.Namespace, device: torch.device) -> None:
    protocol = load_protocol(protocol_id)
    recipe = protocol.retraining.model_copy(update={"epochs": args.epochs})
    images = args.images or SPLIT_IMAGES.get(protocol_id, 45_000)
    data = _data(protocol, images, device)
    spec = protocol.dataset
    torch.manual_seed(0)
    base = build_model(protocol.architecture, spec.input_shape, spec.num_classes).to(device)
    train(copy.deepcopy(base), data, recipe.model_copy(update={"epochs": 1}), seed=1)  # warm-up
    results = {}
    for graphs in (False, True):
        model = copy.deepcopy(base)
        times, log = _timed_training(model, data, recipe, graphs, device)
        results[graphs] = (times, log, model.state_dict())
    (eager_t, eager_log, eager_sd), (graph_t, graph_log, graph_sd) = results[False], results[True]
    diff = max((eager_sd[k].double() - graph_sd[k].double()).abs().max().item() for k in eager_sd)
    used = "CUDA graphs" if device.type == "cuda" else "eager (no CUDA graphs on the CPU)"
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"\n{protocol_id}: {images} training images, batch {recipe.batch_size}, "
          f"{VAL_IMAGES + TEST_IMAGES} evaluated per epoch, {args.epochs} epochs, {device} "
          f"({_device_name(device)}{threads})")  # fmt: skip
    rows = [
        ["median epoch, s", f"{statistics.median(eager_t):.3f}", f"{statistics.median(graph_t):.3f}"],
        ["first epoch, s", f"{eager_t[0]:.3f}", f"{graph_t[0]:.3f}"],
        ["training images per second of epoch", f"{images / statistics.median(eager_t):,.0f}",
         f"{images / statistics.median(graph_t):,.0f}"],
    ]  # fmt: skip
    for e, g in zip(eager_log, graph_log, strict=True):
        rows.append([f"epoch {e.epoch + 1} loss / val / test",
                     f"{e.train_loss:.5f} / {e.val_top1:.2f} / {e.test_top1:.2f}",
                     f"{g.train_loss:.5f} / {g.val_top1:.2f} / {g.test_top1:.2f}"])  # fmt: skip
    print(tabulate(rows, headers=["", "eager", used]))
    speedup = statistics.median(eager_t) / statistics.median(graph_t)
    shown = f"speedup {speedup:.2f}x" if device.type == "cuda" else "both eager: no speedup to show"
    print(f"{shown}; final weights: max abs difference {diff:.3g}"
          + (" (bit-identical)" if diff == 0 else ""))  # fmt: skip


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cuda, cuda:N or cpu (default: CUDA when present)",
    )
    parser.add_argument("--epochs", type=int, default=3, help="retraining epochs per copy")
    parser.add_argument("--protocols", nargs="+", default=list(SPLIT_IMAGES))
    parser.add_argument("--images", type=int, help="training images (default: the protocol's)")
    args = parser.parse_args()
    device = torch.device(args.device)
    with cpu_threads_in_force(device):  # as a run trains
        for protocol_id in args.protocols:
            _bench(protocol_id, args, device)


if __name__ == "__main__":
    main()
