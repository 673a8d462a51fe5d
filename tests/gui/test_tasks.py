"""ui/tasks.py: results, failures, progress throttling, cancel, owner deletion, close."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread

from optout_desk.core.errors import Cancelled, DeskError
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.ui import tasks


def test_result_arrives_on_the_gui_thread(qtbot: Any) -> None:
    owner = QObject()
    seen: list[tuple[int, bool]] = []
    worker_threads: list[bool] = []

    def work(progress: ProgressCallback, cancel: CancelToken) -> int:
        worker_threads.append(threading.current_thread() is threading.main_thread())
        return 42

    def done(value: int) -> None:
        seen.append((value, QThread.currentThread() is owner.thread()))

    handle = tasks.run_task(owner, work, on_success=done)
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert seen == [(42, True)]
    assert worker_threads == [False]
    assert not handle.running and handle.finished_ok


def test_failure_reaches_on_failure_with_its_type(qtbot: Any) -> None:
    owner = QObject()
    failures: list[BaseException] = []

    def work(progress: ProgressCallback, cancel: CancelToken) -> None:
        raise DeskError("The platform said no.")

    handle = tasks.run_task(owner, work, on_success=lambda _: None, on_failure=failures.append)
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert [type(f) for f in failures] == [DeskError]
    assert handle.finished_ok is False


def test_unhandled_failure_goes_to_the_window_error_dialog(main_window: Any, qtbot: Any,
                                                           monkeypatch: Any) -> None:
    shown: list[BaseException] = []
    monkeypatch.setattr(main_window, "show_error", lambda exc, title="": shown.append(exc))

    def work(progress: ProgressCallback, cancel: CancelToken) -> None:
        raise ZeroDivisionError("bug")

    handle = tasks.run_task(main_window, work, on_success=lambda _: None)
    with qtbot.waitSignal(handle.done, timeout=5000):
        pass
    assert len(shown) == 1 and isinstance(shown[0], ZeroDivisionError)
    assert "ZeroDivisionError" in shown[0]._desk_traceback  # type: ignore[attr-defined]


def test_progress_is_throttled_and_the_last_report_arrives(qtbot: Any) -> None:
    owner = QObject()
    reports: list[Progress] = []

    def work(progress: ProgressCallback, cancel: CancelToken) -> str:
        for i in range(1, 20_001):
            progress(Progress(done=i, total=20_000))
        return "ok"

    handle = tasks.run_task(owner, work, on_success=lambda _: None, on_progress=reports.append)
    with qtbot.waitSignal(handle.done, timeout=10_000):
        pass
    assert reports[-1].done == 20_000
    assert len(reports) < 200  # 20,000 reports coalesced to a handful


def test_cancel_is_cooperative(qtbot: Any) -> None:
    owner = QObject()
    started = threading.Event()
    failures: list[BaseException] = []

    def work(progress: ProgressCallback, cancel: CancelToken) -> None:
        started.set()
        while not cancel.wait(0.01):
            pass
        raise Cancelled()

    handle = tasks.run_task(owner, work, on_success=lambda _: None, on_failure=failures.append)
    qtbot.waitUntil(started.is_set, timeout=5000)
    with qtbot.waitSignal(handle.done, timeout=5000):
        handle.cancel()
    assert [type(f) for f in failures] == [Cancelled]


def test_a_deleted_owner_cancels_the_task_and_drops_callbacks(qtbot: Any) -> None:
    owner = QObject()
    calls: list[object] = []
    started = threading.Event()

    def work(progress: ProgressCallback, cancel: CancelToken) -> str:
        started.set()
        while not cancel.wait(0.01):
            pass
        return "finished anyway"

    handle = tasks.run_task(owner, work, on_success=calls.append, on_failure=calls.append)
    qtbot.waitUntil(started.is_set, timeout=5000)
    with qtbot.waitSignal(handle.done, timeout=5000):
        owner.deleteLater()
    assert calls == []
    assert handle.cancel_token.cancelled


def test_cancel_all_and_wait_stops_running_work(qtbot: Any) -> None:
    owner = QObject()
    started = threading.Event()

    def work(progress: ProgressCallback, cancel: CancelToken) -> None:
        started.set()
        while not cancel.wait(0.01):
            pass

    tasks.run_task(owner, work, on_success=lambda _: None)
    qtbot.waitUntil(started.is_set, timeout=5000)
    assert tasks.running_tasks()
    assert tasks.cancel_all_and_wait(5000)
    assert tasks.running_tasks() == []


def test_a_task_that_outlives_its_signals_finishes_quietly(qtbot: Any, capfd: Any) -> None:
    # Quitting while a task runs deletes the C++ side of its signals: the worker's emit then
    # raises RuntimeError, which PySide would print as an error from QRunnable.run().
    import shiboken6

    owner = QObject()
    release = threading.Event()
    finished = threading.Event()

    def work(progress: ProgressCallback, cancel: CancelToken) -> int:
        release.wait(5)
        progress(Progress(1, 1, "steps"))
        return 1

    handle = tasks.run_task(owner, work, on_success=lambda _v: None)
    signals = handle._signals
    signals.succeeded.connect(lambda _v: finished.set(),
                              type=Qt.ConnectionType.DirectConnection)  # on the worker
    shiboken6.delete(signals)
    release.set()
    tasks.thread_pool().waitForDone(5000)
    assert not finished.is_set()  # the emit went nowhere…
    assert "Signal source has been deleted" not in capfd.readouterr().err  # …quietly
