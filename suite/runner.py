"""The main job: base model -> method decides -> core prunes and measures -> retrain -> submission.

This module is the table of contents of one run; each step is a named function. The method only
scores (and optionally allocates ratios); the core applies, verifies, measures, retrains,
evaluates and writes the submission (DESIGN.md, "The pipeline of one run").
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .basecache import obtain_base_model
from .data import DataSplits, Split, load_dataset
from .errors import OutputError, PluginError, PruningSuiteError
from .jsonio import write_json_atomic
from .measure import measure
from .method import PruningContext, PruningMethod
from .models import build_model
from .plugins import PluginRegistry, load_registry
from .protocol import ComparisonProtocol, PruningTarget, canonical_json, load_protocol
from .pruning import apply_structured_pruning, find_prunable_layers, select_removals
from .submission import Submission
from .train import EpochStats, evaluate, train

__all__ = ["RunConfig", "RunResult", "compute_run_id", "resolve_device", "run"]

SMOKE_MAX_BATCHES = 20
"""Batches per epoch in ``--smoke`` runs (which are never rankable)."""
SMOKE_MAX_EPOCHS = 2


@dataclass(frozen=True)
class RunConfig:
    """Everything that selects one run (the CLI's ``run`` flags).

    Attributes:
        plugin: Method name (entry-point name).
        protocol: Protocol id or ``.toml`` path; None = the zero-setup default.
        target: Target id; None = the protocol's default target.
        seed: Seeds pruning randomness and retraining.
        method_config: Options for the method's ``Config`` model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None = CUDA when present, else CPU.
        data_dir: Where datasets are looked for first.
        out: Root of the results database; files land in ``out/<protocol>/<method>/<run-id>.json``.
        smoke: Reduced budget (at most 2 epochs of 20 batches per phase), never rankable.
    """

    plugin: str
    protocol: str | None = None
    target: str | None = None
    seed: int = 0
    method_config: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    data_dir: Path | None = None
    out: Path = Path("submissions")
    smoke: bool = False


@dataclass(frozen=True)
class RunResult:
    """A finished run: the submission and where it was written."""

    submission: Submission
    path: Path


class RunObserver:
    """Receives progress events; the CLI's progress display subclasses it. Default: silent."""

    def stage(self, name: str) -> None:
        """A named step starts (``"data"``, ``"base model"``, ``"pruning"``, ``"retraining"``...)."""

    def phase_start(self, phase: str, epochs: int) -> None:
        """A training phase of ``epochs`` epochs starts."""

    def epoch_end(self, phase: str, row: EpochStats) -> None:
        """An epoch of ``phase`` ended."""


def compute_run_id(
    protocol: ComparisonProtocol,
    method: PruningMethod,
    target: PruningTarget,
    seed: int,
    smoke: bool,
) -> str:
    """Short hash (12 hex digits) of protocol id+version, method name+version+config, target, seed, smoke.

    Re-running the same configuration lands on the same file.
    """
    key = {
        "protocol": [protocol.id, protocol.version],
        "method": [method.name, method.version, method.config.model_dump(mode="json")],
        "target": target.id,
        "seed": seed,
        "smoke": smoke,
    }
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:12]


def resolve_device(requested: str | None) -> torch.device:
    """The device to run on: ``requested``, or CUDA when available, else the CPU.

    Raises:
        PruningSuiteError: ``requested`` names CUDA but none is available, or is not a device.
    """
    if requested is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as err:
        raise PruningSuiteError(
            f"unknown device {requested!r}", "use 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PruningSuiteError(
            f"device {requested!r} asked for, but CUDA is not available here", "use --device cpu"
        )
    return device


