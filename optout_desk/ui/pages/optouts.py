"""The Opt-outs page: fetch a connection's opt-out list and browse the cached copy.

Fetch runs workflows.sync.sync_optouts (the CLI's `fetch`) in a background task, incremental by
default or a full re-fetch on request, with its progress, time left and Cancel in the page's
TaskPanel. The workflow applies a fetch in one transaction at the end, so a cancelled or failed
fetch leaves the cache as it was; the page reloads from the cache afterwards, and whenever
another page says the cache changed (`host.changes.cacheChanged`: a submission's verify that
re-fetched, a removed connection). The list is read off the GUI thread and shown in a DataTable
with a per-day chart above it: point at a bar for its day and count, click it to show that day.
The Survey field lists the surveys seen in the account's opt-outs; clearing it shows the whole
list again. Times are shown in local time, in the system's date format.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QIntValidator, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.errors import Cancelled
from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.core.records import RECORD_COLUMNS, RECORD_HEADERS, source_label, timestamp_value
from optout_desk.ui import chart_library
from optout_desk.ui.charts import DailyCounts, OptOutsPerDayChart, daily_counts
from optout_desk.ui.formatting import counted, number, when
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import TaskHandle, report_failure, run_task
from optout_desk.ui.widgets.data_table import DataTable
from optout_desk.ui.widgets.task_panel import TaskPanel

log = logging.getLogger(__name__)

# On screen times are local ("Opted out"); exports write UTC and their header says so.
HEADERS = {name: header.replace(" (UTC)", "")
           for name, header in zip(RECORD_COLUMNS, RECORD_HEADERS, strict=True)}
EXPORT_HEADERS = dict(zip(RECORD_COLUMNS, RECORD_HEADERS, strict=True))
SEARCH_COLUMNS = ("Email", "Phone", "FirstName", "LastName", "DateOptOut")
ALL_SURVEYS = "All surveys"


def format_timestamp(value: Any) -> str:
    """"2026-11-22T09:14:03.1234567Z" -> the moment in local time, the locale's format."""
    return when(str(value))


def format_synced(value: str | None) -> str:
    return when(value) if value else ""


@dataclass(frozen=True)
class CachedList:
    connection: str
    scope: str
    columns: dict[str, list[Any]]
    count: int
    last_synced_at: str | None
    daily: DailyCounts
    surveys: dict[str, int] = field(default_factory=dict)  # survey id -> opt-outs seen


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
        synced_scopes = cache.scopes(conn, profile.id)
    finally:
        conn.close()
    surveys: dict[str, int] = {scope: 0 for scope in synced_scopes if scope}
    for survey in columns.get("SurveyId", []):
        if survey is not None:
            surveys[str(survey)] = surveys.get(str(survey), 0) + 1
    return CachedList(connection, scope, columns, len(columns.get("DateOptOut", [])),
                      state.last_synced_at, daily_counts(columns.get("DateOptOut", [])),
                      surveys)


