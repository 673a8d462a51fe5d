"""Group commit: one thread owns the inbox's write connection and commits in batches.

A request hands an operation (a function of the connection) to `run()` and awaits it. The
writer thread takes whatever has queued up meanwhile, runs each operation inside its own
SAVEPOINT in one transaction, COMMITs with `synchronous=FULL` (the WAL is fsynced before COMMIT
returns), and only then resolves every request of the batch. So:

- nothing is acknowledged before it is on disk: a kill -9 after a 2xx loses nothing;
- 32 concurrent deliveries cost one fsync per batch, not one each (while one commit is being
  fsynced, the next batch gathers);
- an operation that fails (a bug, a constraint) fails only its own request: the batch is
  rolled back and run again with a SAVEPOINT per operation; a failed COMMIT fails the whole
  batch, and none of it is acknowledged.
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


class _OperationFailed(Exception):
    """One operation of a batch raised: the batch is rolled back and run again isolated."""


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

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue an operation; the future resolves after its batch's COMMIT."""
        future: Future[T] = Future()
        if not self._accepting:
            future.set_exception(WriterStopped("The inbox writer is not running."))
            return future
        self._queue.put((operation, future))
        return future

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.wrap_future(self.submit(operation))

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
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
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

    def _commit(self, conn: sqlite3.Connection,
                batch: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]]) -> None:
        try:
            outcomes = self._run_batch(conn, batch, isolated=False)
        except _OperationFailed:
            # Rare: one operation failed. Do the batch again with a savepoint per operation,
            # so only that one fails (savepoints cost two statements each: not on the fast
            # path).
            try:
                outcomes = self._run_batch(conn, batch, isolated=True)
            except Exception as exc:
                self._fail_batch(conn, batch, exc)
                return
        except Exception as exc:
            self._fail_batch(conn, batch, exc)
            return
        self.batches += 1
        self.operations += len(batch)
        for (_operation, future), (result, error) in zip(batch, outcomes, strict=True):
            _resolve(future, result, error)

    def _run_batch(self, conn: sqlite3.Connection,
                   batch: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]], *,
                   isolated: bool) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for operation, _future in batch:
            if not isolated:
                try:
                    outcomes.append((operation(conn), None))
                except Exception as exc:
                    conn.execute("ROLLBACK")
                    raise _OperationFailed() from exc
                continue
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

    def _fail_batch(self, conn: sqlite3.Connection,
                    batch: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any]]],
                    exc: Exception) -> None:
        log.error("inbox commit of %d operations failed: %s", len(batch), type(exc).__name__)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        for _operation, future in batch:
            _resolve(future, None, exc)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _resolve(item[1], None, WriterStopped("The inbox writer stopped."))


def _resolve(future: Future[Any], result: Any, error: BaseException | None) -> None:
    """Settle a request; one whose client went away (cancelled) is simply dropped: what it
    asked for is committed all the same, and a redelivery finds it."""
    if future.cancelled():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:  # cancelled between the check and here
        pass
