"""The protocol catalogue: every protocol of every registered protocol folder, by id.

A protocol folder is a folder of ``<id>.toml`` files registered through the hook
``register_protocol_folders``: the suite registers its own (``pruning_suite/protocol/files``, see
:mod:`pruning_suite.protocol.builtin`), and a third-party package ships its protocols the same way,
as lm-evaluation-harness's task folders do. Protocol ids are unique across all folders, because
results are filed and ranked by protocol id and version: a shipped id always means the shipped
protocol (a plugin's file reusing one is left out), and an id two plugin folders define is an
error, never a silent override. A plugin's folder cannot stop the rest of the catalogue: an id two
plugin folders define fails alone (loading it names both files), a plugin's file reusing a shipped
id and a malformed file of a plugin's folder are left out of :func:`list_protocols`, and
:func:`catalogue_problems` names each, one line apiece.

Torch-free: listing and loading protocols needs only TOML and pydantic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from ..contract.registry import Registry
from ..errors import ProtocolError, did_you_mean
from .builtin import SHIPPED, shipped_folder
from .comparison import DEFAULT_PROTOCOL, ComparisonProtocol, load_protocol_file

__all__ = [
    "ProtocolFile",
    "any_protocol",
    "catalogue_problems",
    "find_protocol",
    "known_protocol",
    "list_protocols",
    "load_protocol",
    "protocol_files",
    "registered_protocol",
    "shipped_latest",
    "shipped_protocol",
]

SUFFIX = ".toml"


@dataclass(frozen=True)
class ProtocolFile:
    """One protocol file of a registered folder.

    Attributes:
        id: The protocol id (the file name without ``.toml``).
        folder: The registered name of the folder holding it (``"pruning-suite"`` for the
            suite's own).
        file: The file, a ``pathlib.Path`` or an ``importlib.resources`` traversable.
    """

    id: str
    folder: str
    file: Traversable


class _RecordsAProtocol(Protocol):
    """Anything with a ``protocol`` reference (a submission): ``id``, ``version``, ``content_hash``."""

    @property
    def protocol(self) -> Any: ...


def protocol_files(folders: Registry[Any] | None = None) -> dict[str, ProtocolFile]:
    """Every protocol file of every registered folder, by protocol id.

    Args:
        folders: Folder name -> folder (a ``Path``, a path string or a traversable); None takes
            ``load_registry().protocol_folders`` (every installed plugin's folders).

    Returns:
        Protocol id -> its file, sorted by id; a shipped id is always the shipped file. An id
        that two plugin folders define is left out (:func:`catalogue_problems` names it), as is
        a plugin's file reusing a shipped id and every file of a registered folder that is not
        a folder.
    """
    return _scan(_folders(folders)).files


def list_protocols(folders: Registry[Any] | None = None) -> list[ComparisonProtocol]:
    """Every registered protocol (the shipped ones and those of plugins), sorted by id.

    A malformed file of a plugin's folder is left out (:func:`catalogue_problems` names it).

    Args:
        folders: As in :func:`protocol_files`.

    Raises:
        ProtocolError: A malformed file of the suite's own folder.
    """
    protocols = []
    for entry in protocol_files(folders).values():
        try:
            protocols.append(_load_entry(entry))
        except ProtocolError:
            if entry.folder == SHIPPED:
                raise
    return protocols


def catalogue_problems(folders: Registry[Any] | None = None) -> list[str]:
    """One line per protocol the catalogue leaves out: an id two plugin folders define, a
    plugin's file reusing a shipped id, a registered folder that is not a folder, an ``<id>.toml``
    entry that is not a file, a malformed file of a plugin's folder (its error and hint). Lines
    hold file names as they are, control characters included: escape them before printing
    (``pruning-suite protocols`` does).

    Args:
        folders: As in :func:`protocol_files`.
    """
    scan = _scan(_folders(folders))
    problems = [*scan.clashes.values(), *scan.folder_errors]
    for entry in scan.files.values():
        try:
            _load_entry(entry)
        except ProtocolError as err:
            problems.append(err)
    return [f"{err.message} ({err.hint})" if err.hint else err.message for err in problems]


def load_protocol(
    protocol_id: str | None, folders: Registry[Any] | None = None
) -> ComparisonProtocol:
    """Load a registered protocol by id, or a protocol file by path (anything ending in ``.toml``).

    Args:
        protocol_id: A protocol id of any registered folder, a path to a ``.toml`` file, or None
            for the default (:data:`~pruning_suite.protocol.spec.DEFAULT_PROTOCOL`).
        folders: As in :func:`protocol_files`.

    Raises:
        ProtocolError: Unknown id ("did you mean" included), an id two plugin folders define, a
            malformed file, a file whose id differs from its name, or a file that reuses a registered protocol's id and version
            with other content (R-PROTO-2).
    """
    protocol_id = protocol_id or DEFAULT_PROTOCOL
    if protocol_id.endswith(SUFFIX):
        return _no_shadowing(load_protocol_file(Path(protocol_id)), protocol_id, folders)
    entry, files = _lookup(protocol_id, folders)
    if entry is None:
        guess = did_you_mean(protocol_id, files)
        raise ProtocolError(
            f"unknown protocol {protocol_id!r}",
            f"{guess}known protocols: {', '.join(files)} ('pruning-suite protocols' lists them)",
        )
    return _load_entry(entry)


def shipped_latest(protocol_id: str) -> ComparisonProtocol | None:
    """The protocol shipped under ``protocol_id`` (at whatever version it ships), else None."""
    return _shipped_protocols().get(protocol_id)


def shipped_protocol(protocol_id: str, version: int) -> ComparisonProtocol | None:
    """The protocol shipped with this suite under ``protocol_id`` at ``version``, else None.

    Only the suite's own protocol folder is looked up (never a path named by a submission, never
    a plugin's folder: :func:`find_protocol` looks there too).

    Args:
        protocol_id: A protocol id, e.g. ``"digits-convnet"``.
        version: The protocol version.

    Returns:
        The shipped protocol, or None for an id the suite does not ship or another version.
    """
    protocol = shipped_latest(protocol_id)
    return protocol if protocol is not None and protocol.version == version else None


def any_protocol(protocol_id: str, version: int) -> ComparisonProtocol | None:
    """The protocol ``protocol_id@version`` the suite ships, else one a plugin's folder holds
    (a broken plugin folder counts as none); None when neither knows it."""
    shipped = shipped_protocol(protocol_id, version)
    if shipped is not None:
        return shipped
    try:
        return registered_protocol(protocol_id, version)
    except ProtocolError:
        return None


def registered_protocol(
    protocol_id: str, version: int, folders: Registry[Any] | None = None
) -> ComparisonProtocol | None:
    """Like :func:`shipped_protocol`, over every registered folder (plugins' included).

    Args:
        protocol_id: A protocol id.
        version: The protocol version.
        folders: As in :func:`protocol_files`.

    Raises:
        ProtocolError: Two plugin folders define ``protocol_id``, or its file is malformed.
    """
    entry = _lookup(protocol_id, folders)[0]
    protocol = _load_entry(entry) if entry is not None else None
    return protocol if protocol is not None and protocol.version == version else None


def find_protocol(
    protocol_id: str,
    version: int,
    content_hash: str,
    given: Sequence[ComparisonProtocol] = (),
) -> ComparisonProtocol | None:
    """The protocol with this id, version and content hash: one of ``given`` first, then the
    shipped one, then one of a plugin's protocol folder; None when the suite knows no protocol
    with exactly that content.

    Args:
        protocol_id: The protocol id a run records.
        version: Its version.
        content_hash: Its content hash.
        given: Protocols given by the user (``--protocol FILE``), searched first.
    """
    for protocol in _candidates(protocol_id, version, given):
        if (
            protocol is not None
            and (protocol.id, protocol.version) == (protocol_id, version)
            and protocol.content_hash == content_hash
        ):
            return protocol
    return None


def _candidates(
    protocol_id: str, version: int, given: Sequence[ComparisonProtocol]
) -> Iterable[ComparisonProtocol | None]:
    yield from given
    yield any_protocol(protocol_id, version)


def known_protocol(
    sub: _RecordsAProtocol, protocols: Sequence[ComparisonProtocol] = ()
) -> ComparisonProtocol | None:
    """The protocol ``sub`` ran under, if the suite knows it with the same content hash.

    :func:`find_protocol` with the submission's protocol reference.

    Args:
        sub: A submission (anything whose ``protocol`` has ``id``, ``version``, ``content_hash``).
        protocols: Protocols the user gave (``--protocol FILE``), searched first.
    """
    ref = sub.protocol
    return find_protocol(ref.id, ref.version, ref.content_hash, protocols)


@cache
def _shipped_protocols() -> dict[str, ComparisonProtocol]:
    folders: Registry[Any] = Registry("protocol folder")
    folders.add(SHIPPED, shipped_folder())
    return {protocol.id: protocol for protocol in list_protocols(folders)}


@dataclass(frozen=True)
class _Scan:
    files: dict[str, ProtocolFile]
    clashes: dict[str, ProtocolError]
    folder_errors: list[ProtocolError]


def _folders(folders: Registry[Any] | None) -> Registry[Any]:
    if folders is not None:
        return folders
    from ..contract.plugins import load_registry

    return load_registry().protocol_folders


def _scan(folders: Registry[Any]) -> _Scan:
    """Every protocol file by id. The suite's own folder is read first and its ids win: a
    plugin's file reusing one goes to ``folder_errors``; an id two plugin folders define goes
    to ``clashes`` instead."""
    found: dict[str, ProtocolFile] = {}
    clashes: dict[str, ProtocolError] = {}
    errors: list[ProtocolError] = []
    for name, folder in sorted(folders.items(), key=lambda item: item[0] != SHIPPED):
        try:
            entries, not_files = _files_in(name, folder)
        except ProtocolError as err:
            errors.append(err)
            continue
        errors += not_files
        for entry in entries:
            held = found.setdefault(entry.id, entry)
            if held is entry:
                continue
            if held.folder == SHIPPED:
                errors.append(_redefines_shipped(entry))
            else:
                clashes.setdefault(entry.id, _clash(held, entry))
    files = {key: entry for key, entry in sorted(found.items()) if key not in clashes}
    return _Scan(files, clashes, errors)


def _lookup(
    protocol_id: str, folders: Registry[Any] | None
) -> tuple[ProtocolFile | None, dict[str, ProtocolFile]]:
    """The file of ``protocol_id`` (None when no folder has it) and every file by id.

    Raises:
        ProtocolError: Two plugin folders define ``protocol_id``.
    """
    scan = _scan(_folders(folders))
    if protocol_id in scan.clashes:
        raise scan.clashes[protocol_id]
    return scan.files.get(protocol_id), scan.files


def _files_in(name: str, folder: Any) -> tuple[list[ProtocolFile], list[ProtocolError]]:
    """The ``<id>.toml`` files of ``folder``, and one error per ``<id>.toml`` entry that is not
    a file (a folder, a broken link), by name.

    Raises:
        ProtocolError: ``folder`` is not a folder.
    """
    root = Path(folder) if isinstance(folder, str) else folder
    if not root.is_dir():
        raise ProtocolError(
            f"protocol folder {name!r} ({root}) is not a folder",
            "the plugin that registers it (hook register_protocol_folders) must return an "
            "existing folder of <id>.toml files",
        )
    files, not_files = [], []
    for file in sorted(root.iterdir(), key=lambda file: file.name):
        if not file.name.endswith(SUFFIX):
            continue
        if file.is_file():
            files.append(ProtocolFile(file.name[: -len(SUFFIX)], name, file))
        else:
            not_files.append(_not_a_file(name, file))
    return files, not_files


def _not_a_file(name: str, file: Traversable) -> ProtocolError:
    return ProtocolError(
        f"protocol folder {name!r} holds {file}, which is not a file",
        "a protocol is one <id>.toml file: rename or remove it",
    )


def _clash(first: ProtocolFile, second: ProtocolFile) -> ProtocolError:
    return ProtocolError(
        f"protocol id {first.id!r} is defined twice: in folder {first.folder!r} ({first.file}) "
        f"and in folder {second.folder!r} ({second.file})",
        "protocol ids must be unique across every registered protocol folder: rename one of "
        "the files and its id, or uninstall the plugin that registers one of the folders",
    )


def _redefines_shipped(entry: ProtocolFile) -> ProtocolError:
    return ProtocolError(
        f"protocol file {entry.file} of folder {entry.folder!r} reuses the shipped protocol id "
        f"{entry.id!r}; shipped ids cannot be redefined, so the shipped protocol is used",
        "rename the file and the id it declares (e.g. "
        f"'{entry.folder}-{entry.id}'), or uninstall the plugin that registers the folder",
    )


def _load_entry(entry: ProtocolFile) -> ComparisonProtocol:
    with resources.as_file(entry.file) as path:
        protocol = load_protocol_file(path)
    if protocol.id != entry.id:
        raise ProtocolError(
            f"protocol file {entry.id}{SUFFIX} (folder {entry.folder!r}) declares id "
            f"{protocol.id!r}",
            "make them equal",
        )
    return protocol


def _no_shadowing(
    protocol: ComparisonProtocol, path: str, folders: Registry[Any] | None
) -> ComparisonProtocol:
    """Refuse a protocol file that reuses a registered protocol's id and version with other content.

    Results are filed and ranked by protocol id and version, so such a file would mix runs under
    another recipe into the registered protocol's tables (and overwrite its run files).
    """
    entry = _lookup(protocol.id, folders)[0]
    if entry is None:
        return protocol
    registered = _load_entry(entry)
    if registered.version == protocol.version and registered.content_hash != protocol.content_hash:
        raise ProtocolError(
            f"protocol file {path} reuses the id and version of the shipped protocol "
            f"{protocol.id}@{protocol.version} but differs from it",
            "give your protocol a new id (or bump its version) so its results are not ranked "
            "with the shipped protocol's",
        )
    return protocol
