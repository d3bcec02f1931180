"""CPU numerics pinned to one instruction set, so that a seed gives the same bits on any x86-64 CPU.

MKL (matrix products), oneDNN (convolutions) and ATen's own vectorized kernels each pick their
code by the CPU they run on, and each choice sums in another order. Measured on one AMD EPYC
(AVX-512) machine, the digits-convnet base model (``pruning-suite run --plugin l1norm``, empty
cache) came out with five different checkpoints: ``27f915691f12`` as the libraries chose,
``3e8b7384fa26`` with ``MKL_CBWR=AVX2``, ``d38e082978f0`` with ``DNNL_MAX_CPU_ISA=AVX2``,
``ba0b9830b7f2`` with ``ATEN_CPU_CAPABILITY=avx2`` and ``d4d7297fb8d9`` with all three; results
committed from an Intel Xeon recorded ``9f09bd606d61``, so a fresh clone on the AMD machine could
not reproduce them.

Importing :mod:`pruning_suite` (before torch) therefore pins all three to AVX2, which every
x86-64 CPU since 2013 has: MKL's conditional numerical reproducibility (``MKL_CBWR``) is
documented to take one code path on any CPU with that instruction set, and oneDNN and ATen pick
kernels by instruction set (not yet checked on a second CPU model: see the README). Bits still
depend on the thread count (recorded as ``environment.num_threads``) and on the torch build. A
variable already set (non-empty) in the environment is left as it is;
``PRUNING_SUITE_CPU_NUMERICS=native`` (any case) pins nothing (the libraries' fastest code for this
CPU). Other architectures (ARM) are left alone. Each submission records what was in force
(:func:`cpu_numerics`).

A script that imports torch before :mod:`pruning_suite` gets the pins after the libraries may
have started: one line on stderr says so (and how to fix it), and :func:`cpu_numerics` ends in
``pinned after torch loaded``. ATen's capability is read back, MKL's and oneDNN's cannot be.

This module does not import torch.
"""

from __future__ import annotations

import os
import platform
import sys

from ..record.safefiles import note

__all__ = ["CPU_PINS", "LATE", "NATIVE", "cpu_numerics", "pin_cpu_numerics"]

CPU_PINS = {"MKL_CBWR": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2"}
"""Environment variables read by MKL, ATen and oneDNN when they start, and the pinned value."""

NATIVE = "PRUNING_SUITE_CPU_NUMERICS"
"""Set to ``native`` (any case, spaces around ignored) to pin nothing; another value pins, and
says so on stderr."""

LATE = "pinned after torch loaded"
"""The last part of :func:`cpu_numerics` when this process pinned after torch was imported."""

_pinned: dict[str, bool] = {"late": False}


def pin_cpu_numerics() -> None:
    """Set each of :data:`CPU_PINS` not already set (an empty value counts as unset), on x86-64
    unless :data:`NATIVE` says ``native``.

    It takes effect only when called before torch starts (the libraries read the variables
    once): called after torch was imported, it still sets them, prints one line on stderr, and
    :func:`cpu_numerics` records :data:`LATE`.
    """
    switch = os.environ.get(NATIVE, "")
    if switch.strip().lower() == "native":
        return
    if switch.strip():
        note(
            f"{NATIVE}={switch!r} is not 'native': CPU numerics are pinned to AVX2 (set it to "
            "'native' to pin nothing, or unset it)"
        )
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    unset = [name for name in CPU_PINS if not os.environ.get(name, "").strip()]
    for name in unset:
        os.environ[name] = CPU_PINS[name]
    if unset and "torch" in sys.modules:
        _pinned["late"] = True
        pins = " ".join(f"{name}={value}" for name, value in CPU_PINS.items())
        note(
            "torch was imported before pruning_suite, so the CPU numerics pins may come after "
            "MKL, oneDNN and ATen started and results may not reproduce on another CPU: import "
            f"pruning_suite before torch, or set {pins} in the environment"
        )


def cpu_numerics() -> str:
    """What decided this process's CPU arithmetic, e.g. ``"ATen AVX2, MKL_CBWR=AVX2,
    DNNL_MAX_CPU_ISA=AVX2"``: ATen's capability in force (it imports torch) and the MKL and
    oneDNN variables as set (``unset`` when not), then :data:`LATE` when they were set after
    torch was imported (they may not be in force)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    libraries = [f"{name}={os.environ.get(name, 'unset')}" for name in ("MKL_CBWR", "DNNL_MAX_CPU_ISA")]  # fmt: skip
    return ", ".join([f"ATen {capability}", *libraries, *([LATE] if _pinned["late"] else [])])
