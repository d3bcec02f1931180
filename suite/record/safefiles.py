"""Files that survive ``kill -9``: temporary names that say who wrote them, stale ones removed by
the next writer, one process at a time per artifact (``flock``), and room checked before long work.

Every atomic write in the suite goes through a temporary file in the target's folder named
``.<name>.<pid>.<8 hex>.tmp`` (:func:`temp_path`) and ``os.replace``; a writer killed between the
two leaves that file behind. :func:`remove_stale_temps` (called by the next write into the folder)
removes it once its writer's pid is no longer alive on this machine, or when it is older than
:data:`STALE_AFTER_S` (a pid reused since; a folder shared with another machine). Temporary files
of older versions, ``tmp<8>.tmp`` and ``.<name>.<8>.tmp`` without a pid, go by age alone.

Torch-free, so ``validate`` and the report can use it too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError
from ..text import one_line

try:
    import fcntl
except ImportError:  # not POSIX: no locks, runs are not serialized
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MIN_FREE_BYTES",
    "die_with_parent",
    "STALE_AFTER_S",
    "check_free_space",
    "exclusive",
    "note",
    "pid_alive",
    "remove_stale_temps",
    "temp_path",
    "write_atomic",
]

STALE_AFTER_S = 3600.0
"""A temporary file this old (seconds since its last change) is stale whoever wrote it."""

MIN_FREE_BYTES = 50 * 2**20
"""The least free space (50 MiB) :func:`check_free_space` accepts before long work."""

_OURS = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_LEGACY = re.compile(r"^(tmp[a-z0-9_]{8}|\..+\.[a-z0-9_]{8})\.tmp$")


def temp_path(path: Path) -> Path:
    """The temporary file to write ``path`` through: ``.<name>.<pid>.<8 hex>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(
    path: Path,
    write: Callable[[BinaryIO], object],
    unwritable: Callable[[OSError], OutputError],
    *,
    fsync: bool = True,
) -> None:
    """THE atomic write: ``write(binary handle)`` into :func:`temp_path`, then ``os.replace``.

    Missing parent folders are created and stale temporary files of killed writers in the folder
    removed first (:func:`remove_stale_temps`). The file keeps an existing target's permissions,
    else gets rw-r--r--. ``fsync=False`` skips the flush to disk (epoch checkpoints: ``kill -9``
    keeps the page cache, and a checkpoint lost to a power cut reads as damaged).

    Args:
        path: The target file.
        write: Writes the complete new content to the handle it is given.
        unwritable: The caller's error for an ``OSError`` (its message says what was written
            and how to fix it); raised from the ``OSError`` (e.g. ``errno.ENOSPC``).
        fsync: Flush the file to disk before the rename.

    Raises:
        OutputError: From ``unwritable``; no temporary file is left behind.
    """
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent)
        with open(tmp, "xb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as err:
        raise unwritable(err) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # only after a failure between creating and replacing


def _mode_for(path: Path) -> int:
    """An existing file's permissions, else rw-r--r-- (honouring nothing stricter than that)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o644


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts; a zombie too)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder`` (not its subfolders).

    A ``.<name>.<pid>.<8 hex>.tmp`` file goes when its pid is dead here or it is older than
    :data:`STALE_AFTER_S`; a pid-less ``tmp<8>.tmp`` or ``.<name>.<8>.tmp`` file of an older
    version goes by age alone. Files that vanish meanwhile, and unremovable ones, are skipped.

    Args:
        folder: The folder a writer is about to write into (missing: nothing to do).
        now: The current ``time.time()`` (tests); None = now.

    Returns:
        The files removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    except OSError:
        return []
    for path in candidates:
        try:
            age = now - path.lstat().st_mtime
            if _stale(path.name, age):
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def _stale(name: str, age_s: float) -> bool:
    ours = _OURS.match(name)
    if ours is not None:
        return age_s > STALE_AFTER_S or not pid_alive(int(ours.group("pid")))
    return _LEGACY.match(name) is not None and age_s > STALE_AFTER_S


def note(line: str) -> None:
    """Print one ``pruning-suite: <line>`` note on stderr (waiting for a lock, resuming); control
    characters in ``line`` (names from cache files, paths) are escaped."""
    print(f"pruning-suite: {one_line(line)}", file=sys.stderr, flush=True)


@contextmanager
def exclusive(lock_file: Path, what: str, say: Callable[[str], None] = note) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` for the block: one process at a time.

    When another process holds it, ``say`` is called once with who (its pid, which the holder
    writes into the file) and this process waits until the holder is done or dies (the kernel
    releases a dead process's lock). The holder removes the file before it lets go, so lock
    files do not pile up; a waiter that then holds a file no longer at the path opens the new
    one and waits again (the usual ``flock`` + inode check). A killed holder leaves its file,
    which the next holder removes. Not re-entrant: a process that takes the same lock twice
    waits forever.

    Args:
        lock_file: The lock's file, beside what it protects; created with its folder.
        what: What the lock protects, for the message (``"base model 0123abcd"``).
        say: Receives the one waiting line (default: stderr).

    Raises:
        OutputError: The lock file cannot be created (a read-only folder, say).
    """
    fd = _held(lock_file, what, say)
    try:
        if fcntl is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_file.unlink()  # while still held: a waiter finds the path gone and retries
        os.close(fd)  # releases the lock


def _held(lock_file: Path, what: str, say: Callable[[str], None]) -> int:
    """An open descriptor of ``lock_file``, flocked by this process, still at that path."""
    waited = False
    while True:
        try:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(
                f"cannot create lock file {lock_file}: {err.strerror or err}",
                "the cache must be writable: set PRUNING_SUITE_CACHE to a writable folder",
            ) from err
        if fcntl is None:
            return fd
        waited = _acquire(fd, lock_file, what, (lambda _: None) if waited else say) or waited
        if _still_at(fd, lock_file):
            return fd
        os.close(fd)


def _still_at(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _acquire(fd: int, lock_file: Path, what: str, say: Callable[[str], None]) -> bool:
    """Lock ``fd``; True when it had to wait (``say`` was told for whom)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        pass
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
    who = f"pid {holder}" if holder.isdigit() else "another process"
    say(f"waiting for {who}, which holds {what} ({lock_file})")
    fcntl.flock(fd, fcntl.LOCK_EX)
    return True


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Fail early when the disk of ``folder`` has less than ``needed`` bytes free.

    Args:
        folder: Where the work will write; missing folders are measured at their nearest
            existing parent.
        needed: Bytes the work needs (at least :data:`MIN_FREE_BYTES` are always asked for).
        what: Which folder it is, for the message (``"the cache"``, ``"--out"``).

    Raises:
        OutputError: Less space is free (one line: how much, where, how much is needed).
    """
    needed = max(needed, MIN_FREE_BYTES)
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # cannot tell; the write itself will say
    if free < needed:
        raise OutputError(
            f"only {_mb(free)} free on the disk of {what} {folder}; this run needs about "
            f"{_mb(needed)} there",
            "free some space, or point --out / PRUNING_SUITE_CACHE at a disk with room",
        )


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def die_with_parent(parent: int) -> None:
    """Make this process get SIGKILL when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``).

    A study's worker and the pruning stage's process call it first, so ``kill -9`` of the
    parent leaves no orphan that finishes its work and idles (issue 14); a run's epoch
    checkpoint stays, and the rerun resumes it. A parent that died before the call ends this
    process at once. Elsewhere than Linux it does nothing.

    Args:
        parent: The parent's pid, as the parent saw it (``os.getpid()`` there).
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the call: no signal will come
        os.kill(os.getpid(), signal.SIGKILL)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
