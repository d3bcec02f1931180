"""The rule registry: every rule the installed plugins register, the suite's own included.

``validate``, ``report``, certification and the runner read the rules from here
(:func:`load_rules`), never from a list of their own. This module does not import torch (a
plugin module may, when it is loaded).
"""

from __future__ import annotations

import re

from ..contract.kinds import RULE_PATTERN, rule_problem
from ..contract.plugins import PluginRegistry, load_registry
from ..contract.registry import Registry
from ..errors import PluginError
from .rule import Rule

__all__ = ["RULE_ID", "check_rules", "load_rules"]

RULE_ID = re.compile(RULE_PATTERN)
"""The form of a rule id: ``R-<FAMILY>-<N>``, e.g. ``R-RETRAIN-2``."""

_HINT = "a rule is a pruning_suite.rules.Rule registered under its own id by register_rules"


def load_rules(plugins: PluginRegistry | None = None) -> Registry[Rule]:
    """The registered rules, in registration order (the suite's own first).

    Args:
        plugins: A loaded plugin registry (default: a fresh :func:`load_registry`).

    Returns:
        Rule id -> :class:`Rule`.

    Raises:
        PluginError: A plugin registered something that is not a :class:`Rule`, under another
            id than its own, or with a malformed id, scope or check.
    """
    rules: Registry[Rule] = (plugins or load_registry()).rules
    check_rules(rules)
    return rules


def check_rules(rules: Registry[Rule]) -> None:
    """Refuse a registry holding anything but well-formed rules (a registry built by hand;
    :func:`load_rules` gets one whose plugins' malformed rules were left out, each plugin listed
    as broken by ``pruning-suite plugins``).

    Raises:
        PluginError: Something that is not a :class:`Rule`, under another id than its own, or
            with a malformed id, scope or check.
    """
    for name, rule in rules.items():
        problem = None if isinstance(rule, Rule) else f"{type(rule).__name__}, not a Rule"
        problem = problem or rule_problem(name, rule)
        if problem is not None:
            raise PluginError(f"rule {name!r}: {problem}", _HINT)
