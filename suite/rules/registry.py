"""The rule registry: every rule the installed plugins register, the suite's own included.

``validate``, ``report``, certification and the runner read the rules from here
(:func:`load_rules`), never from a list of their own. This module does not import torch (a
plugin module may, when it is loaded).
"""

from __future__ import annotations

import re

from ..contract.plugins import PluginRegistry, load_registry
from ..contract.registry import Registry
from ..errors import PluginError
from .rule import Rule

__all__ = ["RULE_ID", "check_rules", "load_rules"]

RULE_ID = re.compile(r"^R-[A-Z]+-\d+$")
"""The form of a rule id: ``R-<FAMILY>-<N>``, e.g. ``R-RETRAIN-2``."""

_SCOPES = ("file", "tree", "run", "read", "deep")
_UNCHECKED = ("run", "read")
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
    """Refuse a registry holding anything but well-formed rules (see :func:`load_rules`)."""
    for name, rule in rules.items():
        if not isinstance(rule, Rule):
            raise PluginError(f"rule {name!r} is a {type(rule).__name__}, not a Rule", _HINT)
        if rule.id != name or not RULE_ID.match(name):
            raise PluginError(f"rule {rule.id!r} is registered as {name!r}", _HINT)
        if rule.scope not in _SCOPES or (rule.check is None) != (rule.scope in _UNCHECKED):
            raise PluginError(
                f"rule {name!r} has scope {rule.scope!r} and check {rule.check!r}",
                "a file or tree rule has a check; a run or read rule (enforced by the runner, "
                "or by validate's reading stages) has none",
            )
