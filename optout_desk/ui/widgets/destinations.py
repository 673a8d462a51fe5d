"""The Submit page's two destination widgets.

`DestinationMatrix`: one row per connection that can take opt-outs, a tick per destination,
and per destination what it will receive by kind, what it leaves out and why, its requests and
the time its pacing needs — from the SubmissionPreview computed in the background.

`SendingPanel`: while a submission runs, one row per destination with its own progress bar,
time left, status and Cancel; "Cancel all" stops every one. After the run each row says how its
destination ended and offers "Retry failed" where some failed.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from optout_desk.core.progress import Progress
from optout_desk.ui.formatting import counted, plural_word
from optout_desk.workflows.submission import (
    DestinationPreview,
    SubmissionPreview,
    format_duration,
    kind_label,
    left_out_summary,
)

KINDS = ("email", "phone", "push_token")


class DestinationMatrix(QTableWidget):
    """A few rows (one per destination): a QTableWidget is the right tool at this size."""

    ticksChanged = Signal()

    COLUMNS = ("Destination", *(kind_label(k).capitalize() for k in KINDS), "Requests",
               "Time", "Left out")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        header = self.horizontalHeader()
        # The destination's name is sized by _fit_columns (it gives way first); the counts
        # fit their contents; "Left out" takes the rest.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        for column in range(1, len(self.COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.previews: dict[str, DestinationPreview] = {}
        self._names: list[str] = []
        self.itemChanged.connect(self._item_changed)

    def set_connections(self, names: list[str], labels: dict[str, str],
                        ticked: set[str]) -> None:
        """The destinations offered (before any preview is known)."""
        self.blockSignals(True)
        self._names = list(names)
        self.previews = {}
        self.setRowCount(len(names))
        for row, name in enumerate(names):
            item = QTableWidgetItem(f"{name} — {labels.get(name, '')}")
            item.setToolTip(item.text())  # in full where the column elides it
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked if name in ticked
                               else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.setItem(row, 0, item)
            for column in range(1, len(self.COLUMNS)):
                self.setItem(row, column, QTableWidgetItem(""))
        self.blockSignals(False)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Every column in view: when the names and the left-out reasons do not both fit,
        they share what the counts leave, each elided (in full in its tooltip)."""
        self.resizeColumnsToContents()
        last = len(self.COLUMNS) - 1
        header = self.horizontalHeader()
        counts = sum(header.sectionSize(column) for column in range(1, last))
        shared = self.viewport().width() - counts
        left_out = max(self.sizeHintForColumn(last), header.sectionSizeHint(last))
        wanted = self.sizeHintForColumn(0)
        width = wanted if wanted + left_out <= shared else max(shared - left_out, shared // 2)
        names = max(min(wanted, width), 160)
        header.resizeSection(0, names)
        # resizeColumnsToContents gave "Left out" its whole text: it gets what is left instead.
        header.resizeSection(last, max(shared - names, header.sectionSizeHint(last)))
        self.updateGeometry()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def sizeHint(self) -> QSize:
        """Tall enough for its rows (a few destinations) and, when the window is too narrow
        for every column, the scroll bar under them; no more."""
        hint = super().sizeHint()
        default = self.verticalHeader().defaultSectionSize()
        rows = sum(self.rowHeight(row) or default for row in range(self.rowCount()))
        rows += max(0, 2 - self.rowCount()) * default
        header = self.horizontalHeader()
        height = (max(header.height(), header.sizeHint().height()) + rows
                  + 2 * self.frameWidth() + 4)
        if self.horizontalScrollBar().isVisible():
            height += self.horizontalScrollBar().height()
        return QSize(hint.width(), height)

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self.sizeHint().height())

    def show_preview(self, preview: SubmissionPreview) -> None:
        """Fill each row from its destination's plan."""
        self.blockSignals(True)
        self.previews = {d.connection: d for d in preview.destinations}
        for row, name in enumerate(self._names):
            d = self.previews.get(name)
            cells: list[str] = []
            tips: list[str] = []
            for kind in KINDS:
                if d is None:
                    cells.append("")
                    tips.append("")
                elif kind in d.routes:
                    cells.append(f"{d.plan.counts.get(kind, 0):,}")
                    tips.append(f"{kind_label(kind)} go to {d.routes[kind]}")
                else:
                    cells.append("—")
                    tips.append(f"{d.system_label} does not take {kind_label(kind)}")
            if d is None:
                cells += ["", "", ""]
                tips += ["", "", ""]
            else:
                left = left_out_summary(d)
                cells += [f"{d.requests:,}", format_duration(d.estimated_seconds),
                          left or "nothing"]
                tips += [f"{d.pacing.concurrency} at a time"
                         + (f", at most {d.pacing.per_second:g} a second"
                            if d.pacing.per_second else ""),
                         "an estimate at the destination's pacing", left]
            for column, (text, tip) in enumerate(zip(cells, tips, strict=True), start=1):
                item = self.item(row, column)
                assert item is not None
                item.setText(text)
                item.setToolTip(tip)
                if column < len(self.COLUMNS) - 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
            first = self.item(row, 0)
            if first is not None and d is not None and d.compared_against:
                first.setToolTip(f"{first.text()}: the identifiers were reconciled against "
                                 "this connection")
        self.blockSignals(False)
        self._fit_columns()

    def ticked(self) -> list[str]:
        names = []
        for row in range(self.rowCount()):
            item = self.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                names.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return names

    def set_ticked(self, name: str, ticked: bool) -> None:
        for row in range(self.rowCount()):
            item = self.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if ticked
                                   else Qt.CheckState.Unchecked)

    @Slot(QTableWidgetItem)
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            self.ticksChanged.emit()


