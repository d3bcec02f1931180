"""Small helpers shared by the pruning tests (not fixtures)."""

from __future__ import annotations

import torch
from torch import nn


def zero_units(module: nn.Module, idxs: list[int]) -> None:
    """Zero output units of a Conv/Linear (weight rows, bias) or a BatchNorm (gamma, beta)."""
    with torch.no_grad():
        module.weight[idxs] = 0
        if module.bias is not None:
            module.bias[idxs] = 0


def l1_scores(ctx) -> dict[str, torch.Tensor]:
    """A test method's scores: mean |w| per output unit of every prunable layer ``[units]``."""
    return {la.name: la.module.weight.detach().abs().flatten(1).mean(1) for la in ctx.layers}


def eval_out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` in eval mode without gradients."""
    with torch.no_grad():
        return model.eval()(x)


class CallLog:
    """What a test method's code did, written to a file: the pruning stage runs in a process of
    its own (``pruning_suite.run.isolation``), so a class attribute set there never comes back.

    The file's path travels in an environment variable, which the stage's process inherits.
    """

    def __init__(self, name: str) -> None:
        self.env = f"PRUNING_SUITE_TEST_CALLS_{name.upper().replace('-', '_')}"

    def start(self, monkeypatch, folder) -> None:
        """Record into a fresh file under ``folder`` for this test (pytest's ``monkeypatch``)."""
        path = folder / f"{self.env}.jsonl"
        path.unlink(missing_ok=True)
        monkeypatch.setenv(self.env, str(path))

    def append(self, *item) -> None:
        """Called by the method's code: one row, JSON-serializable values (dropped when no test
        started a log)."""
        import json
        import os

        if self.env not in os.environ:
            return
        with open(os.environ[self.env], "a", encoding="utf-8") as file:
            file.write(json.dumps(item) + "\n")

    def rows(self) -> list[tuple]:
        """Every row so far, lists turned back into tuples."""
        import json
        import os
        from pathlib import Path

        path = Path(os.environ[self.env])
        if not path.exists():
            return []

        def tuples(value):
            return tuple(tuples(v) for v in value) if isinstance(value, list) else value

        return [tuples(json.loads(line)) for line in path.read_text().splitlines()]
