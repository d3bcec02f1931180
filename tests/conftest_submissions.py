"""Sample submissions for tests: valid, internally consistent, realistic numbers.

Import the helpers (``from tests.conftest_submissions import make_submission``); they
are plain functions, not fixtures, so tests combine them with ``tmp_path`` freely.

The default sample: a 1000-parameter model pruned to 600 (sparsity 0.4), 5000 MACs to 2500
(speedup 2.0, FLOPs 10000 to 5000), two conv layers halved, 3 retraining epochs ending at 91.0 %
test top-1 against a dense 92.5 % (delta -1.5 pp). All numbers are exact in binary floating point.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["make_submission", "run_id_for", "write_submission"]

_HASH_A = "a" * 64
_HASH_B = "b" * 64
_HASH_C = "c" * 64
_HASH_D = "d" * 64


def run_id_for(protocol: str, method: str, seed: int, smoke: bool, target: str) -> str:
    """A 12-hex-digit run id that differs whenever one of its inputs does."""
    key = json.dumps([protocol, method, seed, smoke, target])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def make_submission(
    *,
    method: str = "l1norm",
    method_version: str = "1.0",
    config: dict[str, Any] | None = None,
    seed: int = 0,
    top1: float = 91.0,
    dense_top1: float = 92.5,
    smoke: bool = False,
    protocol: str = "digits-convnet",
    protocol_version: int = 1,
    target: str = "ratio-50",
) -> dict[str, Any]:
    """A valid submission as JSON data; every derived number agrees with the raw ones.

    Args:
        method: Method name.
        method_version: Method version.
        config: Method config (default ``{}``).
        seed: Run seed.
        top1: Final-epoch test top-1, percent (the last retraining row and ``final``).
        dense_top1: The base model's dense test top-1, percent.
        smoke: Whether it is a smoke run (``rankable`` follows).
        protocol: Protocol id.
        protocol_version: Protocol version.
        target: Target id.

    Returns:
        A fresh dict; mutate it freely.
    """
    rows = [
        {"epoch": 0, "lr": 0.1, "train_loss": 1.25, "val_top1": top1 - 4, "test_top1": top1 - 3},
        {"epoch": 1, "lr": 0.1, "train_loss": 0.5, "val_top1": top1 - 2, "test_top1": top1 - 1},
        {"epoch": 2, "lr": 0.01, "train_loss": 0.25, "val_top1": top1 - 0.5, "test_top1": top1},
    ]
    return copy.deepcopy(
        {
            "schema_version": 1,
            "run_id": run_id_for(protocol, method, seed, smoke, target),
            "created": "2024-05-01T12:00:00Z",
            "suite": {"version": "0.1.0", "git_commit": None},
            "protocol": {
                "id": protocol,
                "version": protocol_version,
                "content_hash": _HASH_A,
                "dataset_sha256": _HASH_B,
            },
            "method": {
                "name": method,
                "version": method_version,
                "distribution": "pruning-suite",
                "granularity": "filter",
                "config": config or {},
            },
            "target": {"id": target, "layer_ratios": {"conv*": 0.5}},
            "seed": seed,
            "smoke": smoke,
            "rankable": not smoke,
            "environment": {
                "python": "3.11.9",
                "torch": "2.3.0",
                "torch_pruning": "1.6.1",
                "platform": "Linux-x86_64",
                "device": "cpu",
                "device_name": "cpu",
                "num_threads": 4,
            },
            "base_model": {
                "checkpoint_sha256": _HASH_C,
                "source": "cached",
                "seed": 0,
                "dense_val_top1": dense_top1 - 0.5,
                "dense_test_top1": dense_top1,
                "params": 1000,
            },
            "pruning": {
                "input_shape": [1, 8, 8],
                "params_dense": 1000,
                "params_pruned": 600,
                "sparsity": 0.4,
                "macs_dense": 5000,
                "macs_pruned": 2500,
                "flops_dense": 10000,
                "flops_pruned": 5000,
                "speedup": 2.0,
                "layers": [
                    {
                        "name": "conv1",
                        "before": 8,
                        "after": 4,
                        "target_ratio": 0.5,
                        "achieved_ratio": 0.5,
                    },
                    {
                        "name": "conv2",
                        "before": 16,
                        "after": 8,
                        "target_ratio": 0.5,
                        "achieved_ratio": 0.5,
                    },
                ],
            },
            "retraining": rows,
            "final": {
                "test_top1": top1,
                "val_top1": top1 - 0.5,
                "pruned_test_top1_before_retraining": 40.0,
                "delta_top1": top1 - dense_top1,
            },
            "timings": {"base_model": 0.0, "pruning": 0.5, "retraining": 12.0, "total": 12.5},
        }
    )


def write_submission(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    """Write ``data`` to ``folder / name`` (default ``<run_id>.json``) and return the path."""
    path = folder / (name or f"{data['run_id']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
