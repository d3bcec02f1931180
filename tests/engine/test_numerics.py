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

_TORCH_FIRST = "import torch; torch.ones(4, 4) @ torch.ones(4, 4); " + _PROBE
"""A script that runs torch before importing the suite: the libraries have started unpinned."""


def _run(code: str = _PROBE, **env: str) -> tuple[list[str], str]:
    """``code``'s last stdout line split at ``|``, and its stderr."""
    clean = {k: v for k, v in os.environ.items() if k not in CPU_PINS and k != NATIVE}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
        check=True, timeout=120,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1].split("|"), out.stderr


def _probe(**env: str) -> list[str]:
    return _run(**env)[0]


def test_importing_the_suite_pins_mkl_onednn_and_aten_to_avx2() -> None:
    (mkl, capability, recorded), err = _run()
    assert (mkl, capability) == ("AVX2", "AVX2")
    assert recorded == "ATen AVX2, MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2"
    assert err == ""


def test_a_variable_the_user_set_wins_and_native_pins_nothing() -> None:
    mkl, _, recorded = _probe(MKL_CBWR="COMPATIBLE")
    assert mkl == "COMPATIBLE" and "MKL_CBWR=COMPATIBLE" in recorded
    for native in ("native", "Native ", " NATIVE"):
        mkl, _, recorded = _probe(**{NATIVE: native})
        assert mkl == "None" and recorded.endswith("MKL_CBWR=unset, DNNL_MAX_CPU_ISA=unset")


def test_an_empty_variable_counts_as_unset() -> None:
    mkl, capability, recorded = _probe(MKL_CBWR="", ATEN_CPU_CAPABILITY=" ")
    assert (mkl, capability) == ("AVX2", "AVX2")
    assert recorded == "ATen AVX2, MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2"


def test_another_value_of_the_native_switch_pins_and_says_so_in_one_line() -> None:
    (mkl, _, recorded), err = _run(**{NATIVE: "off"})
    assert mkl == "AVX2" and recorded == "ATen AVX2, MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2"
    assert err == (
        f"pruning-suite: {NATIVE}='off' is not 'native': CPU numerics are pinned to AVX2 (set "
        "it to 'native' to pin nothing, or unset it)\n"
    )


def test_torch_loaded_before_the_suite_warns_once_and_the_record_says_so() -> None:
    """MKL, oneDNN and ATen read the variables when they start: pinned after a script ran torch,
    the pins may come too late, and the submission must not record them as in force."""
    code = _TORCH_FIRST + "; import importlib; importlib.reload(pruning_suite)"
    (mkl, _, recorded), err = _run(code)
    assert mkl == "AVX2"
    assert recorded.endswith("MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2, pinned after torch loaded")
    assert err.count("\n") == 1 and err.startswith("pruning-suite: torch was imported before")
    assert "results may not reproduce" in err
    assert "import pruning_suite before torch" in err
    assert "MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2" in err


def test_torch_loaded_first_under_pins_set_in_the_environment_is_fine() -> None:
    (mkl, capability, recorded), err = _run(_TORCH_FIRST, **CPU_PINS)
    assert (mkl, capability, err) == ("AVX2", "AVX2", "")
    assert recorded == "ATen AVX2, MKL_CBWR=AVX2, DNNL_MAX_CPU_ISA=AVX2"


def test_this_test_process_runs_pinned() -> None:
    """tests/conftest.py imports the suite first, so in-process runs match the command line's."""
    import torch

    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
