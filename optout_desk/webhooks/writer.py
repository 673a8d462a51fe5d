"""Group commit for the receiver's few writes of its own: one thread owns a write connection.

The deliveries themselves are stored by the event store's child process (event_store.py); this
writer takes the rest: the heartbeat, a CheckMarket webhook's state after its handshake. A
request hands it an operation (a function of the connection: `run()` from the event loop,
`submit()`/`run_sync()` from any thread) and waits. The writer thread takes everything queued
meanwhile into one transaction, COMMITs with `synchronous=FULL` (the WAL is fsynced before
COMMIT returns), and only then resolves the requests, with one call into each waiting event
loop. An operation that fails fails only itself: the batch is rolled back and run again with a
SAVEPOINT per operation; a failed COMMIT fails the whole batch.
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

from optout_desk.store.db import connect

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 1000
_STOP = object()

Operation = Callable[[sqlite3.Connection], Any]
# What is queued: (the operation; the future to settle; the event loop that future belongs to,
# or None for a concurrent.futures.Future).
_Request = tuple[Operation, Any, asyncio.AbstractEventLoop | None]
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

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run an operation in the next batch; returns once that batch is committed."""
        if not self._accepting:
            raise WriterStopped("The inbox writer is not running.")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((operation, future, loop))
        return await future

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue an operation from any thread; the future resolves after its batch's COMMIT."""
        future: Future[T] = Future()
        if not self._accepting:
            future.set_exception(WriterStopped("The inbox writer is not running."))
            return future
        self._queue.put((operation, future, None))
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
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for operation, _future, _loop in batch:
                outcomes.append((operation(conn), None))
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise _OperationFailed() from exc
        conn.execute("COMMIT")
        return outcomes

    def _run_isolated(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        for operation, _future, _loop in batch:
            conn.execute("SAVEPOINT op")
            try:
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
        for (_operation, future, loop), (result, error) in zip(batch, outcomes, strict=True):
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
