"""The conformance kit for method authors: the method contract as checks in your own pytest.

Every installed method meets the same contract (timm tests every registered model alike); this
kit lets a third-party package prove it before it is installed anywhere::

    # tests/test_mine.py of your package
    from pruning_suite.testing import MethodConformance
    from pruning_suite_mine import Mine

    class TestMine(MethodConformance):
        method = Mine                 # the class, not an instance
        config = {"batches": 2}       # optional: options for Mine.Config

or, without pytest classes, ``check_method(Mine, config={"batches": 2})``. Each check is also a
function of its own (``check_scores(Mine)``...). What is checked, in order:

1. ``check_attributes``: a concrete ``PruningMethod`` whose ``name`` is lower-case letters,
   digits and ``-``, with a ``version`` string, a ``granularity`` of ``"filter"`` or
   ``"weight"`` and a one-line ``description``.
2. ``check_config``: ``Config`` is a ``MethodConfig``, frozen, unknown keys refused, every
   default valid under its own constraints, JSON round trip exact; ``config`` is accepted.
3. ``check_schedule``: ``schedule()`` / ``allocation()`` return a ``PruningSchedule`` /
   ``Allocation``, the same on every call; rewinding only at weight granularity.
4. ``check_scores``: on a tiny model (:class:`TinyNet`: conv1 and conv2 with BatchNorm, fc1,
   the output layer fc; input ``[B, 1, 8, 8]``), one finite float score per unit
   (``[num_units]``) for filter granularity, per weight (the weight's shape) for weight
   granularity, for exactly the prunable layers.
5. ``check_deterministic``: two fresh instances with the same seed score bit-identically
   (randomness from ``ctx.generator``, data from ``ctx.calibration_batches``).
6. ``check_no_mutation``: ``score`` and ``layer_ratios`` leave weights, buffers, modules, mode,
   hooks and gradients of the model as they were (the fingerprint a run checks).
7. ``check_layer_ratios``: ratios in ``[0, 1)`` for prunable layers only, never lowered from
   one prune round to the next.
8. ``check_hook_order``: in the suite's pruning-stage loop (when the protocol gives the stage
   epochs, i.e. whenever ``schedule().trains``), ``regularize`` runs after each backward pass
   and before each optimizer step and leaves finite gradients; ``on_pruning_epoch_end`` runs
   after each epoch and leaves the model alone; round ``i`` is scored after the epoch the
   schedule names.
9. ``check_end_to_end``: a smoke run of the real runner (``RunConfig(..., smoke=True,
   jsv=False)``, seed 0, CPU) on ``digits-convnet`` (``digits-convnet-unstructured`` for
   weight granularity; their ``-s4`` versions, with a pruning budget, for a method that
   trains) writes a submission that validates and records the method's name, version,
   granularity, config and rounds.

A failed check raises ``AssertionError`` with one line: ``method 'NAME': what is wrong; fix:
how``. Checks 1-7 take well under a second; 8 and 9 share one run of a few seconds per method
and config (cached for the process), after a one-time base-model training of a few seconds into
the suite's cache (``$PRUNING_SUITE_CACHE``, default ``~/.cache/pruning-suite``). Set
``end_to_end = False`` (or pass ``end_to_end=False``) to skip them.

``pruning-suite new-method NAME`` writes a package skeleton whose tests use this kit.
"""

from __future__ import annotations

from .checks import (
    check_attributes,
    check_config,
    check_deterministic,
    check_layer_ratios,
    check_no_mutation,
    check_schedule,
    check_scores,
)
from .conformance import MethodConformance, check_method
from .stage import StageTrace, check_end_to_end, check_hook_order, expected_events, trace_run
from .tiny import TinyNet, tiny_context, tiny_model

__all__ = [
    "MethodConformance",
    "StageTrace",
    "TinyNet",
    "check_attributes",
    "check_config",
    "check_deterministic",
    "check_end_to_end",
    "check_hook_order",
    "check_layer_ratios",
    "check_method",
    "check_no_mutation",
    "check_schedule",
    "check_scores",
    "expected_events",
    "tiny_context",
    "tiny_model",
    "trace_run",
]
