"""One sender per destination, across processes and on every OS: an OS file lock.

`hold(name, holder)` takes an exclusive lock on a file in the data folder's `locks/` and keeps it
while the block runs; a second holder — another process, or another thread of this one — is
refused at once with the description the first one wrote into the file ("plan 12, pid 4711,
since 16:20 UTC"). The operating system releases the lock when its holder dies, however it
dies (a SIGKILL, a power cut), so a stale lock never blocks a resume, unlike a stored process
id whose liveness cannot be asked for cheaply on Windows.

POSIX uses flock(2) (per open file, so two opens in one process exclude each other too);
Windows uses msvcrt.locking on the file's first byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from optout_desk import paths
from optout_desk.core.errors import DeskError


class LockHeldError(DeskError):
    """Someone else holds the lock; `holder` is what they wrote about themselves."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


# Locks this process holds, by file: a second `hold` of the same name in this process is
# refused without touching the OS (msvcrt locks are per process, flock per open file).
_HELD: set[Path] = set()
_HELD_LOCK = threading.Lock()


def lock_path(name: str) -> Path:
    folder = paths.data_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
    return folder / f"{digest}.lock"


def describe(holder: dict[str, Any]) -> str:
    """"plan 12 (pid 4711, since 2026-12-02 16:20 UTC)"."""
    what = str(holder.get("what") or "another run")
    pid = holder.get("pid")
    since = str(holder.get("since") or "")[:16].replace("T", " ")
    details = ", ".join(x for x in (f"pid {pid}" if pid else "",
                                    f"since {since} UTC" if since else "") if x)
    return f"{what} ({details})" if details else what


@contextmanager
def hold(name: str, what: str) -> Iterator[None]:
    """Hold the lock `name` while the block runs; LockHeldError naming the holder otherwise."""
    path = lock_path(name)
    with _HELD_LOCK:
        if path in _HELD:
            raise LockHeldError(_held_message(name, read_holder(path)), read_holder(path))
        _HELD.add(path)
    handle: IO[bytes] | None = None
    try:
        handle = open(path, "a+b")
        if not _try_lock(handle):
            holder = read_holder(path)
            raise LockHeldError(_held_message(name, holder), holder)
        record = {"what": what, "pid": os.getpid(),
                  "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        _write_holder(handle, record)
        try:
            yield
        finally:
            _write_holder(handle, {})
            _unlock(handle)
    finally:
        if handle is not None:
            handle.close()
        with _HELD_LOCK:
            _HELD.discard(path)


def is_held(name: str) -> dict[str, Any] | None:
    """The holder's description when someone holds `name`, else None (taken and released at
    once to find out)."""
    try:
        with hold(name, "a check"):
            return None
    except LockHeldError as exc:
        return exc.holder


def read_holder(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            handle.seek(1)  # past the locked byte (Windows refuses to read a locked range)
            text = handle.read(4096).decode("utf-8", "replace").strip()
        data = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _held_message(name: str, holder: dict[str, Any]) -> str:
    return f"{name} is busy: {describe(holder)} holds it."


def _write_holder(handle: IO[bytes], record: dict[str, Any]) -> None:
    # Byte 0 is the locked byte (Windows locks a range; other processes cannot read it there):
    # the description starts after it.
    handle.seek(0)
    handle.truncate()
    handle.write(b" " + json.dumps(record).encode("utf-8"))
    handle.flush()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows runners
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