class DestinationRow:
    """One destination's line in the SendingPanel."""

    def __init__(self, panel: SendingPanel, row: int, name: str, label: str) -> None:
        self.name = name
        self.title = QLabel(f"<b>{name}</b> {label}")
        self.bar = QProgressBar()
        self.bar.setFormat("%v of %m requests")
        self.bar.setRange(0, 0)
        self.left = QLabel("")
        self.status = QLabel("waiting…")
        self.status.setWordWrap(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip(f"Stop sending to {name} after the requests in flight; its plan "
                               "stays resumable")
        self.retry = QPushButton("Retry failed")
        self.retry.hide()
        self.started = time.monotonic()
        self.first_done: int | None = None
        grid = panel.grid
        grid.addWidget(self.title, row, 0)
        grid.addWidget(self.bar, row, 1)
        grid.addWidget(self.left, row, 2)
        grid.addWidget(self.cancel, row, 3)
        grid.addWidget(self.retry, row, 4)
        grid.addWidget(self.status, row + 1, 1, 1, 4)

    def advance(self, report: Progress) -> None:
        if report.total:
            self.bar.setRange(0, report.total)
            self.bar.setFormat(f"%v of %m {plural_word(report.total, 'request')}")
        self.bar.setValue(report.done)
        self.status.setText(f"sending… {counted(report.records or 0, 'identifier')} acknowledged")
        if self.first_done is None:
            self.first_done, self.started = report.done, time.monotonic()
            return
        sent = report.done - self.first_done
        if sent > 0 and report.total:
            per_request = (time.monotonic() - self.started) / sent
            self.left.setText(
                f"{format_duration(per_request * (report.total - report.done))} left")

    def widgets(self) -> list[QWidget]:
        return [self.title, self.bar, self.left, self.status, self.cancel, self.retry]


class SendingPanel(QWidget):
    """Per-destination progress; emits `cancelOne(name)` and `retryOne(name)`."""

    cancelOne = Signal(str)
    retryOne = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self.rows: dict[str, DestinationRow] = {}

    def start(self, destinations: dict[str, str]) -> None:
        """Rows for these destinations (name -> label), replacing any earlier run's."""
        self.clear()
        for index, (name, label) in enumerate(destinations.items()):
            row = DestinationRow(self, index * 2, name, label)
            row.cancel.clicked.connect(lambda _checked=False, n=name: self.cancelOne.emit(n))
            row.retry.clicked.connect(lambda _checked=False, n=name: self.retryOne.emit(n))
            self.rows[name] = row
        self.setVisible(bool(self.rows))

    def clear(self) -> None:
        for row in self.rows.values():
            for widget in row.widgets():
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows = {}
        self.setVisible(False)

    def advance(self, name: str, report: Progress) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.advance(report)

    def finish(self, name: str, status: str, text: str, failed: int) -> None:
        row = self.rows.get(name)
        if row is None:
            return
        row.cancel.setEnabled(False)
        row.cancel.hide()
        row.left.setText(status)
        row.status.setText(text)
        row.retry.setVisible(failed > 0)
        row.retry.setText(f"Retry failed ({failed:,} request{'s' if failed != 1 else ''})")

    def cancelling(self, name: str) -> None:
        row = self.rows.get(name)
        if row is not None:
            row.cancel.setEnabled(False)
            row.status.setText("stopping after the requests in flight…")


def describe_outcome(run: Any) -> tuple[str, str]:
    """(a short status, the sentences) of one destination's DestinationRun."""
    if run.error:
        return "failed", run.error
    outcome = run.outcome
    if outcome is None:
        return "not started", ""
    return run.status, " ".join(outcome.summary_lines())
