"""What two submissions of the same run id share: the fields a rerun must reproduce.

A rerun of a run id on the CPU, with the recorded thread count, is bit-identical in every field
except :data:`VOLATILE` ones (the suite's runs are deterministic for a seed). ``pruning-suite
audit`` uses :func:`compare_runs` to detect an edited file; the runner uses :func:`reproduces`
to keep a stored submission that a rerun only reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ProtocolError, PruningSuiteError
from ..text import inline

__all__ = [
    "VOLATILE",
    "check_protocol_folder",
    "check_same_protocol",
    "compare_runs",
    "reproduces",
    "settings_note",
    "stored_protocol_hash",
]

VOLATILE = (
    "created", "timings", "environment", "suite", "pruned_model", "certification", "latency",
)  # fmt: skip
"""Top-level fields a rerun may change: when, how long, where, by which checkout, the
certification (recomputed by ``validate`` under the current rule set anyway) and the measured
latency (a property of the machine and its load, not of the run).

``base_model.source`` (trained, cached or imported) is ignored too: the checkpoint's sha256 says
whether it is the same base model."""


def compare_runs(recorded: dict[str, Any], rerun: dict[str, Any], atol: float = 0.0) -> list[str]:
    """Every field of ``recorded`` that ``rerun`` does not reproduce (``VOLATILE`` ignored).

    Floats are equal when ``|a - b| <= atol`` (0: bit-identical); everything else exactly. A
    field the recorded file does not hold (``None`` or absent: written by an older suite) is not
    compared.
    """
    differences: list[str] = []
    for key in sorted(set(recorded) | set(rerun)):
        if key not in VOLATILE:
            differences += _diff(recorded.get(key), rerun.get(key), f"$.{key}", atol)
    return differences


def _diff(a: Any, b: Any, where: str, atol: float) -> Iterator[str]:
    if where == "$.base_model.source":
        return
    if a is None and b is not None:
        return  # not recorded by the suite that wrote the file
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            yield from _diff(a.get(key), b.get(key), f"{where}.{key}", atol)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{where}[{i}]", atol)
    elif isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        if not (a == b or math.isclose(a, b, rel_tol=0, abs_tol=atol)):
            yield f"{where}: {a!r} != {b!r}"
    elif a != b:
        yield f"{where}: {_short(a)} != {_short(b)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def reproduces(stored: dict[str, Any], rerun: dict[str, Any]) -> bool:
    """Whether ``rerun`` adds nothing to ``stored``: every compared field bit-identical, both
    ways (a field only one of them records counts as a difference), the same certification
    (setup, division, unmet requirements; the rule set it was made under aside, since
    ``validate`` recertifies under the current one), and each :data:`VOLATILE` field recorded
    by both or by neither (a rerun that measured latency the stored file lacks is new
    information)."""
    if compare_runs(stored, rerun) or compare_runs(rerun, stored):
        return False
    if _certified(stored) != _certified(rerun):
        return False
    return all((stored.get(key) is None) == (rerun.get(key) is None) for key in VOLATILE)


def settings_note(stored: Any, rerun: dict[str, Any]) -> str | None:
    """One line naming the settings that decide a run's bits and differ between a stored file
    and its rerun (device, CPU numerics, torch version, CPU threads, processes), or None.

    None too when the two hold the same ``evidence`` (weights and predictions digests): the bits
    are the same, so other settings explain no difference and must not excuse an edit. A
    setting the stored file does not record (``cpu_numerics`` of older files) is not compared;
    its values are shown escaped (:func:`~pruning_suite.text.inline`), whatever their type.

    Args:
        stored: The stored submission (any JSON value: a stored file may be forged).
        rerun: The rerun's submission, as JSON.
    """
    stored = stored if isinstance(stored, dict) else {}
    if stored.get("evidence") == rerun.get("evidence"):
        return None
    recorded = stored.get("environment") if isinstance(stored.get("environment"), dict) else {}
    rerun = rerun.get("environment") or {}
    settings = [("device {}", "device"), ("CPU numerics ({})", "cpu_numerics"),
                ("torch {}", "torch"), ("CPU threads: {}", "num_threads"),
                ("processes: {}", "world_size")]  # fmt: skip
    differ = [
        (shown, str(recorded[name]), str(rerun.get(name)))
        for shown, name in settings
        if recorded.get(name) is not None and recorded[name] != rerun.get(name)
    ]
    if not differ:
        return None
    made = ", ".join(shown.format(inline(a, 200)) for shown, a, _ in differ)
    used = ", ".join(shown.format(inline(b, 200)) for shown, _, b in differ)
    return (
        f"the file was made with {made}; this rerun used {used}: bit differences are expected, "
        "so a mismatch alone does not mean the file was edited"
    )


def _certified(data: dict[str, Any]) -> Any:
    certification = data.get("certification")
    if not isinstance(certification, dict):
        return certification
    return {k: v for k, v in certification.items() if k != "ruleset"}


def check_same_protocol(path: Path, recorded: str | None, protocol: Any) -> None:
    """Refuse to replace ``path``, run under another content of ``protocol``'s id and version.

    The run id holds the protocol's id and version, not its content (committed files keep their
    ids), so two different custom protocols under one id and version share run ids: the second
    would overwrite the first one's results (issue 14). Checked before any work.

    Args:
        path: The stored submission.
        recorded: Its ``protocol.content_hash``; None (unreadable) is not checked.
        protocol: The protocol about to run (a ``ComparisonProtocol``).

    Raises:
        ProtocolError: The recorded content hash is not ``protocol.content_hash``.
    """
    if recorded is not None and recorded != protocol.content_hash:
        raise ProtocolError(
            f"{path} ran under another content of protocol {protocol.id}@"
            f"{protocol.version} (content hash {recorded[:12]}..., now "
            f"{protocol.content_hash[:12]}...)",
            "a changed protocol needs a new version (or id), so its runs get new "
            "files; or move the old runs out of --out",
        )


def check_protocol_folder(folder: Path, protocol: Any) -> None:
    """Refuse to run ``protocol`` into ``folder`` (``out/<protocol id>``) when a submission
    there ran under another content of the same id and version.

    A second seed of a changed custom protocol has another run id, so it would land beside the
    first seed's file and the two would be ranked as one protocol (issue 14). Checked before any
    work; unreadable files and other ids or versions are not checked.

    Raises:
        ProtocolError: As :func:`check_same_protocol`, naming the first such file.
    """
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.json")):
        stored = _stored_protocol(path)
        if stored.get("id") == protocol.id and stored.get("version") == protocol.version:
            recorded = stored.get("content_hash")
            check_same_protocol(path, recorded if isinstance(recorded, str) else None, protocol)


def stored_protocol_hash(path: Path) -> str | None:
    """``protocol.content_hash`` of the submission at ``path``; None when absent or unreadable."""
    recorded = _stored_protocol(path).get("content_hash")
    return recorded if isinstance(recorded, str) else None


def _stored_protocol(path: Path) -> dict[str, Any]:
    """The ``protocol`` block of the submission at ``path``; empty when absent or unreadable."""
    from .jsonio import read_json

    if not path.is_file():
        return {}
    try:
        data = read_json(path)
    except (PruningSuiteError, OSError):
        return {}
    protocol = data.get("protocol") if isinstance(data, dict) else None
    return protocol if isinstance(protocol, dict) else {}
