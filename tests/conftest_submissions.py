"""Sample submissions for tests: valid, internally consistent, realistic numbers.

Import the helpers (``from tests.conftest_submissions import make_submission``); they
are plain functions, not fixtures, so tests combine them with ``tmp_path`` freely.

The default sample is a fully certified closed-division run (setup S4.2, the strictest) under
the shipped protocol digits-convnet@1: its content hash and dataset checksum, one retraining row
per epoch of its recipe, each with the scheduled LR, the recipe recorded field by field, a one-shot
pruning stage, the target's own sparsity and speedup, the certification that
``pruning_suite.rules.setups.certify`` gives, and the run id the suite computes (a smoke run logs 2 rows
and is never certified). A protocol not shipped can be given as an object (``under=``, e.g. one
loaded from a file in ``tmp_path``); a protocol id or version the suite does not know gets 3 rows,
a made-up content hash and no recipe or certification (``validate`` then warns that the recipe is
not checked). The numbers: a 1000-parameter model pruned to 600 (sparsity 0.4), 5000 MACs to 2500
(speedup 2.0, FLOPs 10000 to 5000), two conv layers halved, retraining ending at 91.0 % test top-1
against a dense 92.5 % (delta -1.5 pp). All numbers are exact in binary floating point.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pruning_suite.protocol.spec import (
    ComparisonProtocol,
    TrainRecipe,
    canonical_json,
    list_protocols,
)
from pruning_suite.record.submission import Submission
from pruning_suite.rules.setups import certify

__all__ = ["certified", "make_submission", "run_id_for", "write_submission"]

_HASH_A = "a" * 64
_HASH_B = "b" * 64
_HASH_C = "c" * 64
_SMOKE_EPOCHS = 2
_CUSTOM_LRS = (0.1, 0.1, 0.01)


def run_id_for(data: dict[str, Any]) -> str:
    """The run id of submission ``data``, computed from its fields as the suite does.

    sha256 of the canonical JSON of protocol id+version, method
    name+version+config, target id, seed and smoke, plus the method's code digest, the
    retraining override and the re-initialization when there are any;
    the first 12 hex digits (``pruning_suite.record.identity.run_id``; kept here as an
    independent oracle).
    """
    key = {
        "protocol": [data["protocol"]["id"], data["protocol"]["version"]],
        "method": [data["method"]["name"], data["method"]["version"], data["method"]["config"]],
        "target": data["target"]["id"],
        "seed": data["seed"],
        "smoke": data["smoke"],
    }
    if data.get("retraining_override"):
        key["retraining_override"] = data["retraining_override"]
    if data["method"].get("reinit"):
        key["reinit"] = data["method"]["reinit"]
    if data["method"].get("code_sha256"):
        key["method_code"] = data["method"]["code_sha256"]
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:12]


def _known(protocol: str, version: int) -> ComparisonProtocol | None:
    """The shipped protocol ``protocol@version``, or None."""
    return next((p for p in list_protocols() if (p.id, p.version) == (protocol, version)), None)


def _recipe(known: ComparisonProtocol, override: dict[str, Any] | None) -> TrainRecipe:
    """The retraining recipe a run used: the protocol's, with ``override`` applied."""
    return known.retraining.model_validate({**known.retraining.model_dump(), **(override or {})})


def _lrs(recipe: TrainRecipe | None, smoke: bool) -> list[float]:
    """Per-epoch LRs: the recipe's schedule for its epochs (2 for smoke), else made up."""
    if recipe is None:
        return list(_CUSTOM_LRS)
    epochs = min(recipe.epochs, _SMOKE_EPOCHS) if smoke else recipe.epochs
    return [recipe.lr_at(i) for i in range(epochs)]


def _dataset_sha256(known: ComparisonProtocol | None) -> str:
    pinned = known.dataset.sha256 if known is not None else "unpinned"
    return _HASH_B if pinned == "unpinned" else pinned


