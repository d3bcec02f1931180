"""Every conformance check at once: :func:`check_method`, and :class:`MethodConformance`, the
same checks as pytest tests for a method author to subclass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..contract.method import PruningMethod
from .checks import (
    check_attributes,
    check_config,
    check_deterministic,
    check_layer_ratios,
    check_no_mutation,
    check_schedule,
    check_scores,
)
from .stage import check_end_to_end, check_hook_order

__all__ = ["MethodConformance", "check_method"]


def check_method(
    method: type[PruningMethod],
    config: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    end_to_end: bool = True,
) -> None:
    """Run every conformance check on ``method``; the first failure raises.

    Args:
        method: The method class (not an instance).
        config: Options for its ``Config`` (None = the defaults).
        protocol: The protocol of the end-to-end run; None = the digits protocol of the method's
            granularity (with a pruning budget when ``schedule().trains``).
        end_to_end: Also check the hook order and a smoke run of the real runner (a few seconds).

    Raises:
        AssertionError: One line, ``method 'NAME': what is wrong; fix: how``.
    """
    check_attributes(method)
    for check in (check_config, check_schedule, check_scores, check_deterministic):
        check(method, config)
    check_no_mutation(method, config)
    check_layer_ratios(method, config)
    if end_to_end:
        check_hook_order(method, config, protocol)
        check_end_to_end(method, config, protocol)


class MethodConformance:
    """The conformance checks as pytest tests; subclass it in your own test module.

    Example::

        from pruning_suite.testing import MethodConformance
        from pruning_suite_mine import Mine

        class TestMine(MethodConformance):
            method = Mine
            config = {"batches": 2}        # optional: options for Mine.Config

    Class attributes:
        method: The method class under test (required).
        config: Options for its ``Config``; default: the defaults.
        protocol: The protocol of the end-to-end run; default as :func:`check_method`.
        end_to_end: Set False to skip the two checks that run the suite (a few seconds each
            method, once per process).
    """

    method: ClassVar[type[PruningMethod]]
    config: ClassVar[Mapping[str, Any] | None] = None
    protocol: ClassVar[str | None] = None
    end_to_end: ClassVar[bool] = True

    def _method(self) -> type[PruningMethod]:
        method = getattr(type(self), "method", None)
        if method is None:
            raise AssertionError(
                f"{type(self).__name__} tests no method; fix: set method = YourMethod "
                "(the class) in the test class"
            )
        return method

    def test_name_version_granularity_description(self) -> None:
        check_attributes(self._method())

    def test_config_is_frozen_forbids_unknown_keys_and_has_valid_defaults(self) -> None:
        check_config(self._method(), self.config)

    def test_schedule_and_allocation_are_valid(self) -> None:
        check_schedule(self._method(), self.config)

    def test_scores_have_the_granularitys_shapes(self) -> None:
        check_scores(self._method(), self.config)

    def test_same_seed_gives_the_same_scores(self) -> None:
        check_deterministic(self._method(), self.config)

    def test_scoring_does_not_mutate_the_model(self) -> None:
        check_no_mutation(self._method(), self.config)

    def test_layer_ratios_are_well_formed(self) -> None:
        check_layer_ratios(self._method(), self.config)

    def test_hooks_are_called_in_order(self) -> None:
        self._needs_end_to_end()
        check_hook_order(self._method(), self.config, self.protocol)

    def test_end_to_end_smoke_run_writes_a_valid_submission(self) -> None:
        self._needs_end_to_end()
        check_end_to_end(self._method(), self.config, self.protocol)

    def _needs_end_to_end(self) -> None:
        if not self.end_to_end:
            import pytest

            pytest.skip("end_to_end = False")
