"""Images/s of retraining and evaluating ResNet-56 on CIFAR-shaped data, three ways.

(a) the suite's loop: ``pruning_suite.engine.train.train`` and ``evaluate`` on a uint8 split that lives
    on the device, normalized, cropped and flipped there in batches;
(b) a plain PyTorch loop over a torchvision ``DataLoader`` of PIL images with the standard CIFAR
    transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), as pruning
    repositories write it (``loss.item()`` every step);
(c) a bare loop over the same data already normalized on the device, no augmentation, nothing
    but forward, loss, backward and the SGD step: the floor, so (a) vs (c) is the suite's overhead.

Same model (ResNet-56 from ``pruning_suite.engine.models``, identical initial weights), optimizer (SGD,
momentum 0.9, weight decay 5e-4) and batch size in all three; on CUDA all three run bf16 autocast
with channels_last (the suite's fast path), on the CPU fp32. The data is random uint8 (speed does
not depend on pixel values). Warm-up steps are not timed. The timed steps are split into rounds
that interleave the three loops (who goes first rotates), so a change in machine load hits all
three alike. On the CPU every step and evaluation batch is also timed on its own and the table
leads with the median, which a neighbour's burst of work cannot move; on CUDA only whole rounds
are timed (bracketed by ``torch.cuda.synchronize``), as timing single steps would stall the GPU.

After the table it projects the hours of Table 6's grid on this device from the suite loop's
images/s (median step on the CPU, whole rounds on CUDA): the base model's epochs (200, from
protocol ``cifar10-resnet56``) and 2 LR arms (``cifar10-resnet56``, ``-lr1e-3``) x 4 ratios x
3 seeds x 120 retraining epochs = 2,880 epochs, each training on 45,000 images and evaluating
the 5,000 validation and 10,000 test images. The dense ResNet-56's speed gives an upper bound;
a second figure scales each ratio's runs by its pruned MACs / dense MACs (the suite's L1
pruning of that ratio, as ``pruning-suite prune`` counts them), a lower bound, since small
convolutions do not speed up in proportion (least of all on a GPU). ``--pack P`` also times P
copies of the suite loop training side by side in P processes (each with its own model and
data) and projects the grid with P runs at a time; the base model trains alone. Without it,
packing is not measured. The projection ignores each run's fixed costs (process start, pruning,
latency measurement): ``bench_table6_grid.py`` measures those.

Usage: ``python benchmarks/bench_retrain_loop.py [--device cuda] [--batch-size 128 512]
[--images N] [--steps N] [--rounds R] [--eval-images N] [--workers N] [--compile]
[--threads N] [--clock wall|cpu] [--pack P]``. Defaults: CPU 5,000 images, batch 128, 9 timed steps in 3
rounds (3-5 minutes on 2 cores); CUDA 50,000 images, batch sizes 128 and 512, 240 timed steps in
3 rounds. On a machine shared with other work, ``--threads 1 --clock cpu`` times each loop by
the CPU time it used itself, which the neighbours cannot inflate.
"""

from __future__ import annotations

import pruning_suite  # noqa: F401  (first: pins the CPU numerics before torch loads)

# isort: split

import argparse
import copy
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from pruning_suite.data import fastpath
from pruning_suite.data.datasets import DataSplits, Split, augment
from pruning_suite.engine.measure import measure
from pruning_suite.engine.models import build_model
from pruning_suite.engine.pruning import (
    apply_structured_pruning,
    find_prunable_layers,
    select_removals,
)
from pruning_suite.engine.train import evaluate, train
from pruning_suite.protocol.catalogue import load_protocol
from pruning_suite.protocol.spec import ArchitectureSpec, Augmentation, TrainRecipe

GRID = ("cifar10-resnet56", "cifar10-resnet56-lr1e-3")  # Table 6's two LR arms
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000  # images in CIFAR-10's training and test files
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # cifar10-resnet56
LR, MOMENTUM, WEIGHT_DECAY, PAD = 0.1, 0.9, 5e-4, 4


