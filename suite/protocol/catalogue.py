"""The catalogue of protocols the suite knows: the shipped ones, looked up by id and version.

``validate``, ``report`` and the rules look a run's protocol up here, never through a path named
by a submission. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from .spec import ComparisonProtocol, list_protocols

__all__ = ["find_protocol", "shipped_latest", "shipped_protocol"]


@cache
def _shipped() -> dict[str, ComparisonProtocol]:
    return {protocol.id: protocol for protocol in list_protocols()}


def shipped_latest(protocol_id: str) -> ComparisonProtocol | None:
    """The protocol shipped under ``protocol_id`` (at whatever version it ships), else None."""
    return _shipped().get(protocol_id)


def shipped_protocol(protocol_id: str, version: int) -> ComparisonProtocol | None:
    """The protocol shipped with this suite under ``protocol_id`` at ``version``, else None.

    Only the suite's own protocol files are looked up (never a path named by a submission).

    Args:
        protocol_id: A protocol id, e.g. ``"digits-convnet"``.
        version: The protocol version.

    Returns:
        The shipped protocol, or None for an id the suite does not ship or another version.
    """
    protocol = shipped_latest(protocol_id)
    return protocol if protocol is not None and protocol.version == version else None


def find_protocol(
    protocol_id: str,
    version: int,
    content_hash: str,
    given: Sequence[ComparisonProtocol] = (),
) -> ComparisonProtocol | None:
    """The protocol with this id, version and content hash: one of ``given`` first, then the
    shipped one; None when the suite knows no protocol with exactly that content.

    Args:
        protocol_id: The protocol id a run records.
        version: Its version.
        content_hash: Its content hash.
        given: Protocols given by the user (``--protocol FILE``), searched first.
    """
    for protocol in (*given, shipped_protocol(protocol_id, version)):
        if (
            protocol is not None
            and (protocol.id, protocol.version) == (protocol_id, version)
            and protocol.content_hash == content_hash
        ):
            return protocol
    return None
