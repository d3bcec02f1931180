"""pruning-suite: fair, reproducible comparisons of neural-network pruning methods.

The executable form of Wang et al., "Why is the State of Neural Network Pruning so Confusing?"
(arXiv 2301.05219). Plugins import only from this module's public API (``__all__``).
Importing it does not import torch; it pins the CPU libraries' numerics to AVX2 for the torch
imported after it (:mod:`pruning_suite.engine.numerics`), so a seed gives the same bits on any
x86-64 CPU.
"""

from __future__ import annotations

from .contract.hookspecs import hookimpl
from .contract.method import (
    Allocation,
    MethodConfig,
    PrunableLayer,
    PruningContext,
    PruningMethod,
    PruningSchedule,
)
from .engine.numerics import pin_cpu_numerics
from .errors import (
    CheckpointError,
    DatasetError,
    OutputError,
    PluginError,
    ProtocolError,
    PruningError,
    PruningSuiteError,
    SubmissionError,
    TrainingError,
    VerificationError,
)

pin_cpu_numerics()

__version__ = "0.1.0"

__all__ = [
    "Allocation",
    "CheckpointError",
    "DatasetError",
    "MethodConfig",
    "OutputError",
    "PluginError",
    "PrunableLayer",
    "ProtocolError",
    "PruningContext",
    "PruningError",
    "PruningMethod",
    "PruningSchedule",
    "PruningSuiteError",
    "SubmissionError",
    "TrainingError",
    "VerificationError",
    "__version__",
    "hookimpl",
]
