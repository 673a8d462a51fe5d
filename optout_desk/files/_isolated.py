"""Reading an untrusted file in a child process, so nothing it does can take the app down.

The operator's spreadsheet is a file no one here wrote. Parsers run in native code: a hostile
workbook has made python-calamine abort the whole process (a 512 GiB allocation), and a large
one can exhaust the machine. So the app never parses a file itself: a child Python process (the
same on Windows, macOS and Linux; the frozen app runs itself with READER_FLAG) sniffs, checks
and parses it, and sends the rows back on its stdout in pickled blocks that the app unpacks
while the child converts the next (pickled without a memo: the rows hold no shared objects, and
the memo costs 20x the time: 6 s instead of 0.3 s for a million rows).

The child is bounded three ways: an address-space limit (RLIMIT_AS, on Linux; set inside the
child, before it reads a byte), a watchdog in the app on the child's resident memory (every
system, via psutil; the only memory bound on Windows and macOS, where RLIMIT_AS is not
enforced), and a wall-clock limit. Cancel ends the child at once. However the child ends, the
caller gets one sentence: the child's own BadInputError, or what the app saw happen to it.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optout_desk.core.errors import BadInputError, Cancelled, DeskError
from optout_desk.core.progress import NEVER_CANCELLED, CancelToken
from optout_desk.frames import FrameWriter, read_frames, start_child, take_stdout

from . import limits

_POLL_SECONDS = 0.05
_WATCH_EVERY_SECONDS = 0.1
# The frozen app (PyInstaller) has no Python to run `-c` with: it runs the child when started
# with this as its only argument (packaging/launcher.py).
READER_FLAG = "--optout-desk-file-reader"


class ReaderProcess:
    """One read in one child process: `run` returns what the child's job returned; "rows"
    messages go to `on_rows` as they arrive (on the caller's thread)."""

    def __init__(self, path: Path, job: str, args: tuple[Any, ...],
                 on_rows: Callable[[list[list[Any]] | None], None] | None = None,
                 cancel: CancelToken = NEVER_CANCELLED,
                 memory_limit: int | None = None, time_limit: float | None = None,
                 address_limit: int | None = None) -> None:
        self.path, self.job, self.args = path, job, args
        self.on_rows = on_rows
        self.cancel = cancel
        # The watchdog's bound on the child's resident memory, and the child's own address
        # space limit (the same by default; a test sets them apart to reach each one).
        self.memory_limit = memory_limit or limits.MAX_READER_MEMORY_BYTES
        self.address_limit = address_limit or self.memory_limit
        self.time_limit = time_limit or limits.MAX_READER_SECONDS
        self.peak_rss = 0  # the child's largest resident size the watchdog saw

    def run(self) -> Any:
        if self.cancel.cancelled:
            raise Cancelled()
        # A plain child (not multiprocessing's): nothing of the caller's __main__ is imported
        # into it, so it starts the same under a script, pytest, the GUI or the frozen app.
        process = start_child(READER_FLAG, __name__, (self.job, self.args, self.address_limit))
        frames: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=read_frames, args=(process.stdout, frames),
                                  name="reader-pipe", daemon=True)
        reader.start()
        try:
            assert process.stdin is not None
            try:
                process.stdin.close()  # the request is all it is told
            except OSError:
                pass  # the child has already ended; its exit code says how
            return self._receive(process, frames)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            reader.join(5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def _receive(self, process: subprocess.Popen[bytes], frames: queue.Queue[bytes | None]
                 ) -> Any:
        started = time.monotonic()
        watchdog = _Watchdog(process.pid)
        while True:
            if self.cancel.cancelled:
                raise Cancelled()
            if time.monotonic() - started > self.time_limit:
                raise BadInputError(
                    f"Reading '{self.path.name}' took longer than "
                    f"{self.time_limit / 60:.0f} minutes, so it was stopped; the file is far "
                    "larger than a list, or damaged."
                )
            rss = watchdog.rss()
            self.peak_rss = max(self.peak_rss, rss)
            if rss > self.memory_limit:
                raise _too_much_memory(self.path, self.memory_limit)
            try:
                frame = frames.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            if frame is None:  # the pipe closed without a last word: the child died
                raise _ended(self.path, process.wait(10), self.memory_limit)
            kind, payload = pickle.loads(frame)
            if kind == "rows" and self.on_rows is not None:
                self.on_rows(payload)
            elif kind == "discard" and self.on_rows is not None:
                self.on_rows(None)
            elif kind == "done":
                return payload
            elif kind == "error":
                raise _error_from(payload)
            elif kind == "memory":
                raise _too_much_memory(self.path, self.memory_limit)
            elif kind == "crash":
                raise BadInputError(
                    f"'{self.path.name}' could not be read ({payload}); open it in its program "
                    "and save it again, or export the list as .csv."
                )


class _Watchdog:
    """The child's resident memory, read at most every _WATCH_EVERY_SECONDS."""

    def __init__(self, pid: int | None) -> None:
        self.process: Any = None
        self.last, self.value = 0.0, 0
        try:
            import psutil

            self.process = psutil.Process(pid)
        except Exception:  # psutil missing or the child already gone: RLIMIT_AS still holds
            self.process = None

    def rss(self) -> int:
        now = time.monotonic()
        if self.process is not None and now - self.last >= _WATCH_EVERY_SECONDS:
            self.last = now
            try:
                self.value = int(self.process.memory_info().rss)
            except Exception:  # the child has ended; its pipe says how
                self.process = None
        return self.value


def _error_from(payload: tuple[str, str, int]) -> DeskError:
    name, message, exit_code = payload
    error: DeskError = Cancelled(message) if name == "Cancelled" else (
        BadInputError(message) if exit_code == BadInputError.exit_code else DeskError(message))
    return error


def _too_much_memory(path: Path, limit: int) -> BadInputError:
    return BadInputError(
        f"'{path.name}' needs more than the {limit / 1024**3:.1f} GB of memory the desk gives "
        "one file, so reading it was stopped; split the list into smaller files, or export "
        "it again if it should be small."
    )


def _ended(path: Path, exitcode: int | None, limit: int) -> BadInputError:
    if (exitcode is not None and exitcode < 0) or exitcode in (134, 137, 3):
        # A signal (SIGABRT: a native allocation failed under the memory limit; SIGKILL;
        # SIGSEGV), or Windows' abort code 3.
        return BadInputError(
            f"The reader stopped while reading '{path.name}' (exit {exitcode}): the file needs "
            f"more than the {limit / 1024**3:.1f} GB of memory the desk gives one file, or is "
            "damaged; split the list into smaller files, or export it again."
        )
    return BadInputError(
        f"The reader stopped while reading '{path.name}' (exit {exitcode}); open the file in "
        "its program and save it again."
    )


# ---------------------------------------------------------------- the child


def child_main(request: tuple[str, tuple[Any, ...], int]) -> None:
    """The child process: bound itself, run the job, report on its stdout. Never raises."""
    job, args, memory_limit = request
    _limit_memory(memory_limit)
    # Millions of row lists, none of them garbage, in a process that lives for one read: the
    # cyclic collector would re-scan them all again and again (seconds per million rows).
    gc.disable()
    writer = FrameWriter(take_stdout())
    send = writer.send

    def fail_now(exc: BaseException) -> None:
        """From the extent check's thread while the parser is busy: report and end at once."""
        try:
            send(*_report(exc))
        finally:
            os._exit(2)

    try:
        import csv

        csv.field_size_limit(limits.MAX_CSV_FIELD_CHARS)  # this process only
        from . import _reader

        if job == "rows":
            path, sheet = args
            outcome: Any = _reader.read_rows(Path(path), sheet, send, on_check_failure=fail_now)
        elif job == "sheets":
            outcome = _reader.list_sheet_names(Path(args[0]))
        else:  # pragma: no cover - a programming error
            raise ValueError(job)
        send("done", outcome)
    except BaseException as exc:  # everything is reported; the app decides
        try:
            send(*_report(exc, str(args[0]) if args else ""))
        except BaseException:
            pass
    finally:
        writer.close()


def _report(exc: BaseException, path: str = "") -> tuple[str, Any]:
    if isinstance(exc, DeskError):
        return "error", (type(exc).__name__, exc.message, exc.exit_code)
    if isinstance(exc, FileNotFoundError):
        message = (f"'{Path(path).name}' was moved or deleted while it was being read; choose "
                   "it again.")
        return "error", ("BadInputError", message, BadInputError.exit_code)
    if isinstance(exc, MemoryError):
        return "memory", None
    detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return "crash", f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _limit_memory(limit: int) -> None:
    if not sys.platform.startswith("linux"):
        return  # not enforced by macOS, absent on Windows: the app's watchdog bounds the child
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