class Clock:
    """Wall-clock time of one loop's timed work: per step (``tick``) and per round (``start``/``stop``)."""

    def __init__(self, device: torch.device, now: Callable[[], float] = time.perf_counter) -> None:
        self.cuda, self.now = device.type == "cuda", now
        self.steps: list[tuple[float, int]] = []  # (seconds, images) of each step or batch
        self.seconds, self.images = 0.0, 0
        self._started = self._last = 0.0

    def start(self) -> None:
        self._sync()
        self._started = self._last = self.now()

    def tick(self, images: int) -> None:
        now = self.now()
        self.steps.append((now - self._last, images))
        self._last = now
        self.images += images

    def stop(self) -> None:
        self._sync()
        self.seconds += self.now() - self._started

    def overall(self) -> float:
        """Images/s over the whole timed work."""
        return self.images / self.seconds

    def median(self) -> float:
        """Images/s of the median step (CPU only: unsynchronized CUDA steps mean nothing)."""
        return statistics.median(images / seconds for seconds, images in self.steps)

    def best(self) -> float:
        """Images/s of the fastest step: the loop's own cost, least disturbed by other work."""
        return max(images / seconds for seconds, images in self.steps)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


class PilCifar(Dataset):
    """A torchvision-style CIFAR dataset: an HWC uint8 array in memory, a PIL image per item."""

    def __init__(self, data: np.ndarray, targets: np.ndarray, transform: Callable) -> None:
        self.data, self.targets, self.transform = data, targets.tolist(), transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


class SuiteLoop:
    """(a) ``pruning_suite.engine.train.train`` with ``max_batches`` (empty val/test), and ``evaluate``."""

    name = "(a) suite: pruning_suite.engine.train"

    def __init__(self, model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, args) -> None:
        self.model, self.args, self.calls = model, args, 0
        self.eval_model = torch.compile(model) if args.compile else model  # as train() does
        empty = Split(pixels[:0], labels[:0], 255, MEAN, STD)
        self.data = DataSplits(Split(pixels, labels, 255, MEAN, STD), empty, empty, "0" * 64, "")
        self.recipe = TrainRecipe(
            epochs=1,
            batch_size=args.batch,
            lr_schedule=f"0:{LR}",
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            augmentation=Augmentation(random_crop_padding=PAD, horizontal_flip=True),
        )

    def train_steps(self, steps: int, clock: Clock) -> None:
        self.calls += 1
        batch, data, recipe = self.args.batch, self.data, self.recipe
        tick = lambda optimizer: clock.tick(batch)  # noqa: E731  (steps * batch <= images)
        train(
            self.model,
            data,
            recipe,
            self.calls,
            None,
            steps,
            after_step=tick,
            compile_model=self.args.compile,
        )

    def data_batches(self, n: int) -> Iterator[None]:
        """What ``train`` does to get each batch: gather, normalize, crop, flip, on the device."""
        split, generator = self.data.train, torch.Generator().manual_seed(0)
        order = fastpath.to_device(torch.randperm(len(split), generator=generator), split.device)
        for start in range(0, n * self.args.batch, self.args.batch):
            idx = order[start : start + self.args.batch]
            inputs = augment(
                split.batch(idx), self.recipe.augmentation, generator, mean=MEAN, std=STD
            )
            fastpath.with_device_layout(inputs), split.labels[idx]
            yield

    def evaluate(self, images: int, clock: Clock) -> None:
        test = self.data.train
        head = Split(test.images[:images], test.labels[:images], 255, MEAN, STD)
        model = self.eval_model
        hook = model.register_forward_hook(lambda module, inputs, outputs: clock.tick(len(outputs)))
        try:
            evaluate(model, head, self.args.batch)
        finally:
            hook.remove()


