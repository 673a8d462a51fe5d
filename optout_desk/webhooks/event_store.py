"""The receiver's event writes, made by a child process of their own.

Every delivery is committed (synchronous=FULL) before its 2xx. Done on a thread of the
receiver's process, the SQLite work shares the GIL with the event loop: each statement gives
the GIL up and must wait to take it back while the loop parses requests, a dozen times per
batch, and every request of the batch waits with it (measured: 3,300 deliveries/s, p50 9.7 ms
at 32 concurrent senders). In a child process the commits run beside the loop, on another core,
and the loop only hands over rows and reads answers: about twice the deliveries per second and
half the time to acknowledge.

How it works:
- `record(row)` queues an event's row (store.inbox.event_row) and waits. Everything queued while
  the child is busy goes to it as one batch (group commit); up to DEPTH batches are in the pipe
  at once, so the child starts the next commit as soon as one ends.
- The child inserts a batch (store.inbox.record_rows), COMMITs, and only then answers; the
  answer resolves the batch's requests. Nothing is acknowledged before it is on disk.
- A row that fails (a bug, a constraint) fails alone: the child stores the batch again one row
  at a time. A failed COMMIT fails the whole batch; none of it is acknowledged.
- If the child dies, every waiting request fails (the platform sends it again: 503) and the next
  delivery starts a new child. When the receiver stops, the child's stdin closes: it commits
  what it has read and ends. The frozen app runs itself as the child with STORE_FLAG.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from optout_desk import paths
from optout_desk.core.errors import DeskError
from optout_desk.frames import FRAME, FrameWriter, end_child, read_frame, start_child, take_stdout
from optout_desk.store import inbox
from optout_desk.webhooks.writer import WriterStopped

log = logging.getLogger(__name__)

STORE_FLAG = "--optout-desk-event-store"  # the frozen app's way to start it (launcher.py)
DEPTH = 2  # batches handed to the child at once (measured: 3 is no faster than 2)
MAX_BATCH = 1000
START_TIMEOUT_S = 30.0  # for the child to open the database and say it is ready


class EventStoreUnavailable(WriterStopped, DeskError):
    """The child could not open the database: the receiver cannot store, so it does not start
    (a delivery that finds it so gets 503)."""

    def __init__(self, message: str) -> None:
        DeskError.__init__(self, message)


_Waiting = tuple[inbox.EventRow, "asyncio.Future[inbox.Recorded]"]


class EventStore:
    def __init__(self, db_path: Path | None = None) -> None:
        self._db_path = db_path
        self._process: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[_Waiting] = []
        self._in_flight: collections.deque[list[_Waiting]] = collections.deque()
        self._starting: asyncio.Lock | None = None
        self._accepting = False
        self._attached: subprocess.Popen[bytes] | None = None  # whose answers the loop reads
        self._unread = b""
        self.batches = 0  # committed by the child (for the benchmark and tests)
        self.events = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> EventStore:
        """Start the child; raises what kept it from opening the database."""
        self._spawn()
        self._accepting = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Let the child commit what it has and end (from any thread, the loop stopped)."""
        self._accepting = False
        process, self._process = self._process, None
        if process is not None:
            end_child(process, timeout)
        log.info("inbox event store: %d events in %d commits", self.events, self.batches)

    def _spawn(self) -> None:
        process = start_child(STORE_FLAG, __name__, {
            "data_dir": str(paths.data_dir()),
            "db_path": str(self._db_path) if self._db_path else None})
        first = _first_answer(process, START_TIMEOUT_S)
        if first is None or first[0] != "ready":
            end_child(process, 5)
            reason = first[1] if first is not None else "it ended at once"
            raise EventStoreUnavailable(
                f"The inbox's event store could not start ({reason}); check the data folder "
                "and its database, then start the receiver again.")
        self._process = process
        self._attached = None

    # -- requests --------------------------------------------------------------------------

    async def record(self, row: inbox.EventRow) -> inbox.Recorded:
        """Store one delivery; returns once its batch is committed."""
        if not self._accepting:
            raise WriterStopped("The inbox writer is not running.")
        loop = self._loop = asyncio.get_running_loop()
        if self._process is None:
            await self._restart()
        if self._attached is not self._process:
            self._attach(loop)
        future: asyncio.Future[inbox.Recorded] = loop.create_future()
        self._queued.append((row, future))
        if len(self._queued) == 1:
            loop.call_soon(self._hand_over)
        return await future

    async def _restart(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._process is None:
                log.warning("inbox event store: starting a new one")
                await asyncio.to_thread(self._spawn)

    def _hand_over(self) -> None:
        """On the loop: what is queued goes to the child as one batch, if it has room."""
        process = self._process
        if process is None or not self._queued or len(self._in_flight) >= DEPTH:
            return
        batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
        self._in_flight.append(batch)
        try:
            assert process.stdin is not None
            # A blocking write on the loop: the child reads a batch whole as soon as it is
            # between commits, so this waits (past the pipe's 64 KB) a commit at most.
            pickle.dump((inbox.utc_now(), [row for row, _future in batch]), process.stdin,
                        protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
        except (OSError, ValueError):
            pass  # the child is gone: _answers sees its pipe close and fails the batch
        if self._queued:
            self._hand_over()

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the child's answers on the loop itself where it can watch a pipe (uvloop and
        the selector loops on Linux and macOS): no thread has to take the GIL back to hand
        them over. Elsewhere (Windows' proactor loop) a thread reads and hands them over."""
        process = self._process
        assert process is not None and process.stdout is not None
        self._attached, self._unread = process, b""
        try:
            loop.add_reader(process.stdout.fileno(), self._readable, process)
        except (NotImplementedError, AttributeError, ValueError):
            threading.Thread(target=self._answers, args=(process,), name="event-store",
                             daemon=True).start()

    def _readable(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        try:
            data = os.read(fd, 1 << 20)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            code = process.poll()
            self._ended(process, code if code is not None else -1)
            return
        self._unread += data
        while len(self._unread) >= FRAME.size:
            (size,) = FRAME.unpack_from(self._unread)
            if len(self._unread) < FRAME.size + size:
                break
            body = self._unread[FRAME.size:FRAME.size + size]
            self._unread = self._unread[FRAME.size + size:]
            self._answered(pickle.loads(body))

    def _answers(self, process: subprocess.Popen[bytes]) -> None:
        """A thread: each answer of the child, handed to the loop (one wake-up per batch)."""
        assert process.stdout is not None
        stream = process.stdout
        while (frame := _read_one(stream)) is not None:
            self._call(self._answered, frame)
        code = process.wait()
        self._call(self._ended, process, code)

    def _call(self, function: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(function, *args)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass

    def _answered(self, frame: tuple[str, Any]) -> None:
        kind, payload = frame
        batch = self._in_flight.popleft()
        if kind == "stored":
            self.batches += 1
            self.events += len(batch)
            for (_row, future), result in zip(batch, payload, strict=True):
                if future.done():  # the client went away; a redelivery finds it stored
                    continue
                if isinstance(result, str):
                    future.set_exception(RuntimeError(result))
                else:
                    future.set_result(inbox.Recorded(*result))
        else:
            error = WriterStopped(str(payload))
            for _row, future in batch:
                if not future.done():
                    future.set_exception(error)
        self._hand_over()

    def _ended(self, process: subprocess.Popen[bytes], code: int) -> None:
        for pipe in (process.stdin, process.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        if self._process is process:
            self._process = None
            log.error("inbox event store ended (exit %s): its waiting deliveries get 503",
                      code)
        error = WriterStopped("The inbox's event store stopped; send the event again.")
        waiting = [w for batch in self._in_flight for w in batch]
        self._in_flight.clear()
        if self._process is None:  # queued for a child that is gone too
            waiting += self._queued
            self._queued = []
        for _row, future in waiting:
            if not future.done():
                future.set_exception(error)


def _first_answer(process: subprocess.Popen[bytes], timeout: float
                  ) -> tuple[str, Any] | None:
    """The child's first answer ("ready", or "failed" and why), waited for at most `timeout`:
    a child that hangs (a database locked by a stuck process, a frozen disk) is killed and
    said so, instead of keeping the receiver from starting, or answering, for ever."""
    assert process.stdout is not None
    stdout = process.stdout
    answers: list[tuple[str, Any] | None] = []
    reader = threading.Thread(target=lambda: answers.append(_read_one(stdout)),
                              name="event-store-start", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        process.kill()  # its pipe closes: the reader thread ends
        reader.join(5)
        return "failed", f"it did not answer within {timeout:g} s"
    return answers[0] if answers else None


def _read_one(stream: Any) -> tuple[str, Any] | None:
    """The child's next answer, or None when its stdout closed."""
    frame = read_frame(stream)
    return None if frame is None else pickle.loads(frame)


# ---------------------------------------------------------------- the child


def child_main(request: dict[str, Any]) -> None:
    """The child: batches of rows from stdin, each committed, then answered on stdout."""
    # Ctrl+C in the terminal reaches the whole process group: the parent decides when this
    # child ends (it closes stdin), so nothing half-done is left by the keystroke.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    writer = FrameWriter(take_stdout())
    try:
        paths.set_data_dir(Path(request["data_dir"]))
        from optout_desk.log import EVENT_STORE_LOG_FILE_NAME, setup_logging
        from optout_desk.store.db import connect

        setup_logging(file_name=EVENT_STORE_LOG_FILE_NAME)
        conn = connect(Path(request["db_path"]) if request["db_path"] else None)
        # FULL: in WAL mode this fsyncs the log at every COMMIT (NORMAL would not), which is
        # what "persisted before acknowledged" needs.
        conn.execute("PRAGMA synchronous=FULL")
    except Exception as exc:
        writer.send("failed", f"{type(exc).__name__}: {exc}"[:200])
        return
    writer.send("ready", None)
    stdin = sys.stdin.buffer
    try:
        while True:
            try:
                received_at, rows = pickle.load(stdin)
            except (EOFError, OSError, pickle.UnpicklingError):
                break  # the receiver stopped (or died): everything read is committed
            writer.send(*store_batch(conn, rows, received_at))
    finally:
        conn.close()


def store_batch(conn: sqlite3.Connection, rows: list[inbox.EventRow], received_at: str
                ) -> tuple[str, Any]:
    """("stored", [(row_id, deliveries) or an error text per row]) once COMMIT returned, or
    ("failed", why) when the batch could not be committed (none of it is stored)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            recorded = inbox.record_rows(conn, rows, received_at)
        except Exception:  # rare: one row failed; store them one by one, it alone fails
            conn.execute("ROLLBACK")
            return "stored", _one_by_one(conn, rows, received_at)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        log.error("inbox commit of %d events failed: %s", len(rows), type(exc).__name__)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return "failed", f"The events could not be stored ({type(exc).__name__})."
    return "stored", [(r.row_id, r.deliveries) for r in recorded]


def _one_by_one(conn: sqlite3.Connection, rows: list[inbox.EventRow], received_at: str
                ) -> list[tuple[int, int] | str]:
    results: list[tuple[int, int] | str] = []
    conn.execute("BEGIN IMMEDIATE")
    for row in rows:
        conn.execute("SAVEPOINT event")
        try:
            [recorded] = inbox.record_rows(conn, [row], received_at)
        except Exception as exc:
            conn.execute("ROLLBACK TO event")
            conn.execute("RELEASE event")
            log.error("an inbox event could not be stored: %s", type(exc).__name__)
            results.append(f"The event could not be stored ({type(exc).__name__}).")
            continue
        conn.execute("RELEASE event")
        results.append((recorded.row_id, recorded.deliveries))
    conn.execute("COMMIT")
    return results
