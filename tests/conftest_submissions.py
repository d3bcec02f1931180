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
(speedup 2.0, FLOPs 10000 to 5000), two conv layers halved, retraining ending at 90.0 % test top-1
(324 of digits' 360 test images) against a dense 92.5 % (333 of 360; delta -2.5 pp).

Every top-1 is a whole number of images, ``100.0 * correct / N`` as the runner records it, on the
protocol's split sizes (:func:`split_sizes`: ``test_size`` and ``val_size``, smoke runs too); a
``top1`` that no count gives is refused. Like a
real run, a sample records its counts (``final.*_correct``, ``final.*_examples``), the digests of
its final model (``evidence``, distinct per run), its pruning stage's counts and its method's code
digest (one per method name and version), as R-EVAL-3 and R-EVID-2 ask.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
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

__all__ = [
    "certified",
    "make_submission",
    "percent",
    "run_id_for",
    "split_sizes",
    "write_submission",
]

_HASH_A = "a" * 64
_HASH_B = "b" * 64
_HASH_C = "c" * 64
_SMOKE_EPOCHS = 2
_CUSTOM_LRS = (0.1, 0.1, 0.01)
_UNKNOWN_SPLITS = (360, 180)
"""Test and validation examples of a protocol the suite does not know: digits' splits."""
_OFFICIAL_TEST = 10000
"""Test examples of a dataset's official test set (a protocol without ``test_size``)."""
_CODE = object()
"""Default of ``make_submission(code_sha256=...)``: the method's own digest."""


def split_sizes(known: ComparisonProtocol | None) -> tuple[int, int]:
    """The test and validation examples of the protocol ``known`` (None: one not known)."""
    if known is None:
        return _UNKNOWN_SPLITS
    return known.dataset.test_size or _OFFICIAL_TEST, known.dataset.val_size


def percent(correct: int, examples: int) -> float:
    """Top-1 in percent of ``correct`` right of ``examples``, as the runner computes it."""
    return 100.0 * correct / examples


def _count(top1: float, examples: int) -> int:
    """The number of right examples behind ``top1``; refuses a top-1 no count gives."""
    correct = round(top1 * examples / 100.0)
    if percent(correct, examples) != top1:
        low, high = math.floor(top1 * examples / 100.0), math.ceil(top1 * examples / 100.0)
        raise ValueError(
            f"top-1 {top1!r}% is not a whole number of {examples} examples; the nearest are "
            f"{percent(low, examples)!r} and {percent(high, examples)!r} (percent(count, N))"
        )
    return correct


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


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


def _val_count(test_correct: int, splits: tuple[int, int]) -> int:
    """Validation examples right beside ``test_correct``: about half a point below."""
    test, val = splits
    return max(0, round(test_correct * val / test) - 1)


def _rows(lrs: list[float], correct: int, splits: tuple[int, int]) -> list[dict[str, Any]]:
    """Retraining rows rising by one test image an epoch to ``correct`` in the last one."""
    last = len(lrs) - 1
    rows = []
    for i, lr in enumerate(lrs):
        right = max(0, correct - (last - i))
        rows.append(
            {
                "epoch": i,
                "lr": lr,
                "train_loss": 1.0 / (i + 1),
                "val_top1": percent(_val_count(right, splits), splits[1]),
                "test_top1": percent(right, splits[0]),
            }
        )
    return rows


def make_submission(
    *,
    method: str = "l1norm",
    method_version: str = "1.0",
    config: dict[str, Any] | None = None,
    seed: int = 0,
    top1: float = 90.0,
    dense_top1: float = 92.5,
    smoke: bool = False,
    protocol: str = "digits-convnet",
    protocol_version: int = 1,
    target: str = "uniform-50",
    created: str = "2024-05-01T12:00:00Z",
    checkpoint_sha256: str = _HASH_C,
    under: ComparisonProtocol | None = None,
    retraining_override: dict[str, Any] | None = None,
    code_sha256: Any = _CODE,
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
        top1: Final-epoch test top-1, percent (the last retraining row and ``final``): a whole
            number of the run's test examples (:func:`split_sizes`; 90.0 is 324 of 360, see
            :func:`percent`), else ValueError.
        dense_top1: The base model's dense test top-1, percent, likewise.
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
        code_sha256: The method's code digest (default: one per method name and version; None:
            not recorded, as before it existed).

    Returns:
        A fresh dict; mutate it freely (recompute ``run_id`` with :func:`run_id_for` after
        changing a field it depends on, and ``certification`` with :func:`certified` after
        changing one a setup depends on).
    """
    if under is not None:
        protocol, protocol_version = under.id, under.version
    known = under or _known(protocol, protocol_version)
    recipe = _recipe(known, retraining_override) if known is not None else None
    splits = split_sizes(known)
    correct, dense = _count(top1, splits[0]), _count(dense_top1, splits[0])
    rows = _rows(_lrs(recipe, smoke), correct, splits)
    rows[-1]["test_top1"] = top1  # the same number, as given (an int stays one)
    if code_sha256 is _CODE:
        code_sha256 = _digest("code", method, method_version)
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
                "dense_val_top1": percent(_val_count(dense, splits), splits[1]),
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
                "pruned_test_top1_before_retraining": percent(_count(40.0, splits[0]), splits[0]),
                "delta_top1": top1 - dense_top1,
                "test_correct": correct,
                "test_examples": splits[0],
                "val_correct": _val_count(correct, splits),
                "val_examples": splits[1],
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
    data["evidence"] = {  # the final model's: another run, other weights
        "test_predictions_sha256": _digest("predictions", data),
        "weights_sha256": _digest("weights", data),
    }
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