class DataLoaderLoop:
    """(b) The loop of pruning repositories: a DataLoader of PIL images, transforms on the CPU."""

    name = "(b) torchvision DataLoader"

    def __init__(self, model: nn.Module, hwc: np.ndarray, labels: np.ndarray, args, device) -> None:
        self.model, self.device = model, device
        normalize = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
        augment = [transforms.RandomCrop(32, padding=PAD), transforms.RandomHorizontalFlip()]
        train_set = PilCifar(hwc, labels, transforms.Compose(augment + normalize))
        test_set = PilCifar(hwc, labels, transforms.Compose(normalize))
        options = {
            "batch_size": args.batch,
            "num_workers": args.workers,
            "pin_memory": device.type == "cuda",
            "persistent_workers": args.workers > 0,
        }
        self.train_loader = DataLoader(train_set, shuffle=True, **options)
        self.test_loader = DataLoader(test_set, shuffle=False, **options)
        self.optimizer = _sgd(model)
        self.batches: Iterator = iter(())

    def _next(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.train_loader)
            return next(self.batches)

    def data_batches(self, n: int) -> Iterator[None]:
        for _ in range(n):
            inputs, targets = self._next()
            inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)
            yield

    def train_steps(self, steps: int, clock: Clock) -> None:
        self.model.train()
        train_loss = 0.0
        for _ in range(steps):
            inputs, targets = self._next()
            inputs = inputs.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            with fastpath.autocast(self.device):
                loss = F.cross_entropy(self.model(fastpath.with_device_layout(inputs)), targets)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            train_loss += loss.item()
            clock.tick(len(targets))

    @torch.no_grad()
    def evaluate(self, images: int, clock: Clock) -> None:
        self.model.eval()
        correct = seen = 0
        for inputs, targets in self.test_loader:
            inputs = inputs.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            with fastpath.autocast(self.device):
                outputs = self.model(fastpath.with_device_layout(inputs))
            correct += (outputs.argmax(1) == targets).sum().item()
            seen += len(targets)
            clock.tick(len(targets))
            if seen >= images:
                break


