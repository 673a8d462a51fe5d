"""TaskPanel: the one progress strip every page shows while a background task runs.

    panel = TaskPanel()
    handle = panel.run(owner, work, "Reading crm.xlsx…", on_success=..., on_failure=...)

A thin bar (a busy indicator until the work reports a total), a status line (the text given to
`run`, replaced by each progress report's message), the time left once it can be estimated,
and Cancel (which cancels the task; Escape does the same while the panel has focus). The panel
shows itself when a task starts and hides when it ends, so no status line outlives its task.
`run` is `ui.tasks.run_task` with the panel wired in; `attach(handle, text)` does the same for
a task started elsewhere. Only one task at a time: a page disables what would start another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.ui.formatting import number
from optout_desk.ui.tasks import TaskHandle, run_task

T = TypeVar("T")

# The estimate waits until this much time and work have passed, so it does not jump about.
ESTIMATE_AFTER_S = 1.0


def time_left_text(seconds: float) -> str:
    """"about 40 s left", "about 3 min left", "about 2 h 5 min left"."""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"


class TimeLeft:
    """Estimates time left from the rate since the first report that had done > 0."""

    def __init__(self) -> None:
        self._start: tuple[float, int] | None = None

    def reset(self) -> None:
        self._start = None

    def estimate(self, done: int, total: int | None, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if not total or done <= 0:
            return None
        if self._start is None:
            # The first report may come after work resumed midway (a resumed plan): measure
            # the rate from here, not from zero.
            self._start = (now, done)
            return None
        started, first = self._start
        elapsed, progressed = now - started, done - first
        if elapsed < ESTIMATE_AFTER_S or progressed <= 0:
            return None
        return elapsed / progressed * max(total - done, 0)


class TaskPanel(QWidget):
    """Progress bar, status line, time left and Cancel for one running task."""

    cancelRequested = Signal()
    finished = Signal()

    def __init__(self, parent: QWidget | None = None, *, cancel_text: str = "Cancel",
                 cancel_tooltip: str = "Stop the task; nothing half-done is kept") -> None:
        super().__init__(parent)
        self.setObjectName("taskPanel")
        self.handle: TaskHandle[Any] | None = None
        self.time_left = TimeLeft()
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.bar.setMinimumWidth(160)
        self.status = QLabel()
        self.status.setObjectName("taskStatus")
        self.eta = QLabel()
        self.eta.setObjectName("taskTimeLeft")
        self.cancel_button = QPushButton(cancel_text)
        self.cancel_button.setToolTip(cancel_tooltip + " (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.status, 2)
        layout.addWidget(self.eta)
        layout.addWidget(self.cancel_button)
        self.hide()

    # --- running ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.handle is not None

    def run(
        self,
        owner: QObject,
        work: Callable[[ProgressCallback, CancelToken], T],
        text: str,
        *,
        on_success: Callable[[T], None],
        on_failure: Callable[[BaseException], None] | None = None,
        name: str = "",
        cancellable: bool = True,
    ) -> TaskHandle[T]:
        """run_task(owner, work, ...) with this panel showing its progress. The panel hides
        before on_success/on_failure run (which may start the next task)."""

        def succeeded(result: T) -> None:
            self._end()
            on_success(result)

        def failed(exc: BaseException) -> None:
            self._end()
            if on_failure is not None:
                on_failure(exc)
            else:
                from optout_desk.ui.tasks import report_failure

                report_failure(owner, exc)

        handle = run_task(owner, work, on_success=succeeded, on_failure=failed,
                          on_progress=self.progressed, name=name or text)
        self._begin(handle, text, cancellable)
        return handle

    def attach(self, handle: TaskHandle[Any], text: str, cancellable: bool = True) -> None:
        """Show a task started elsewhere (its progress must be sent to `progressed`)."""
        self._begin(handle, text, cancellable)
        handle.done.connect(self._end)

    def _begin(self, handle: TaskHandle[Any], text: str, cancellable: bool) -> None:
        self.handle = handle
        self.time_left.reset()
        self.bar.setRange(0, 0)
        self.status.setText(text)
        self.eta.clear()
        self.cancel_button.setVisible(cancellable)
        self.cancel_button.setEnabled(True)
        self.show()

    @Slot()
    def _end(self) -> None:
        if self.handle is None:
            return
        self.handle = None
        self.status.clear()
        self.eta.clear()
        self.hide()
        self.finished.emit()

    @Slot(object)
    def progressed(self, report: Progress) -> None:
        if report.total:
            self.bar.setRange(0, report.total)
            self.bar.setValue(min(report.done, report.total))
        else:
            self.bar.setRange(0, 0)
        text = _with_counts(report)
        if text:
            self.status.setText(text)
        seconds = self.time_left.estimate(report.done, report.total)
        self.eta.setText(time_left_text(seconds) if seconds is not None else "")

    @Slot()
    def cancel(self) -> None:
        if self.handle is None:
            return
        self.handle.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setText("Cancelling…")
        self.cancelRequested.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.busy:
            self.cancel()
            return
        super().keyPressEvent(event)


def _with_counts(report: Progress) -> str:
    """The report's message, then what it counts: "Reading… 12,000 of 50,000 rows",
    "3 of 10 pages · 150 records"."""
    counted = ""
    if report.unit not in ("", "items"):
        if report.total:
            counted = f"{number(report.done)} of {number(report.total)} {report.unit}"
        elif report.done:
            counted = f"{number(report.done)} {report.unit}"
    if report.records is not None:
        counted += f"{' · ' if counted else ''}{number(report.records)} records"
    return " ".join(part for part in (report.message, counted) if part)
