"""The Opt-outs page: fetch a connection's opt-out list and browse the cached copy.

Fetch runs workflows.sync.sync_optouts (the CLI's `fetch`) in a background task, incremental by
default or a full re-fetch on request, with pages/records progress, time left and Cancel. The
workflow applies a fetch in one transaction at the end, so a cancelled or failed fetch leaves the
cache as it was; the page simply reloads from the cache afterwards. The list is read from the
cache off the GUI thread and shown in a DataTable with a per-day chart above it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.errors import Cancelled, DeskError
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.core.records import RECORD_COLUMNS
from optout_desk.ui.charts import DailyCounts, OptOutsPerDayChart, daily_counts
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import TaskHandle, run_task
from optout_desk.ui.widgets.data_table import DataTable

log = logging.getLogger(__name__)

HEADERS = {
    "DateOptOut": "Opted out (UTC)", "Email": "Email", "Phone": "Phone",
    "FirstName": "First name", "LastName": "Last name", "LangCode": "Language",
    "ContactId": "Contact id", "SurveyId": "Survey", "Source": "Source",
}
SEARCH_COLUMNS = ("Email", "Phone", "FirstName", "LastName")


def format_timestamp(value: Any) -> str:
    """"2026-11-22T09:14:03.1234567Z" -> "2026-11-22 09:14:03" (the raw value keeps it all)."""
    text = str(value)
    return f"{text[:10]} {text[11:19]}" if len(text) >= 19 and text[10] == "T" else text


def format_synced(value: str | None) -> str:
    return format_timestamp(value)[:16] if value else ""


@dataclass(frozen=True)
class CachedList:
    connection: str
    scope: str
    columns: dict[str, list[Any]]
    count: int
    last_synced_at: str | None
    daily: DailyCounts


def list_connection_names(_progress: ProgressCallback, _cancel: CancelToken
                          ) -> list[tuple[str, bool]]:
    """(name, lists per survey) of each connection whose system can list its opt-outs: the
    only ones this page can fetch."""
    from optout_desk.connectors.base import Capability
    from optout_desk.connectors.registry import system_info
    from optout_desk.workflows.connections import connections_that

    return [(p.name, system_info(p.system).survey_scopes)
            for p in connections_that(Capability.LIST)]


def load_cached(connection: str, scope: str) -> CachedList:
    """The cached list of a connection and scope, with its per-day counts (worker thread)."""
    from optout_desk.store import cache
    from optout_desk.store import connections as store_connections
    from optout_desk.store.db import connect

    conn = connect()
    try:
        profile = store_connections.get(conn, connection)
        assert profile.id is not None
        columns = cache.load_columns(conn, profile.id, scope)
        state = cache.sync_state(conn, profile.id, scope)
    finally:
        conn.close()
    return CachedList(connection, scope, columns, len(columns.get("DateOptOut", [])),
                      state.last_synced_at, daily_counts(columns.get("DateOptOut", [])))


def _import_chart_library(_progress: ProgressCallback, _cancel: CancelToken) -> None:
    import pyqtgraph  # noqa: F401


class FetchProgress:
    """Turns Progress reports into the line under the bar, with an estimate of time left."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def describe(self, report: Progress) -> tuple[str, int, int]:
        """(text, bar value, bar maximum; 0 = busy indicator)."""
        records = f" · {report.records:,} records" if report.records is not None else ""
        if report.total:
            elapsed = time.monotonic() - self.started
            left = ""
            if report.done and elapsed > 1:
                seconds = elapsed / report.done * (report.total - report.done)
                left = f" · about {_duration(seconds)} left"
            return (f"Page {report.done:,} of {report.total:,}{records}{left}",
                    report.done, report.total)
        return f"Page {report.done:,}{records}", 0, 0


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