class BareLoop:
    """(c) The floor: pre-normalized device tensors, no augmentation, no per-step sync."""

    name = "(c) bare loop, device tensors"

    def __init__(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, args) -> None:
        self.model, self.inputs, self.labels, self.batch = model, inputs, labels, args.batch
        self.optimizer = _sgd(model)
        self.generator = torch.Generator().manual_seed(0)

    def data_batches(self, n: int) -> Iterator[None]:
        order = torch.randperm(len(self.labels), generator=self.generator).to(self.inputs.device)
        for start in range(0, n * self.batch, self.batch):
            idx = order[start : start + self.batch]
            fastpath.with_device_layout(self.inputs[idx]), self.labels[idx]
            yield

    def train_steps(self, steps: int, clock: Clock) -> None:
        self.model.train()
        device = self.inputs.device
        order = torch.randperm(len(self.labels), generator=self.generator).to(device)
        total = torch.zeros((), device=device)
        for step in range(steps):
            idx = order[step * self.batch : (step + 1) * self.batch]
            with fastpath.autocast(device):
                outputs = self.model(fastpath.with_device_layout(self.inputs[idx]))
                loss = F.cross_entropy(outputs, self.labels[idx])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            clock.tick(len(idx))

    @torch.no_grad()
    def evaluate(self, images: int, clock: Clock) -> None:
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.inputs.device)
        with fastpath.autocast(self.inputs.device):
            for start in range(0, images, self.batch):
                window = slice(start, min(start + self.batch, images))
                outputs = self.model(fastpath.with_device_layout(self.inputs[window]))
                correct += (outputs.argmax(1) == self.labels[window]).sum()
                clock.tick(len(outputs))
        int(correct)


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def _loops(args: argparse.Namespace, device: torch.device) -> list:
    """The three loops on the same random data, each with its own copy of the same model."""
    gen = torch.Generator().manual_seed(0)
    hwc = torch.randint(0, 256, (args.images, 32, 32, 3), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    pixels, targets = hwc.permute(0, 3, 1, 2).contiguous().to(device), labels.to(device)
    torch.manual_seed(0)
    base = build_model(ArchitectureSpec(name="resnet56"), (3, 32, 32), 10)
    models = [copy.deepcopy(base).to(device) for _ in range(3)]
    if device.type == "cuda":  # the suite's train() and evaluate() set their model's layout
        for model in models[1:]:
            model.to(memory_format=torch.channels_last)
    if args.compile:
        models[1:] = [torch.compile(model) for model in models[1:]]
    inputs = Split(pixels, targets, 255, MEAN, STD).inputs
    return [
        SuiteLoop(models[0], pixels, targets, args),
        DataLoaderLoop(models[1], hwc.numpy(), labels.numpy(), args, device),
        BareLoop(models[2], inputs, targets, args),
    ]


def _bench_batch_size(args: argparse.Namespace, device: torch.device) -> None:
    """Build the three loops for ``args.batch``, warm them up, time them, print the table."""
    per_round = args.steps // args.rounds
    if per_round * args.batch > args.images or args.eval_images > args.images:
        raise SystemExit(
            f"{per_round} steps per round x batch {args.batch} (or --eval-images "
            f"{args.eval_images}) > --images {args.images}: pass more --images or --rounds"
        )
    loops = _loops(args, device)
    for loop in loops:  # warm-up: allocator, autotuning, compilation; not timed
        loop.train_steps(args.warmup, Clock(device))
        loop.evaluate(args.batch, Clock(device))
    train_clocks = {loop.name: Clock(device, args.now) for loop in loops}
    eval_clocks = {loop.name: Clock(device, args.now) for loop in loops}
    for round_index in range(args.rounds):
        order = loops[round_index % 3 :] + loops[: round_index % 3]
        for loop in order:
            _timed(
                lambda clock, loop=loop: loop.train_steps(per_round, clock), train_clocks[loop.name]
            )
        for loop in order:
            _timed(
                lambda clock, loop=loop: loop.evaluate(args.eval_images, clock),
                eval_clocks[loop.name],
            )
    batches = min(20, args.images // args.batch)
    data_ms = {loop.name: _data_path_ms(loop, device, batches, args.now) for loop in loops}
    _print_table(args, device, [loop.name for loop in loops], train_clocks, eval_clocks, data_ms)
    suite = loops[0].name
    if device.type == "cuda":
        rates = (train_clocks[suite].overall(), eval_clocks[suite].overall())
    else:
        rates = (train_clocks[suite].median(), eval_clocks[suite].median())
    packed = _packed_rates(args, device) if args.pack > 1 else None
    _print_projection(args, rates, packed)


def _timed(work: Callable[[Clock], None], clock: Clock) -> None:
    clock.start()
    work(clock)
    clock.stop()


def _data_path_ms(loop, device: torch.device, batches: int, now: Callable[[], float]) -> float:
    """Median milliseconds one loop spends producing a training batch on the device."""
    times, last = [], now()
    for _ in loop.data_batches(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamp = now()
        times.append(stamp - last)
        last = stamp
    return 1e3 * statistics.median(times)


def _print_table(args, device, names: list[str], train_clocks, eval_clocks, data_ms) -> None:
    cuda = device.type == "cuda"
    if cuda:
        where, precision = torch.cuda.get_device_name(device), "bf16 autocast, channels_last"
    else:
        clock = "process CPU time" if args.clock == "cpu" else "wall clock"
        where, precision = f"CPU ({torch.get_num_threads()} threads, {clock})", "fp32"
    per_round = args.steps // args.rounds
    print(
        f"\nResNet-56, random CIFAR-shaped uint8 data ({args.images} images), batch {args.batch}, "
        f"{where}, {precision}, torch {torch.__version__}\n{per_round * args.rounds} timed train "
        f"steps and {args.rounds} x {args.eval_images} eval images per loop in {args.rounds} "
        f"interleaved rounds, after {args.warmup} warm-up step(s); DataLoader workers "
        f"{args.workers}" + ("; torch.compile" if args.compile else "")
    )
    if cuda:
        columns = ("train", "eval")
        rows = {n: (train_clocks[n].overall(), eval_clocks[n].overall()) for n in names}
    else:
        columns = ("train best", "train median", "eval best", "eval median")
        rows = {
            n: (
                train_clocks[n].best(),
                train_clocks[n].median(),
                eval_clocks[n].best(),
                eval_clocks[n].median(),
            )
            for n in names
        }
    print(f"{'images/s':32}" + "".join(f"{c:>13}" for c in columns) + f"{'data ms/batch':>15}")
    for name in names:
        print(
            f"{name:32}"
            + "".join(f"{rate:13.1f}" for rate in rows[name])
            + f"{data_ms[name]:15.2f}"
        )
    suite, loader, bare = names
    for other, label in ((loader, "DataLoader"), (bare, "bare loop")):
        ratios = "".join(f"{a / b:13.3f}" for a, b in zip(rows[suite], rows[other], strict=True))
        print(f"{'suite / ' + label:32}{ratios}")
    bare_step_ms = 1e3 * args.batch / rows[bare][0]
    print(
        f"suite's data path: {data_ms[suite]:.2f} ms/batch = "
        f"{100 * data_ms[suite] / bare_step_ms:.2f}% of the bare loop's fastest train step; "
        f"load average over the last minute at the end: {os.getloadavg()[0]:.2f}"
    )


def _pack_worker(args: argparse.Namespace, device: str, barrier, results) -> None:
    """One of ``--pack`` processes: the suite loop on its own model and data, timed between
    barriers so that all of them train (then evaluate) at once."""
    from pruning_suite.run.config import cpu_threads

    device = torch.device(device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or cpu_threads())  # as each run of study --jobs
    else:
        torch.cuda.set_device(device)
    gen = torch.Generator().manual_seed(os.getpid())
    pixels = torch.randint(0, 256, (args.images, 3, 32, 32), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.images,), generator=gen)
    model = build_model(ArchitectureSpec(name="resnet56"), (3, 32, 32), 10).to(device)
    loop = SuiteLoop(model, pixels.to(device), labels.to(device), args)
    loop.train_steps(args.warmup, Clock(device))
    loop.evaluate(args.batch, Clock(device))
    stamps = []
    for work in (
        lambda: loop.train_steps(args.steps // args.rounds, Clock(device)),
        lambda: loop.evaluate(args.eval_images, Clock(device)),
    ):
        barrier.wait()
        started = time.monotonic()  # system-wide, so comparable between the processes
        work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append((started, time.monotonic()))
    results.put(stamps)


def _packed_rates(args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Images/s of ``--pack`` suite loops side by side, summed: (train, eval)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(args.pack), context.Queue()
    devices = [device] * args.pack
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        devices = [torch.device(f"cuda:{k % torch.cuda.device_count()}") for k in range(args.pack)]
    workers = [
        context.Process(target=_pack_worker, args=(args, str(d), barrier, results)) for d in devices
    ]
    for worker in workers:
        worker.start()
    stamps = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    images = (args.steps // args.rounds * args.batch, args.eval_images)
    rates = []
    for phase, per_process in enumerate(images):
        seconds = max(s[phase][1] for s in stamps) - min(s[phase][0] for s in stamps)
        rates.append(args.pack * per_process / seconds)
    return rates[0], rates[1]


def _mac_fractions() -> dict[str, float]:
    """Pruned MACs / dense MACs of ResNet-56 at each target of ``cifar10-resnet56`` (L1 scores
    on a random init; the removed counts, hence the MACs, do not depend on the weights)."""
    protocol = load_protocol(GRID[0])
    shape = tuple(protocol.dataset.input_shape)
    fractions = {}
    for target in protocol.targets:
        torch.manual_seed(0)
        model = build_model(protocol.architecture, shape, protocol.dataset.num_classes)
        dense = measure(model, shape).macs
        layers = find_prunable_layers(model, list(protocol.prunable_layers))
        (ratio,) = target.layer_ratios.values()
        scores = {layer.name: layer.module.weight.abs().flatten(1).mean(1) for layer in layers}
        removals = select_removals(scores, {layer.name: ratio for layer in layers}, layers)
        apply_structured_pruning(model, removals, torch.randn(1, *shape))
        fractions[target.id] = measure(model, shape).macs / dense
    return fractions


def _print_projection(args, rates: tuple[float, float], packed) -> None:
    """Hours of Table 6's grid at the suite loop's measured images/s (see the module docstring)."""
    protocols = [load_protocol(p) for p in GRID]
    first = protocols[0]
    val = first.dataset.val_size
    epoch_s = (CIFAR_TRAIN - val) / rates[0] + (val + CIFAR_TEST) / rates[1]
    base_h = first.base_model.recipe.epochs * epoch_s / 3600
    fractions = _mac_fractions()
    runs = sum(len(p.targets) * p.seeds for p in protocols)
    grid_epochs = sum(p.retraining.epochs * len(p.targets) * p.seeds for p in protocols)
    dense_h = grid_epochs * epoch_s / 3600
    scaled_h = sum(
        p.retraining.epochs * p.seeds * fractions[t.id] * epoch_s / 3600
        for p in protocols
        for t in p.targets
    )
    print(
        f"Table 6 grid projected at the suite loop's {rates[0]:.1f} train / {rates[1]:.1f} eval "
        f"images/s (an epoch: {CIFAR_TRAIN - val:,} trained, {val + CIFAR_TEST:,} evaluated, "
        f"{epoch_s:.1f} s): base model {first.base_model.recipe.epochs} epochs {base_h:.1f} h; "
        f"{runs} runs, {grid_epochs:,} retraining epochs: {dense_h:.1f} h at dense speed, "
        f"{scaled_h:.1f} h scaled by pruned MACs ("
        + ", ".join(f"{t} {100 * f:.1f}%" for t, f in fractions.items())
        + ")"
    )
    print(f"  1 run at a time: {base_h + scaled_h:.1f} to {base_h + dense_h:.1f} h")
    if packed is None:
        print("  packed runs: not measured (pass --pack P to time P runs side by side)")
        return
    gain = packed[0] / rates[0]  # training dominates an epoch
    print(
        f"  {args.pack} runs packed: {packed[0]:.1f} train / {packed[1]:.1f} eval images/s "
        f"summed ({gain:.2f}x one run's train rate): "
        f"{base_h + scaled_h / gain:.1f} to {base_h + dense_h / gain:.1f} h"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--batch-size", type=int, nargs="+", help="default 128 (CPU), 128 512 (CUDA)"
    )
    parser.add_argument("--images", type=int, help="default 5000 (CPU), 50000 (CUDA)")
    parser.add_argument(
        "--steps", type=int, help="timed train steps per loop; default 9 (CPU), 240 (CUDA)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument(
        "--warmup", type=int, help="untimed train steps; default 1 (CPU), 20 (CUDA)"
    )
    parser.add_argument(
        "--eval-images", type=int, help="per round; default 512 (CPU), 10000 (CUDA)"
    )
    parser.add_argument("--workers", type=int, help="DataLoader workers; default 0 (CPU), 8 (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile all three models")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: time steps by this process's CPU time, for a shared machine (use --threads 1)",
    )
    parser.add_argument(
        "--pack", type=int, default=1, help="also time P suite loops side by side (default 1: not)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.now = time.process_time if args.clock == "cpu" else time.perf_counter
    cuda = device.type == "cuda"
    defaults = {
        "batch_size": [128, 512] if cuda else [128],
        "images": 50_000 if cuda else 5_000,
        "steps": 240 if cuda else 9,
        "warmup": 20 if cuda else 1,
        "eval_images": 10_000 if cuda else 512,
        "workers": 8 if cuda else 0,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for batch in args.batch_size:
        args.batch = batch
        _bench_batch_size(args, device)


if __name__ == "__main__":
    main()