class OptOutsPage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.fetch_task: TaskHandle[Any] | None = None
        self._load_task: TaskHandle[Any] | None = None
        self.loaded: CachedList | None = None
        self._surveys: dict[str, bool] = {}  # connection -> its system lists per survey

        self.connection = QComboBox()
        self.connection.setMinimumWidth(200)
        self.connection.setPlaceholderText("No connections yet")
        self.connection.currentIndexChanged.connect(self._connection_changed)
        self.survey = QComboBox()
        self.survey.setObjectName("surveyField")
        self.survey.setEditable(True)
        self.survey.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.survey.setMinimumWidth(190)
        survey_edit = self.survey.lineEdit()
        assert survey_edit is not None  # an editable combo box has one
        self.survey_edit = survey_edit
        survey_edit.setPlaceholderText(ALL_SURVEYS)
        survey_edit.setClearButtonEnabled(True)
        self.survey.setValidator(QIntValidator(1, 2_000_000_000, self))
        self.survey.setToolTip("A survey's opt-outs only: pick one seen in this account's "
                               "opt-outs or type its id; clear the field for the whole list")
        self.survey.activated.connect(self._survey_chosen)
        survey_edit.editingFinished.connect(self._scope_changed)
        survey_edit.textChanged.connect(self._survey_text_changed)
        self.full = QCheckBox("Full re-fetch")
        self.full.setToolTip("Fetch the whole list again instead of only what is new")
        self.fetch_button = QPushButton("Fetch")
        self.fetch_button.setToolTip("Fetch new opt-outs from the platform (F5)")
        self.fetch_button.setDefault(True)
        self.fetch_button.clicked.connect(self.fetch)

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

        self.panel = TaskPanel(cancel_tooltip="Stop the fetch; the cached list stays as it was")
        self.chart = OptOutsPerDayChart()
        self.chart.dayClicked.connect(self.show_day)
        self.model = ColumnarTableModel(
            RECORD_COLUMNS, headers=HEADERS, search_columns=SEARCH_COLUMNS,
            phone_columns=("Phone",),
            formatters={"DateOptOut": format_timestamp, "Source": source_label},
            export_values={"DateOptOut": timestamp_value, "Source": source_label},
            export_headers=EXPORT_HEADERS, parent=self)
        self.table = DataTable(self.model, noun=("opt-out", "opt-outs"),
                               search_placeholder="Search email, phone (any format) or name  "
                               "(Ctrl+F)", export_name="optouts", host=host,
                               keep_columns=("DateOptOut", "Email", "Phone"))
        self.table.empty_text = "No opt-outs cached yet: choose Fetch (F5)."

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Opt-outs</h2>"))
        layout.addLayout(controls)
        layout.addWidget(self.panel)
        layout.addWidget(self.chart)
        layout.addWidget(self.table, 1)

        host.changes.connectionsChanged.connect(self.reload_connections)
        host.changes.cacheChanged.connect(self._cache_changed)
        self.reload_connections()
        # pyqtgraph takes a few hundred ms to import: off the GUI thread, now, so the first
        # chart does not stall the window (the widgets are still made on this thread).
        chart_library.when_ready(self, self._chart_library_ready)

    def _chart_library_ready(self) -> None:
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
        self._connection_changed()

    def connection_name(self) -> str:
        return self.connection.currentText()

    def survey_id(self) -> int | None:
        text = self.survey.currentText().strip()
        if not text.isdigit():
            data = self.survey.currentData()
            text = str(data) if data else ""
        return int(text) if text.isdigit() else None

    def scope(self) -> str:
        survey = self.survey_id()
        return "" if survey is None else str(survey)

    @Slot()
    def _connection_changed(self, *_args: Any) -> None:
        name = self.connection_name()
        if name:
            self.host.set_last_connection(name)
        by_survey = self._surveys.get(name, False)
        self.survey.setVisible(by_survey)
        self.survey_label.setVisible(by_survey)
        self._set_survey_text("")
        self.survey.clear()
        self.reload_list()

    def _set_survey_text(self, text: str) -> None:
        self.survey_edit.blockSignals(True)
        self.survey.setEditText(text)
        self.survey_edit.blockSignals(False)

    def set_survey(self, survey: str) -> None:
        """Show one survey's list ("" for the whole list), as typing it and Enter would."""
        self._set_survey_text(survey)
        self._scope_changed()

    @Slot(int)
    def _survey_chosen(self, index: int) -> None:
        data = self.survey.itemData(index)
        self._set_survey_text(str(data) if data else "")
        self._scope_changed()

    @Slot(str)
    def _survey_text_changed(self, text: str) -> None:
        if not text.strip():  # cleared (the clear button, or deleted): the whole list again
            self._scope_changed()

    @Slot()
    def _scope_changed(self, *_args: Any) -> None:
        if self.loaded is not None and self.loaded.connection == self.connection_name() \
                and self.loaded.scope == self.scope():
            return
        self.reload_list()

    def _fill_surveys(self, surveys: dict[str, int]) -> None:
        """The survey list: the surveys seen in the account-wide list, with their counts."""
        text = self.survey.currentText()
        self.survey.blockSignals(True)
        self.survey.clear()
        self.survey.addItem(ALL_SURVEYS, "")
        for survey, count in sorted(surveys.items(), key=lambda item: int(item[0])):
            label = f"Survey {survey}" + (f" · {counted(count, 'opt-out')}" if count else "")
            self.survey.addItem(label, survey)
        self.survey.blockSignals(False)
        self._set_survey_text(text if text != ALL_SURVEYS else "")

    def survey_choices(self) -> list[str]:
        return [self.survey.itemText(i) for i in range(self.survey.count())]

    @Slot(str)
    def _cache_changed(self, connection: str) -> None:
        if connection in ("", self.connection_name()) and not self.fetching:
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
        if not cached.scope:
            self._fill_surveys(cached.surveys)
        self._show(cached)

    def _load_failed(self, exc: BaseException) -> None:
        self._load_task = None
        self._show(None)
        report_failure(self, exc, "The cached list could not be read")

    def _show(self, cached: CachedList | None) -> None:
        self.loaded = cached
        self.model.set_columns(cached.columns if cached else {})
        synced = format_synced(cached.last_synced_at) if cached else ""
        scope = f"survey {cached.scope} · " if cached and cached.scope else ""
        self.table.set_status_suffix(f"{scope}last synced {synced}" if synced else scope[:-3])
        self.table.resize_columns_to_sample()
        self.chart.set_counts(cached.daily if cached else daily_counts([]))

    @Slot(str)
    def show_day(self, day: str) -> None:
        """A click on the chart's bar: the table shows that day (again: everything)."""
        text = "" if self.table.search.text() == day else day
        self.table.search.setText(text)

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

        what = f"survey {survey}'s opt-outs" if survey else "opt-outs"
        self.fetch_task = self.panel.run(self, work, f"Fetching {name}'s {what}…",
                                         on_success=self._fetched,
                                         on_failure=self._fetch_failed, name="fetch opt-outs")
        self._update_buttons()

    @Slot()
    def cancel_fetch(self) -> None:
        self.panel.cancel()

    def _fetch_finished(self) -> None:
        self.fetch_task = None
        self._update_buttons()
        self.host.changes.historyChanged.emit()

    def _fetched(self, result: Any) -> None:
        self._fetch_finished()
        kind = "Full re-fetch" if result.full else "Fetched"
        self.host.notify(
            f"{kind}: {counted(result.fetched, 'opt-out')} read, {number(result.added)} new; "
            f"{number(result.total)} in the list for {result.connection}.", "success")
        self.host.changes.cacheChanged.emit(result.connection)  # this page reloads too

    def _fetch_failed(self, exc: BaseException) -> None:
        self._fetch_finished()
        self.reload_list()
        if isinstance(exc, Cancelled):
            self.host.notify("Fetch cancelled; the cached list is as it was.", "info")
        else:
            report_failure(self, exc, "The fetch failed")

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

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.fetching:
            self.cancel_fetch()
            return
        super().keyPressEvent(event)
