"""One helper for every slow call the GUI makes (after Anki's QueryOp and Picard's run_task).

    handle = run_task(owner, work, on_success=..., on_failure=..., on_progress=...)

`work(progress, cancel)` runs on a QThreadPool thread and calls the same workflow functions the
CLI runs. Its result, its exception or its progress reports arrive on the GUI thread through
queued signals received by @Slot methods of a GUI-thread object (the TaskHandle). A failure
without an `on_failure` is reported by `report_failure`: an expected problem (a DeskError: a
bad file, a wrong key, a platform that said no) goes to the window's message bar (tier 1), a
cancel to a short info line, anything else to the error dialog (tier 2) — nothing dies
silently. A page whose on_failure tidies up first calls `report_failure(self, exc)` itself.

- Cancel is cooperative: `handle.cancel()` sets the CancelToken the work checks between steps.
- Progress is throttled in the worker (at most ~20 reports a second, the last one always
  delivered), so a fast workflow cannot flood the GUI thread.
- Every running task is kept in `_RUNNING` (a Python reference, so nothing is garbage-collected
  mid-run); `cancel_all_and_wait()` is what the window calls when it closes.
- If the owner is destroyed before the task ends, the task is cancelled and its callbacks are
  dropped (they would touch deleted widgets).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QWidget

from optout_desk.core.errors import Cancelled, DeskError
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)

T = TypeVar("T")

PROGRESS_INTERVAL_S = 0.05  # coalesce progress reports to at most ~20 per second

_POOL: QThreadPool | None = None
_RUNNING: set[TaskHandle[Any]] = set()


def thread_pool() -> QThreadPool:
    """The pool the desk's tasks run on (its own, so other libraries cannot starve it)."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(4)
    return _POOL


def running_tasks() -> list[TaskHandle[Any]]:
    return list(_RUNNING)


class _Signals(QObject):
    """Emitted from the worker thread; delivered queued to the TaskHandle on the GUI thread."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)


class _Runner(QRunnable):
    def __init__(
        self, handle: TaskHandle[Any], work: Callable[[ProgressCallback, CancelToken], Any]
    ) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._handle = handle
        self._work = work
        self._signals = handle._signals
        self._last_emit = 0.0
        self._pending: Progress | None = None
        self._lock = threading.Lock()

    def _progress(self, report: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_emit < PROGRESS_INTERVAL_S:
                self._pending = report
                return
            self._last_emit = now
            self._pending = None
        self._emit(self._signals.progressed, report)

    def _flush_progress(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._emit(self._signals.progressed, pending)

    def run(self) -> None:
        try:
            result = self._work(self._progress, self._handle.cancel_token)
        except BaseException as exc:  # every failure must reach the GUI thread
            # Keep the traceback text: the error dialog shows it for unexpected exceptions.
            exc.__dict__.setdefault("_desk_traceback", traceback.format_exc())
            self._emit(self._signals.failed, exc)
            return
        self._flush_progress()
        self._emit(self._signals.succeeded, result)

    @staticmethod
    def _emit(signal: Any, value: object) -> None:
        try:
            signal.emit(value)
        except RuntimeError:
            # The window went away while this ran (the app is quitting): nobody is left to
            # tell, and the work itself is done or journaled.
            log.info("a background task finished after its window closed")


class TaskHandle(QObject, Generic[T]):
    """A running background task: cancel it, or wait for `done` (emitted after the callbacks)."""

    done = Signal()

    def __init__(
        self,
        owner: QObject,
        name: str,
        on_success: Callable[[T], None],
        on_failure: Callable[[BaseException], None] | None,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        super().__init__()
        self.name = name
        self.cancel_token = CancelToken()
        self.finished_ok: bool | None = None
        self._owner: QObject | None = owner
        self._on_success: Callable[[T], None] | None = on_success
        self._on_failure = on_failure
        self._on_progress = on_progress
        self._signals = _Signals()
        queued = Qt.ConnectionType.QueuedConnection
        self._signals.progressed.connect(self._deliver_progress, queued)
        self._signals.succeeded.connect(self._deliver_success, queued)
        self._signals.failed.connect(self._deliver_failure, queued)
        owner.destroyed.connect(self._owner_destroyed)

    @property
    def running(self) -> bool:
        return self in _RUNNING

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @Slot()
    def _owner_destroyed(self) -> None:
        self._owner = None
        self._on_success = None
        self._on_failure = None
        self._on_progress = None
        self.cancel()

    @Slot(object)
    def _deliver_progress(self, report: Progress) -> None:
        if self._on_progress is not None and self in _RUNNING:
            self._on_progress(report)

    @Slot(object)
    def _deliver_success(self, result: T) -> None:
        self.finished_ok = True
        _RUNNING.discard(self)
        callback = self._on_success
        try:
            if callback is not None:
                callback(result)
        finally:
            self._finish()

    @Slot(object)
    def _deliver_failure(self, exc: BaseException) -> None:
        self.finished_ok = False
        _RUNNING.discard(self)
        log.info("task %s failed: %s", self.name, type(exc).__name__)
        try:
            if self._on_failure is not None:
                self._on_failure(exc)
            elif self._owner is not None:
                report_failure(self._owner, exc)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._owner is not None:
            try:
                self._owner.destroyed.disconnect(self._owner_destroyed)
            except (RuntimeError, TypeError):  # the owner is already half-destroyed
                pass
        self._on_success = self._on_failure = self._on_progress = None
        self.done.emit()


CANCELLED_TEXT = "Cancelled; nothing was changed."


def report_failure(owner: QObject, exc: BaseException,
                   title: str = "The operation failed") -> None:
    """Tell the operator about a failed task in the owner's window: a cancel as an info line,
    an expected problem (DeskError) as a warning in the message bar, anything else in the
    error dialog with its details."""
    from optout_desk.ui.host import PageHost

    window = owner.window() if isinstance(owner, QWidget) else None
    if not isinstance(window, PageHost):  # a widget outside the main window (a dialog)
        from optout_desk.ui.errors import ErrorDialog

        ErrorDialog.show_exception(window, exc, title)
        return
    if isinstance(exc, Cancelled):
        window.notify(exc.message or CANCELLED_TEXT, "info")
    elif isinstance(exc, DeskError):
        window.notify(exc.message, "warning")
    else:
        window.show_error(exc, title)


def run_task(
    owner: QObject,
    work: Callable[[ProgressCallback, CancelToken], T],
    *,
    on_success: Callable[[T], None],
    on_failure: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    name: str = "",
) -> TaskHandle[T]:
    """Run `work(progress, cancel)` on the thread pool; callbacks run on the GUI thread."""
    handle: TaskHandle[T] = TaskHandle(
        owner, name or getattr(work, "__name__", "task"), on_success, on_failure, on_progress
    )
    _RUNNING.add(handle)
    thread_pool().start(_Runner(handle, work))
    return handle


def cancel_all_and_wait(timeout_ms: int = 5000) -> bool:
    """Cancel every running task and wait for the threads (bounded). True if all stopped."""
    for handle in list(_RUNNING):
        handle.cancel()
    stopped = thread_pool().waitForDone(timeout_ms)
    if not stopped:
        log.warning("%d background task(s) still running at close", len(_RUNNING))
    # Their results will never be delivered: the window is gone.
    for handle in list(_RUNNING):
        handle._owner_destroyed()
    _RUNNING.clear()
    return bool(stopped)
