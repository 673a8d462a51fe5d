"""Group commit: one thread owns the inbox's write connection and commits in batches.

A request hands the writer either an event to store (`record()`, the receiver's hot path: the
event's columns, built on the caller's thread) or an operation (a function of the connection:
`run()`, `submit()`, `run_sync()`) and waits. The writer thread takes everything that has
queued up meanwhile (up to max_batch) into one transaction: the operations run in turn, the
events are inserted with one statement (store.inbox.record_rows), the transaction COMMITs with
`synchronous=FULL` (the WAL is fsynced before COMMIT returns), and only then are the batch's
requests resolved, with one call into each waiting event loop (call_soon_threadsafe per batch,
not per request). So:

- nothing is acknowledged before it is on disk: a kill -9 after a 2xx loses nothing;
- 32 concurrent deliveries cost one fsync per batch, not one each (while one commit is being
  fsynced, the next batch gathers), and a handful of statements, not three per event;
- the writer thread does little Python per event: it shares the GIL with the event loop, and
  every statement it steps releases and re-takes it;
- a request that fails (a bug, a constraint) fails only itself: the batch is rolled back and
  run again with a SAVEPOINT per request; a failed COMMIT fails the whole batch, and none of
  it is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, TypeVar

from optout_desk.store import inbox
from optout_desk.store.db import connect

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 1000
_STOP = object()

Operation = Callable[[sqlite3.Connection], Any]
# What is queued: (operation, or None for an event; the event's row; the future to settle;
# the event loop that future belongs to, or None for a concurrent.futures.Future).
_Request = tuple[Operation | None, inbox.EventRow | None, Any, asyncio.AbstractEventLoop | None]
_Outcome = tuple[Any, BaseException | None]


class _OperationFailed(Exception):
    """One request of a batch raised: the batch is rolled back and run again isolated."""


class WriterStopped(RuntimeError):
    """The writer is not running: nothing was stored."""


class GroupCommitWriter:
    def __init__(self, db_path: Path | None = None, *, max_batch: int = MAX_BATCH) -> None:
        self._db_path = db_path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._accepting = False
        self.batches = 0  # transactions committed (for the benchmark and tests)
        self.operations = 0
        self.loop_calls = 0  # call_soon_threadsafe calls made to wake waiting loops

    def start(self) -> GroupCommitWriter:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread = None
            raise self._startup_error
        self._accepting = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        thread, self._thread = self._thread, None
        self._accepting = False
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    # -- requests --------------------------------------------------------------------------

    async def record(self, row: inbox.EventRow) -> inbox.Recorded:
        """Store one delivery (inbox.event_row()); returns once its batch is committed."""
        if not self._accepting:
            raise WriterStopped("The inbox writer is not running.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[inbox.Recorded] = loop.create_future()
        self._queue.put((None, row, future, loop))
        return await future

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run an operation in the next batch; returns once that batch is committed."""
        if not self._accepting:
            raise WriterStopped("The inbox writer is not running.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((operation, None, future, loop))
        return await future

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue an operation from any thread; the future resolves after its batch's COMMIT."""
        future: Future[T] = Future()
        if not self._accepting:
            future.set_exception(WriterStopped("The inbox writer is not running."))
            return future
        self._queue.put((operation, None, future, None))
        return future

    def run_sync(self, operation: Callable[[sqlite3.Connection], T],
                 timeout: float | None = 30.0) -> T:
        return self.submit(operation).result(timeout)

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = connect(self._db_path)
            # FULL: in WAL mode this fsyncs the log at every COMMIT (NORMAL would not), which
            # is what "persisted before acknowledged" needs.
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException as exc:  # handed to start()'s caller
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch: list[_Request] = [first]
                get = self._queue.get_nowait
                while len(batch) < self._max_batch:  # everything queued meanwhile
                    try:
                        item = get()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(conn, batch)
        finally:
            conn.close()
            self._fail_queued()
            log.info("inbox writer: %d operations in %d commits", self.operations, self.batches)

    def _commit(self, conn: sqlite3.Connection, batch: list[_Request]) -> None:
        try:
            outcomes = self._run_batch(conn, batch)
        except _OperationFailed:
            # Rare: one request failed. Do the batch again with a savepoint per request, so
            # only that one fails (savepoints cost two statements each: not on the fast path).
            try:
                outcomes = self._run_isolated(conn, batch)
            except Exception as exc:
                self._fail_batch(conn, batch, exc)
                return
        except Exception as exc:
            self._fail_batch(conn, batch, exc)
            return
        self.batches += 1
        self.operations += len(batch)
        self._settle(batch, outcomes)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[_Outcome]:
        outcomes: list[_Outcome] = [(None, None)] * len(batch)
        rows: list[inbox.EventRow] = []
        where: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for index, (operation, row, _future, _loop) in enumerate(batch):
                if row is not None:
                    rows.append(row)
                    where.append(index)
                elif operation is not None:
                    outcomes[index] = (operation(conn), None)
            if rows:
                recorded = inbox.record_rows(conn, rows, inbox.utc_now())
                for index, result in zip(where, recorded, strict=True):
                    outcomes[index] = (result, None)
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise _OperationFailed() from exc
        conn.execute("COMMIT")
        return outcomes

    def _run_isolated(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        received = inbox.utc_now()
        conn.execute("BEGIN IMMEDIATE")
        for operation, row, _future, _loop in batch:
            conn.execute("SAVEPOINT op")
            try:
                if row is not None:
                    result = inbox.record_rows(conn, [row], received)[0]
                else:
                    assert operation is not None
                    result = operation(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((None, exc))
                continue
            conn.execute("RELEASE op")
            outcomes.append((result, None))
        conn.execute("COMMIT")
        return outcomes

    def _fail_batch(self, conn: sqlite3.Connection, batch: list[_Request],
                    exc: Exception) -> None:
        log.error("inbox commit of %d operations failed: %s", len(batch), type(exc).__name__)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        self._settle(batch, [(None, exc)] * len(batch))

    def _fail_queued(self) -> None:
        left: list[_Request] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        self._settle(left, [(None, WriterStopped("The inbox writer stopped."))] * len(left))

    def _settle(self, batch: list[_Request], outcomes: list[_Outcome]) -> None:
        """Resolve a batch's requests: concurrent futures here, asyncio ones with one call
        into each loop (a loop wakes once per batch, not once per request)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
        for (_operation, _row, future, loop), (result, error) in zip(batch, outcomes,
                                                                     strict=True):
            if loop is None:
                _resolve(future, result, error)
            else:
                by_loop.setdefault(loop, []).append((future, result, error))
        for loop, settled in by_loop.items():
            # Counted before the call: once it is made, the waiting loop may finish (and a
            # test read the count) before this thread runs another line.
            self.loop_calls += 1
            try:
                loop.call_soon_threadsafe(_settle_on_loop, settled)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                self.loop_calls -= 1


def _settle_on_loop(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
                    ) -> None:
    """On the waiting loop: a request whose client went away (cancelled) is simply dropped:
    what it asked for is committed all the same, and a redelivery finds it."""
    for future, result, error in settled:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _resolve(future: Future[Any], result: Any, error: BaseException | None) -> None:
    """Settle a request made from another thread (see _settle_on_loop)."""
    if future.cancelled():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled between the check and here
        pass
