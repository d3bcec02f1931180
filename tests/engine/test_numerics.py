"""CPU numerics are pinned to AVX2 when pruning_suite is imported before torch (x86-64)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from pruning_suite.engine.numerics import CPU_PINS, NATIVE

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="the pins are x86-64's"
)

_PROBE = (
    "import os, pruning_suite, torch; "
    "from pruning_suite.engine.numerics import cpu_numerics; "
    "print(os.environ.get('MKL_CBWR'), torch.backends.cpu.get_cpu_capability(), cpu_numerics(), "
    "sep='|')"
)


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in CPU_PINS and k != NATIVE}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1].split("|")


def test_importing_the_suite_pins_mkl_onednn_and_aten_to_avx2() -> None:
    mkl, capability, recorded = _probe()
    assert (mkl, capability) == ("AVX2", "AVX2")
    assert recorded == "ATen AVX2, MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2"


def test_a_variable_the_user_set_wins_and_native_pins_nothing() -> None:
    mkl, _, recorded = _probe(MKL_CBWR="COMPATIBLE")
    assert mkl == "COMPATIBLE" and "MKL_CBWR=COMPATIBLE" in recorded
    mkl, _, recorded = _probe(**{NATIVE: "native"})
    assert mkl == "None" and recorded.endswith("MKL_CBWR=unset, DNNL_MAX_CPU_ISA=unset")


def test_this_test_process_runs_pinned() -> None:
    """tests/conftest.py imports the suite first, so in-process runs match the command line's."""
    import torch

    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
