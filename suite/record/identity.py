"""The identity of a run and of its ranking row: each computed here, and only here.

* The **run id** names a run's file (``<run-id>.json``): a rerun of the same configuration lands on
  the same file, and ``validate`` recomputes it from the file's own fields (R-ID-2), so an edited
  or copied file is caught. One function, :func:`run_id`, used by the runner and by ``validate``.
* The **ranking key** says which row of which table a run is ranked in: ``report`` ranks by it,
  and ``validate`` checks seeds within it (R-SEED-1, R-SEED-2). One function,
  :func:`ranking_key`.

This module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..protocol.spec import canonical_json
from .submission import Submission

__all__ = ["RankingKey", "RunIdentity", "ranking_key", "run_id"]

RUN_ID_DIGITS = 12
"""Hex digits of sha256 kept in a run id."""


@dataclass(frozen=True)
class RunIdentity:
    """Everything that makes two runs the same run (and nothing else).

    Attributes:
        protocol_id: The protocol id, e.g. ``"digits-convnet"``.
        protocol_version: The protocol version.
        method: The method's registered name, e.g. ``"l1norm"``.
        method_version: The method's version string.
        method_config: The method's config as plain JSON data.
        method_code: sha256 of the method's code
            (:func:`~pruning_suite.contract.codedigest.code_sha256`), None when unknown: code
            edited without a version bump gives another run id.
        target: The pruning target id.
        seed: The run's seed.
        smoke: True for a smoke run (reduced budget, never ranked).
        retraining_override: Recipe fields the run changed from the protocol's (open division).
        reinit: The re-initialization after pruning (``"orthp"``), if any.
    """

    protocol_id: str
    protocol_version: int
    method: str
    method_version: str
    method_config: Mapping[str, Any]
    target: str
    seed: int
    smoke: bool
    retraining_override: Mapping[str, Any] | None = None
    reinit: str | None = None
    method_code: str | None = None

    @classmethod
    def of(cls, sub: Submission) -> RunIdentity:
        """The identity recorded in a submission's own fields."""
        return cls(
            protocol_id=sub.protocol.id,
            protocol_version=sub.protocol.version,
            method=sub.method.name,
            method_version=sub.method.version,
            method_config=sub.method.config,
            target=sub.target.id,
            seed=sub.seed,
            smoke=sub.smoke,
            retraining_override=sub.retraining_override,
            reinit=sub.method.reinit,
            method_code=sub.method.code_sha256,
        )


def run_id(identity: RunIdentity) -> str:
    """The run id: the first 12 hex digits of the sha256 of the canonical JSON of the identity.

    The hashed object is ``{"protocol": [id, version], "method": [name, version, config],
    "target": target id, "seed": seed, "smoke": smoke}``, plus ``"method_code"`` when the
    method's code digest is recorded, ``"retraining_override"`` when the run declares one and
    ``"reinit"`` when it re-initializes (so files written before any of them existed keep their
    ids). Canonical JSON: sorted keys, no whitespace.

    Args:
        identity: What identifies the run.

    Returns:
        12 lower-case hex digits, e.g. ``"3f0a9c1d2b4e"``.
    """
    key: dict[str, Any] = {
        "protocol": [identity.protocol_id, identity.protocol_version],
        "method": [identity.method, identity.method_version, dict(identity.method_config)],
        "target": identity.target,
        "seed": identity.seed,
        "smoke": identity.smoke,
    }
    if identity.retraining_override:
        key["retraining_override"] = dict(identity.retraining_override)
    if identity.reinit:
        key["reinit"] = identity.reinit
    if identity.method_code:
        key["method_code"] = identity.method_code
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:RUN_ID_DIGITS]


class RankingKey(NamedTuple):
    """The ranking row a run belongs to: its table (protocol version, target, division, setup)
    and its method row within that table (method, config, the digest of the method's code and how
    the run departed from the plain pipeline). Runs with equal keys are seeds of one ranked
    mean."""

    protocol_id: str
    protocol_version: int
    target: str
    division: str
    setup: str | None
    method: str
    method_version: str
    config: str
    reinit: str | None
    retraining_override: str | None
    selection: str
    method_code: str | None = None

    def table(self) -> tuple[str, int, str, str, str | None]:
        """(protocol id, version, target, division, setup): the table the row is in."""
        return self.protocol_id, self.protocol_version, self.target, self.division, self.setup

    def row(self) -> tuple[str, str, str, str | None, str | None, str, str | None]:
        """(method, version, config, reinit, retraining override, selection, code digest): the
        row in its table; seeds that ran other method code are other rows."""
        return (
            self.method,
            self.method_version,
            self.config,
            self.reinit,
            self.retraining_override,
            self.selection,
            self.method_code,
        )

    def override(self) -> dict[str, Any]:
        """The retraining override as a mapping (empty when none)."""
        return json.loads(self.retraining_override) if self.retraining_override else {}


def ranking_key(sub: Submission, division: str, setup: str | None) -> RankingKey:
    """The ranking row of ``sub`` when certified ``setup`` in ``division``.

    The certification is the one recomputed from the file's fields
    (:func:`pruning_suite.rules.setups.certify`), never the file's own claim; an uncertified run
    is ``("open", None)``.

    Args:
        sub: A model-valid submission.
        division: ``"closed"`` or ``"open"``.
        setup: The certified setup (``"S3.2"``), or None.

    Returns:
        The key; the config and the override are canonical JSON, so equal data gives equal keys.
    """
    override = sub.retraining_override
    return RankingKey(
        protocol_id=sub.protocol.id,
        protocol_version=sub.protocol.version,
        target=sub.target.id,
        division=division,
        setup=setup,
        method=sub.method.name,
        method_version=sub.method.version,
        config=canonical_json(sub.method.config),
        reinit=sub.method.reinit,
        retraining_override=canonical_json(override) if override else None,
        selection=sub.final.selection,
        method_code=sub.method.code_sha256,
    )