def run(
    config: RunConfig,
    registry: PluginRegistry | None = None,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run one method on one protocol target with one seed and write its submission.

    Raises:
        PruningSuiteError: Any bad input (unknown protocol/plugin/target, missing dataset, a
            crashing plugin, an unwritable output folder). Nothing is written on error.
    """
    observer = observer or RunObserver()
    started = time.perf_counter()
    protocol = load_protocol(config.protocol)
    target = protocol.target(config.target)
    registry = registry or load_registry()
    method = registry.method(config.plugin, dict(config.method_config))
    run_id = compute_run_id(protocol, method, target, config.seed, config.smoke)
    out_path = _prepare_output(config.out, protocol, method, run_id)
    device = resolve_device(config.device)
    hooks = registry.manager.hook
    hooks.on_run_start(
        run={
            "run_id": run_id,
            "protocol": protocol.id,
            "protocol_version": protocol.version,
            "method": method.name,
            "target": target.id,
            "seed": config.seed,
            "device": str(device),
        }
    )

    observer.stage("data")
    data = _load_data(protocol, config, device)
    max_batches = SMOKE_MAX_BATCHES if config.smoke else None

    observer.stage("base model")
    model = build_model(
        protocol.architecture, protocol.dataset.input_shape, protocol.dataset.num_classes
    ).to(device)
    base_recipe = _budget(protocol.base_model.recipe, config.smoke)
    base = obtain_base_model(
        model,
        protocol,
        data,
        base_recipe,
        config.smoke,
        _epoch_relay("base", observer, hooks),
        max_batches,
        on_train_start=lambda: observer.phase_start("base", base_recipe.epochs),
    )
    base_info = _base_info(model, base, protocol, data)

    observer.stage("pruning")
    t_prune = time.perf_counter()
    dense = measure(model, protocol.dataset.input_shape)
    changes = _prune(model, method, protocol, target, config.seed, data, device)
    pruned = measure(model, protocol.dataset.input_shape)
    pruning_seconds = time.perf_counter() - t_prune
    pruned_top1 = evaluate(model, data.test)

    retrain_recipe = _budget(protocol.retraining, config.smoke)
    observer.phase_start("retraining", retrain_recipe.epochs)
    t_retrain = time.perf_counter()
    torch.manual_seed(config.seed)
    log = train(
        model,
        data,
        retrain_recipe,
        config.seed,
        _epoch_relay("retraining", observer, hooks),
        max_batches,
        (protocol.dataset.mean, protocol.dataset.std),
    )
    retrain_seconds = time.perf_counter() - t_retrain

    submission = _build_submission(
        run_id=run_id,
        protocol=protocol,
        target=target,
        method=method,
        registry=registry,
        config=config,
        device=device,
        data=data,
        base_info=base_info,
        dense=dense,
        pruned=pruned,
        changes=changes,
        pruned_top1=pruned_top1,
        log=log,
        timings={
            "base_model": base.seconds,
            "pruning": pruning_seconds,
            "retraining": retrain_seconds,
            "total": time.perf_counter() - started,
        },
    )
    write_json_atomic(out_path, submission.model_dump(mode="json"))
    hooks.on_run_end(submission=submission.model_dump(mode="json"), path=str(out_path))
    return RunResult(submission, out_path)


def _prepare_output(
    out: Path, protocol: ComparisonProtocol, method: PruningMethod, run_id: str
) -> Path:
    """Create the output folder and prove it writable before any training is spent."""
    folder = Path(out) / protocol.id / method.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{run_id}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OutputError(
            f"cannot write to output folder {folder}: {err.strerror}",
            "pass a writable folder with --out DIR",
        ) from err
    return folder / f"{run_id}.json"


def _load_data(protocol: ComparisonProtocol, config: RunConfig, device: torch.device) -> DataSplits:
    return load_dataset(protocol.dataset, config.data_dir, device=device)


def _budget(recipe: Any, smoke: bool) -> Any:
    """The recipe itself, or its smoke version (at most ``SMOKE_MAX_EPOCHS`` epochs)."""
    if not smoke:
        return recipe
    return recipe.model_copy(update={"epochs": min(recipe.epochs, SMOKE_MAX_EPOCHS)})


def _epoch_relay(phase: str, observer: RunObserver, hooks: Any) -> Callable[[EpochStats], None]:
    def relay(row: EpochStats) -> None:
        observer.epoch_end(phase, row)
        hooks.on_epoch_end(phase=phase, row=row.as_dict())

    return relay


def _base_info(
    model: nn.Module, base: Any, protocol: ComparisonProtocol, data: DataSplits
) -> dict[str, Any]:
    return {
        "checkpoint_sha256": base.checkpoint_sha256,
        "source": base.source,
        "seed": protocol.base_model.seed,
        "dense_val_top1": evaluate(model, data.val),
        "dense_test_top1": evaluate(model, data.test),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": base.seconds,
    }


def _prune(
    model: nn.Module,
    method: PruningMethod,
    protocol: ComparisonProtocol,
    target: PruningTarget,
    seed: int,
    data: DataSplits,
    device: torch.device,
) -> list[tuple[str, int, int]]:
    """Ask the method what to prune, then remove it physically (the core mutates, never the plugin).

    Returns:
        ``(layer name, width before, width after)`` for every prunable layer, in module order.
    """
    model.eval()
    layers = find_prunable_layers(model, protocol.prunable_layers)
    ctx = PruningContext(
        model=model,
        layers=layers,
        ratios={layer.name: target.ratio_for(layer.name) for layer in layers},
        seed=seed,
        generator=torch.Generator().manual_seed(seed),
        device=device,
        calibration_batches=_calibration(data.train, seed),
    )
    before = _state_fingerprint(model)
    scores = _call_plugin(method, "score", ctx)
    ratios = _call_plugin(method, "layer_ratios", ctx)
    if _state_fingerprint(model) != before:
        raise PluginError(
            f"plugin {method.name!r} modified the model while scoring",
            "a method returns scores; the core applies pruning. Work on a copy (copy.deepcopy) if you must",
        )
    removals = select_removals(scores, ratios, layers)
    apply_structured_pruning(model, removals, data.train.inputs[:2])
    return [
        (layer.name, layer.num_units, _width(model.get_submodule(layer.name))) for layer in layers
    ]


def _width(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def _call_plugin(method: PruningMethod, step: str, ctx: PruningContext) -> Any:
    try:
        return getattr(method, step)(ctx)
    except PruningSuiteError:
        raise
    except Exception as err:
        raise PluginError(
            f"plugin {method.name!r} raised {type(err).__name__} in {step}(): {err}",
            f"this is a bug in the plugin {method.name!r}; rerun with --debug for its traceback",
        ) from err


def _state_fingerprint(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _calibration(split: Split, seed: int, batch_size: int = 100) -> Callable[[int], Any]:
    def batches(n: int):
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed)).to(
            split.inputs.device
        )
        for i in range(min(n, (len(split) + batch_size - 1) // batch_size)):
            idx = order[i * batch_size : (i + 1) * batch_size]
            yield split.inputs[idx], split.labels[idx]

    return batches


def _environment(device: torch.device) -> dict[str, Any]:
    import torch_pruning

    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = platform.processor() or platform.machine() or "cpu"
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_pruning": getattr(torch_pruning, "__version__", "unknown"),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": device_name,
        "num_threads": torch.get_num_threads(),
    }


def _git_commit() -> str | None:
    """The commit of the suite's own source checkout, ``+dirty`` when it has uncommitted changes.

    None when the suite is not running from its git checkout (an installed wheel).
    """
    import subprocess

    source = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or (Path(top) / "suite").resolve() != source:
        return None
    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return commit


def _build_submission(**kw: Any) -> Submission:
    protocol: ComparisonProtocol = kw["protocol"]
    method: PruningMethod = kw["method"]
    dense, pruned, log = kw["dense"], kw["pruned"], kw["log"]
    target: PruningTarget = kw["target"]
    base = {k: v for k, v in kw["base_info"].items() if k != "seconds"}
    final = log[-1]
    layers = [
        {
            "name": name,
            "before": before,
            "after": after,
            "target_ratio": target.ratio_for(name),
            "achieved_ratio": (before - after) / before,
        }
        for name, before, after in kw["changes"]
    ]
    data = {
        "run_id": kw["run_id"],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "suite": {"version": __version__, "git_commit": _git_commit()},
        "protocol": {
            "id": protocol.id,
            "version": protocol.version,
            "content_hash": protocol.content_hash,
            "dataset_sha256": kw["data"].sha256,
        },
        "method": {
            "name": method.name,
            "version": method.version,
            "distribution": kw["registry"].methods[method.name].distribution,
            "granularity": method.granularity,
            "config": method.config.model_dump(mode="json"),
        },
        "target": {"id": target.id, "layer_ratios": dict(target.layer_ratios)},
        "seed": kw["config"].seed,
        "smoke": kw["config"].smoke,
        "rankable": not kw["config"].smoke,
        "environment": _environment(kw["device"]),
        "base_model": base,
        "pruning": {
            "input_shape": list(protocol.dataset.input_shape),
            "params_dense": dense.params,
            "params_pruned": pruned.params,
            "sparsity": 1 - pruned.params / dense.params,
            "macs_dense": dense.macs,
            "macs_pruned": pruned.macs,
            "flops_dense": dense.flops,
            "flops_pruned": pruned.flops,
            "speedup": dense.macs / pruned.macs,
            "layers": layers,
        },
        "retraining": [row.as_dict() for row in log],
        "final": {
            "test_top1": final.test_top1,
            "val_top1": final.val_top1,
            "pruned_test_top1_before_retraining": kw["pruned_top1"],
            "delta_top1": final.test_top1 - base["dense_test_top1"],
        },
        "timings": kw["timings"],
    }
    return Submission.model_validate(data)