class OptOutsPage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.fetch_task: TaskHandle[Any] | None = None
        self._load_task: TaskHandle[Any] | None = None
        self._progress = FetchProgress()
        self.loaded: CachedList | None = None

        self.connection = QComboBox()
        self.connection.setMinimumWidth(200)
        self.connection.setPlaceholderText("No connections yet")
        self.connection.currentIndexChanged.connect(self._scope_changed)
        self._surveys: dict[str, bool] = {}  # connection -> its system lists per survey
        self.survey = QLineEdit()
        self.survey.setPlaceholderText("all surveys")
        self.survey.setValidator(QIntValidator(1, 2_000_000_000, self))
        self.survey.setMaximumWidth(130)
        self.survey.setToolTip("Optional: a survey id, to fetch that survey's opt-outs only")
        self.survey.editingFinished.connect(self._scope_changed)
        self.full = QCheckBox("Full re-fetch")
        self.full.setToolTip("Fetch the whole list again instead of only what is new")
        self.fetch_button = QPushButton("Fetch")
        self.fetch_button.setToolTip("Fetch new opt-outs from the platform (F5)")
        self.fetch_button.setDefault(True)
        self.fetch_button.clicked.connect(self.fetch)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_fetch)
        self.cancel_button.hide()

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Connection"))
        controls.addWidget(self.connection)
        controls.addSpacing(12)
        self.survey_label = QLabel("Survey")
        controls.addWidget(self.survey_label)
        controls.addWidget(self.survey)
        controls.addSpacing(12)
        controls.addWidget(self.full)
        controls.addStretch(1)
        controls.addWidget(self.fetch_button)
        controls.addWidget(self.cancel_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(10)
        self.progress_label = QLabel()
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.progress_label)
        self.progress_row = QWidget()
        self.progress_row.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_row.hide()

        self.chart = OptOutsPerDayChart()
        self.model = ColumnarTableModel(
            RECORD_COLUMNS, headers=HEADERS, search_columns=SEARCH_COLUMNS,
            formatters={"DateOptOut": format_timestamp}, parent=self)
        self.table = DataTable(self.model, noun=("opt-out", "opt-outs"),
                               search_placeholder="Search email, phone or name  (Ctrl+F)",
                               export_name="optouts")
        self.table.empty_text = "No opt-outs cached yet: choose Fetch (F5)."

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Opt-outs</h2>"))
        layout.addLayout(controls)
        layout.addWidget(self.progress_row)
        layout.addWidget(self.chart)
        layout.addWidget(self.table, 1)

        host.changes.connectionsChanged.connect(self.reload_connections)
        self.reload_connections()
        # pyqtgraph takes a few hundred ms to import: do it off the GUI thread now, so the
        # first chart does not stall the window (the widgets are still made on this thread).
        run_task(self, _import_chart_library, on_success=self._chart_library_ready,
                 name="import pyqtgraph")

    def _chart_library_ready(self, _result: object) -> None:
        # Building the first plot costs ~0.1 s on this thread: do it now, while idle, rather
        # than in the middle of showing a fetched list.
        self.chart.prepare()

    # --- connections and scope ---------------------------------------------------------------

    @Slot()
    def reload_connections(self) -> None:
        run_task(self, list_connection_names, on_success=self._connections_listed,
                 name="list connections")

    def _connections_listed(self, listed: list[tuple[str, bool]]) -> None:
        names = [name for name, _ in listed]
        self._surveys = dict(listed)
        current = self.connection.currentText() or self.host.last_connection()
        self.connection.blockSignals(True)
        self.connection.clear()
        self.connection.addItems(names)
        if current in names:
            self.connection.setCurrentText(current)
        elif names:
            self.connection.setCurrentIndex(0)
        self.connection.blockSignals(False)
        self._update_buttons()
        self._scope_changed()

    def connection_name(self) -> str:
        return self.connection.currentText()

    def survey_id(self) -> int | None:
        text = self.survey.text().strip()
        return int(text) if text.isdigit() else None

    def scope(self) -> str:
        survey = self.survey_id()
        return "" if survey is None else str(survey)

    @Slot()
    def _scope_changed(self, *_args: Any) -> None:
        name = self.connection_name()
        if name:
            self.host.set_last_connection(name)
        by_survey = self._surveys.get(name, False)
        self.survey.setVisible(by_survey)
        self.survey_label.setVisible(by_survey)
        if not by_survey:
            self.survey.clear()
        self.reload_list()

    def reload_list(self) -> None:
        """Read the cached list for the chosen connection and scope, off the GUI thread."""
        name, scope = self.connection_name(), self.scope()
        if self._load_task is not None:
            self._load_task.cancel()
        if not name:
            self._show(None)
            return

        def work(_progress: ProgressCallback, _cancel: CancelToken) -> CachedList:
            return load_cached(name, scope)

        self._load_task = run_task(self, work, on_success=self._loaded,
                                   on_failure=self._load_failed, name="load cached list")

    def _loaded(self, cached: CachedList) -> None:
        self._load_task = None
        if (cached.connection, cached.scope) != (self.connection_name(), self.scope()):
            return  # the operator chose another list meanwhile; its own load is on the way
        self._show(cached)

    def _load_failed(self, exc: BaseException) -> None:
        self._load_task = None
        self._show(None)
        self._report(exc)

    def _show(self, cached: CachedList | None) -> None:
        self.loaded = cached
        self.model.set_columns(cached.columns if cached else {})
        synced = format_synced(cached.last_synced_at) if cached else ""
        self.table.set_status_suffix(f"last synced {synced}" if synced else "")
        self.table.resize_columns_to_sample()
        self.chart.set_counts(cached.daily if cached else daily_counts([]))

    # --- fetch -------------------------------------------------------------------------------

    @property
    def fetching(self) -> bool:
        return self.fetch_task is not None

    def _update_buttons(self) -> None:
        has_connection = bool(self.connection_name())
        self.fetch_button.setEnabled(has_connection and not self.fetching)
        self.connection.setEnabled(not self.fetching)
        self.survey.setEnabled(not self.fetching)
        self.full.setEnabled(not self.fetching)
        self.cancel_button.setVisible(self.fetching)

    @Slot()
    def fetch(self) -> None:
        name = self.connection_name()
        if not name:
            self.host.notify("Add a connection first (Connections page).", "info")
            return
        if self.fetching:
            return
        full, survey = self.full.isChecked(), self.survey_id()

        def work(progress: ProgressCallback, cancel: CancelToken) -> Any:
            from optout_desk.workflows.sync import sync_optouts

            return sync_optouts(name, full=full, survey_id=survey, progress=progress,
                                cancel=cancel)

        self._progress = FetchProgress()
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("Connecting…")
        self.progress_row.show()
        self.fetch_task = run_task(self, work, on_success=self._fetched,
                                   on_failure=self._fetch_failed,
                                   on_progress=self._fetch_progressed, name="fetch opt-outs")
        self._update_buttons()

    @Slot()
    def cancel_fetch(self) -> None:
        if self.fetch_task is not None:
            self.fetch_task.cancel()
            self.progress_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _fetch_progressed(self, report: Progress) -> None:
        text, value, maximum = self._progress.describe(report)
        self.progress_bar.setRange(0, maximum)
        if maximum:
            self.progress_bar.setValue(value)
        self.progress_label.setText(text)

    def _fetch_finished(self) -> None:
        self.fetch_task = None
        self.progress_row.hide()
        self.cancel_button.setEnabled(True)
        self._update_buttons()
        self.reload_list()

    def _fetched(self, result: Any) -> None:
        self._fetch_finished()
        kind = "Full re-fetch" if result.full else "Fetched"
        self.host.notify(
            f"{kind}: {result.fetched:,} opt-outs read, {result.added:,} new; "
            f"{result.total:,} in the list for {result.connection}.", "success")

    def _fetch_failed(self, exc: BaseException) -> None:
        self._fetch_finished()
        if isinstance(exc, Cancelled):
            self.host.notify("Fetch cancelled; the cached list is as it was.", "info")
        else:
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        if isinstance(exc, DeskError):
            self.host.notify(exc.message, "warning")
        else:
            self.host.show_error(exc, "The fetch failed")

    # --- page protocol -------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.table.focus_search()

    def copy_selection(self) -> None:
        self.table.copy_selection()

    def export_shown(self) -> None:
        self.table.export_shown()

    def shutdown(self) -> None:
        if self.fetch_task is not None:
            self.fetch_task.cancel()

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Escape and self.fetching:
            self.cancel_fetch()
            return
        super().keyPressEvent(event)