def _rows(lrs: list[float], top1: float) -> list[dict[str, Any]]:
    """Retraining rows rising by 0.25 pp an epoch to ``top1`` (exactly) in the last one."""
    last = len(lrs) - 1
    rows = []
    for i, lr in enumerate(lrs):
        test = top1 if i == last else max(0.0, top1 - 0.25 * (last - i))
        rows.append(
            {
                "epoch": i,
                "lr": lr,
                "train_loss": 1.0 / (i + 1),
                "val_top1": max(0.0, test - 0.5),
                "test_top1": test,
            }
        )
    return rows


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
    target: str = "uniform-50",
    created: str = "2024-05-01T12:00:00Z",
    checkpoint_sha256: str = _HASH_C,
    under: ComparisonProtocol | None = None,
    retraining_override: dict[str, Any] | None = None,
    code_sha256: str | None = None,
) -> dict[str, Any]:
    """A valid submission as JSON data; every derived number agrees with the raw ones.

    Under a known protocol (shipped, or ``under``) it is certified S4.2, closed division, with
    the certification :func:`pruning_suite.rules.setups.certify` computes; a smoke run is certified
    nothing (open division).

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
        created: When the run finished, ISO 8601.
        checkpoint_sha256: The base model's checkpoint hash.
        under: A protocol not shipped with the suite (e.g. a file in ``tmp_path``) to run under;
            its id and version replace ``protocol`` and ``protocol_version``.
        retraining_override: Recipe fields the run changed (``run --retrain-epochs`` /
            ``--retrain-lr-schedule``: open division), e.g. ``{"epochs": 160}``; the rows,
            the recorded recipe and the run id follow it. Needs a known protocol.
        code_sha256: The method's code digest (None: not recorded, as before it existed).

    Returns:
        A fresh dict; mutate it freely (recompute ``run_id`` with :func:`run_id_for` after
        changing a field it depends on, and ``certification`` with :func:`certified` after
        changing one a setup depends on).
    """
    if under is not None:
        protocol, protocol_version = under.id, under.version
    known = under or _known(protocol, protocol_version)
    recipe = _recipe(known, retraining_override) if known is not None else None
    rows = _rows(_lrs(recipe, smoke), top1)
    data = copy.deepcopy(
        {
            "schema_version": 1,
            "run_id": "",
            "created": created,
            "suite": {"version": "0.1.0", "git_commit": None},
            "protocol": {
                "id": protocol,
                "version": protocol_version,
                "content_hash": known.content_hash if known is not None else _HASH_A,
                "dataset_sha256": _dataset_sha256(known),
            },
            "method": {
                "name": method,
                "version": method_version,
                "distribution": "pruning-suite",
                "code_sha256": code_sha256,
                "granularity": "filter",
                "config": config or {},
            },
            "target": {
                "id": target,
                "layer_ratios": {"*": 0.5},
                "sparsity": 0.4,
                "speedup": 2.0,
            },
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
                "checkpoint_sha256": checkpoint_sha256,
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
                "val_top1": rows[-1]["val_top1"],
                "pruned_test_top1_before_retraining": 40.0,
                "delta_top1": top1 - dense_top1,
            },
            "timings": {"base_model": 0.0, "pruning": 0.5, "retraining": 12.0, "total": 12.5},
            "pruning_stage": {
                "epochs": 0,
                "lr_schedule": None,
                "log": [],
                "calibration_samples": 0,
                "method_grad_samples": 0,
                "method_optimizer_steps": 0,
            },
        }
    )
    if retraining_override:
        data["retraining_override"] = dict(retraining_override)
    data["run_id"] = run_id_for(data)
    if known is not None and recipe is not None:
        data["retraining_recipe"] = recipe.model_dump(mode="json")
        if (certification := certified(data, known)) is not None:
            data["certification"] = certification
    return data


def certified(data: dict[str, Any], protocol: ComparisonProtocol) -> dict[str, Any] | None:
    """The certification :func:`pruning_suite.rules.setups.certify` gives ``data`` under ``protocol``,
    as JSON data (``data`` itself need not carry one); None when ``data`` is not model-valid
    (a test of a broken field: ``validate`` stops before certification)."""
    fields = {k: v for k, v in data.items() if k != "certification"}
    try:
        sub = Submission.model_validate(fields)
    except ValidationError:
        return None
    return certify(sub, protocol).model_dump(mode="json")


def write_submission(folder: Path, data: dict[str, Any], name: str | None = None) -> Path:
    """Write ``data`` to ``folder / name`` (default ``<run_id>.json``) and return the path."""
    path = folder / (name or f"{data['run_id']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path
