"""Shared fixtures: an isolated base-model cache and a fresh plugin registry per test.

``pruning_suite`` is imported before anything imports torch, so the test process computes with
the same pinned CPU numerics as the command line and the pruning stage's child process
(:mod:`pruning_suite.engine.numerics`).
"""

from __future__ import annotations

import pytest

import pruning_suite  # noqa: F401  (first: pins the CPU numerics before torch loads)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Base models trained by tests go to a temporary cache shared by the session, never ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PRUNING_SUITE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture
def registry():
    """A fresh plugin registry (no manager is built at import time)."""
    from pruning_suite.contract.plugins import load_registry

    return load_registry()


@pytest.fixture(scope="session")
def default_runs(tmp_path_factory) -> dict:
    """l1norm and random on the default digits protocol, seed 0, into one results folder.

    Returns ``{"out": folder, "l1norm": RunResult, "random": RunResult}``.
    """
    from pruning_suite.run.runner import RunConfig, run

    out = tmp_path_factory.mktemp("submissions")
    results = {name: run(RunConfig(plugin=name, out=out)) for name in ("l1norm", "random")}
    return {"out": out, **results}
