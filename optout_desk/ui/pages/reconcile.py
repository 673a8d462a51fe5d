"""The Reconcile page: a spreadsheet against a connection's opt-outs or another file.

Open (or drop on the window) a spreadsheet; it is read in the background, the mapping dialog
confirms the sheet, columns and region; the comparison (workflows.reconcile, the CLI's
`reconcile`) runs in the background with progress and Cancel. Each bucket is a tab with its
count in the title, a DataTable with search and an Explain column. Suggestions (possible
matches) have their own tab: a person accepts or rejects each; accepted rows are left out of
what "Send to Submit" hands to the Submit page. Recent files are remembered in the settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk import paths
from optout_desk.core.errors import Cancelled, DeskError
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.core.reconcile import BUCKET_LABELS, BUCKET_ORDER, Bucket
from optout_desk.ui.dialogs.mapping import MappingDialog
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.tasks import TaskHandle, run_task
from optout_desk.ui.widgets.data_table import DataTable

if TYPE_CHECKING:
    from optout_desk.files.mapping import ColumnMapping
    from optout_desk.files.spreadsheet import ImportedTable
    from optout_desk.ui.main_window import MainWindow
    from optout_desk.workflows.reconcile import ReconcileRun

log = logging.getLogger(__name__)

RECENT_KEY = "reconcile/recent_files"
RECENT_MAX = 8
OTHER_FILE = "Another file…"
SPREADSHEET_FILTER = "Spreadsheets (*.xlsx *.xlsm *.xls *.ods *.csv *.tsv *.txt);;All files (*)"


@dataclass
class BucketTable:
    columns: dict[str, list[Any]]
    headers: dict[str, str]
    order: list[str]


def recent_files(window: MainWindow) -> list[str]:
    value = window.settings.value(RECENT_KEY, [])
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in (value or [])]


def remember_recent_file(window: MainWindow, path: Path) -> None:
    """Put `path` first in the recent files (also used by demo mode for its spreadsheet)."""
    text = str(Path(path))
    recent = [text, *[p for p in recent_files(window) if p != text]][:RECENT_MAX]
    window.settings.setValue(RECENT_KEY, recent)
    page = window.built_pages().get("reconcile")
    if isinstance(page, ReconcilePage):
        page._refresh_recent()


def bucket_table(run: ReconcileRun, bucket: Bucket) -> BucketTable:
    """A bucket as columns for the table: sheet row, the original columns, Explain."""
    headers = run.bucket_headers(bucket)[:-3]
    order = ["row", *[f"c{i}" for i in range(len(headers))], "explain"]
    titles = {"row": "Row", "explain": "Explain",
              **{f"c{i}": header or f"Column {i + 1}" for i, header in enumerate(headers)}}
    data: dict[str, list[Any]] = {name: [] for name in order}
    cells = [data[f"c{i}"] for i in range(len(headers))]
    rows, explains = data["row"], data["explain"]
    for values in run.bucket_rows(bucket):
        *original, number, _status, reason = values
        rows.append(number)
        for column, value in zip(cells, original, strict=False):
            column.append(value)
        explains.append(reason)
    return BucketTable(data, titles, order)


def suggestion_table(run: ReconcileRun) -> BucketTable:
    order = ["row", "column", "value", "other", "why", "decision"]
    titles = {"row": "Row", "column": "Column", "value": "Value", "other": "Possible opt-out",
              "why": "Why", "decision": "Decision"}
    data: dict[str, list[Any]] = {name: [] for name in order}
    for values in run.suggestion_rows():
        for name, value in zip(order, values, strict=False):
            data[name].append(value)
        data["decision"].append("to review")
    return BucketTable(data, titles, order)


class ReconcilePage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.run: ReconcileRun | None = None
        self.table: ImportedTable | None = None
        self.mapping: ColumnMapping | None = None
        self.against_file: Path | None = None
        self.accepted_rows: set[int] = set()
        self._task: TaskHandle[Any] | None = None
        self.tables: dict[str, DataTable] = {}

        self.open_button = QToolButton()
        self.open_button.setText("Open spreadsheet…")
        self.open_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.open_button.clicked.connect(self.choose_file)
        self.recent_menu = QMenu(self)
        self.open_button.setMenu(self.recent_menu)
        self.against = QComboBox()
        self.against.setMinimumWidth(220)
        self.against.activated.connect(self._against_chosen)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        self.export_button = QPushButton("Export result…")
        self.export_button.clicked.connect(self.export_result)
        self.submit_button = QPushButton("Send to Submit")
        self.submit_button.clicked.connect(self.send_to_submit)

        controls = QHBoxLayout()
        controls.addWidget(self.open_button)
        controls.addWidget(QLabel("against"))
        controls.addWidget(self.against)
        controls.addWidget(self.compare_button)
        controls.addWidget(self.cancel_button)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        controls.addWidget(self.submit_button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumHeight(10)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.hide()
        self.status = QLabel("Open or drop a spreadsheet to compare it with an opt-out list.")
        self.status.setWordWrap(True)
        self.tabs = QTabWidget()

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Reconcile</h2>"))
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._refresh_recent()
        self._update_buttons()

    # --- page protocol ---------------------------------------------------------------------

    def on_shown(self) -> None:
        self._load_connections()

    def accepts_drop(self, path: Path) -> bool:
        return self._task is None

    def open_file(self, path: Path, sheet: str | None = None) -> None:
        """Read `path` in the background, then ask for the mapping."""
        if self._task is not None:
            self.host.notify("A comparison is running; wait for it or cancel it.", "warning")
            return
        self._remember(path)
        self.run = None
        self._clear_tabs()
        path = Path(path)

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[Any, Any]:
            from optout_desk.files.mapping import detect_columns
            from optout_desk.files.spreadsheet import read_table

            table = read_table(path, sheet=sheet, progress=progress, cancel=cancel)
            return table, detect_columns(table)

        self._start(f"Reading {path.name}…", work, self._table_read)

    def shutdown(self) -> None:
        self.cancel()

    # --- choosing ----------------------------------------------------------------------------

    @classmethod
    def ask_open_path(cls, parent: QWidget) -> Path | None:
        """The spreadsheet to open, or None (tests patch this)."""
        name, _ = QFileDialog.getOpenFileName(parent, "Open a spreadsheet", "",
                                              SPREADSHEET_FILTER)
        return Path(name) if name else None

    @classmethod
    def ask_result_path(cls, parent: QWidget, suggested: Path) -> Path | None:
        """Where to export the result, or None (tests patch this)."""
        name, _ = QFileDialog.getSaveFileName(
            parent, "Export the result", str(suggested),
            "Excel workbook (*.xlsx);;CSV (*.csv);;JSON lines (*.jsonl)")
        return Path(name) if name else None

    def choose_file(self) -> None:
        path = self.ask_open_path(self)
        if path is not None:
            self.open_file(path)

    def set_against_file(self, path: Path) -> None:
        self.against_file = Path(path)
        label = f"File: {self.against_file.name}"
        index = self.against.findData(str(self.against_file))
        if index < 0:
            self.against.addItem(label, str(self.against_file))
            index = self.against.count() - 1
        self.against.setCurrentIndex(index)
        self._update_buttons()

    def _against_chosen(self, index: int) -> None:
        if self.against.itemData(index) == OTHER_FILE:
            path = self.ask_open_path(self)
            if path is not None:
                self.set_against_file(path)

    def _load_connections(self) -> None:
        from optout_desk.connectors.base import Capability
        from optout_desk.connectors.registry import SYSTEMS
        from optout_desk.store import connections
        from optout_desk.store.db import connect

        try:
            db = connect()
            try:
                # Only what can be compared with: a list, or look-up answers.
                names = [profile.name for profile in connections.list_all(db)
                         if (info := SYSTEMS.get(profile.system)) is not None
                         and (info.can(Capability.LIST) or info.can(Capability.LOOKUP))]
            finally:
                db.close()
        except DeskError as exc:
            self.host.notify(exc.message, "warning")
            names = []
        current = self.against.currentData()
        self.against.clear()
        for name in names:
            self.against.addItem(f"Connection: {name}", name)
        if self.against_file is not None:
            self.against.addItem(f"File: {self.against_file.name}", str(self.against_file))
        self.against.addItem(OTHER_FILE, OTHER_FILE)
        index = self.against.findData(current) if current else -1
        if index < 0 and self.host.last_connection():
            index = self.against.findData(self.host.last_connection())
        self.against.setCurrentIndex(max(index, 0))
        self._update_buttons()

    def against_value(self) -> str | None:
        value = self.against.currentData()
        return None if value in (None, OTHER_FILE) else str(value)

    # --- recent files ------------------------------------------------------------------------

    def recent_files(self) -> list[str]:
        return recent_files(self.host)

    def _remember(self, path: Path) -> None:
        remember_recent_file(self.host, path)

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for text in self.recent_files():
            action = self.recent_menu.addAction(text)
            action.triggered.connect(lambda _=False, t=text: self.open_file(Path(t)))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    # --- reading and comparing ---------------------------------------------------------------

    def _table_read(self, result: tuple[ImportedTable, ColumnMapping]) -> None:
        table, mapping = result
        choice = MappingDialog.ask(self, table, mapping)
        if choice is None:
            self.status.setText(f"{table.source.name}: mapping cancelled.")
            return
        if choice.sheet is not None and choice.sheet != table.sheet:
            self.open_file(table.source, sheet=choice.sheet)
            return
        self.table = table
        self.mapping = choice.mapping
        self.status.setText(
            f"{table.source.name}, sheet {table.sheet or '(text)'}: {len(table.rows):,} rows. "
            "Pick the list to compare with and press Compare."
        )
        self._update_buttons()
        if self.against_value() is not None:
            self.compare()

    def compare(self) -> None:
        against = self.against_value()
        if self.table is None or against is None or self._task is not None:
            if against is None:
                self.host.notify("Pick a connection or a file to compare with.", "warning")
            return
        table, mapping = self.table, self.mapping
        if mapping is None:
            return
        self.accepted_rows = set()

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[Any, Any, Any]:
            from optout_desk.workflows.reconcile import reconcile_table

            run = reconcile_table(table, mapping, against, progress=progress, cancel=cancel)
            progress(Progress(0, None, "rows", "Preparing the tables…"))
            tables = {}
            for bucket in BUCKET_ORDER:
                cancel.raise_if_cancelled()
                tables[bucket.value] = bucket_table(run, bucket)
            return run, tables, suggestion_table(run)

        self._start(f"Comparing {table.source.name}…", work, self._compared)

    def _compared(self, result: tuple[ReconcileRun, dict[str, BucketTable], BucketTable]) -> None:
        run, tables, suggestions = result
        self.run = run
        self._clear_tabs()
        for bucket in BUCKET_ORDER:
            unknown = bucket is Bucket.MISSING_FROM_CRM and not run.other.complete
            self._add_tab(bucket.value, BUCKET_LABELS[bucket], tables[bucket.value],
                          unknown=run.other.missing_note if unknown else "")
        if suggestions.columns["row"]:
            self._add_tab("suggestions", "Suggestions", suggestions)
            self._add_suggestion_buttons()
        counts = run.counts
        missing = (f"{counts['missing_from_crm']:,} missing from the CRM." if run.other.complete
                   else f"Missing from the CRM {run.other.missing_note}.")
        self.status.setText(
            f"{run.table.source.name}: {run.result.row_count:,} rows compared with "
            f"{run.other.description}. {counts['to_submit']:,} to submit. {missing}"
        )
        self._update_buttons()

    def _add_tab(self, key: str, title: str, table: BucketTable, unknown: str = "") -> None:
        """A bucket's tab; `unknown` says why its content cannot be known (a look-up source
        has no list to find what is missing from the CRM)."""
        searchable = [name for name in table.order if name != "explain"]
        model = ColumnarTableModel(table.order, headers=table.headers, search_columns=searchable)
        model.set_columns(table.columns)
        widget = DataTable(model, export_name=f"reconcile-{key}")
        widget.resize_columns_to_sample()
        if unknown:
            widget.empty_text = f"{title}: {unknown}."
        self.tables[key] = widget
        count = "—" if unknown else f"{len(table.columns['row']):,}"
        self.tabs.addTab(widget, f"{title} ({count})")

    def _add_suggestion_buttons(self) -> None:
        widget = self.tables["suggestions"]
        row = QHBoxLayout()
        accept = QPushButton("Accept selected")
        accept.setToolTip("Treat these rows as already opted out: they are not sent to Submit")
        reject = QPushButton("Reject selected")
        accept.clicked.connect(lambda: self.decide_suggestions(True))
        reject.clicked.connect(lambda: self.decide_suggestions(False))
        row.addStretch(1)
        row.addWidget(accept)
        row.addWidget(reject)
        layout = widget.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.addLayout(row)

    def decide_suggestions(self, accept: bool, view_rows: list[int] | None = None) -> None:
        """Accept or reject suggestions (the selected ones by default)."""
        if self.run is None:
            return
        widget = self.tables["suggestions"]
        rows = view_rows if view_rows is not None else widget.selected_view_rows()
        for view_row in rows:
            data_row = widget.model.data_row(view_row)
            suggestion = self.run.suggestions[data_row]
            widget.model.set_value(data_row, "decision", "accepted" if accept else "rejected")
            if accept:
                self.accepted_rows.add(suggestion.row)
            else:
                self.accepted_rows.discard(suggestion.row)
        self._update_buttons()

    # --- results out -------------------------------------------------------------------------

    def submit_inputs(self) -> list[Any]:
        if self.run is None:
            return []
        source, numbers = self.run.table.source.name, self.run.table.row_numbers
        skipped = {numbers[row] for row in self.accepted_rows}
        return [item for item in self.run.to_submit_inputs()
                if not (item.source_file == source and item.row_number in skipped)]

    def send_to_submit(self) -> None:
        inputs = self.submit_inputs()
        if not inputs or self.run is None:
            return
        self.host.send_to_submit(inputs, f"reconcile of {self.run.table.source.name}")

    def export_result(self) -> None:
        if self.run is None or self._task is not None:
            return
        suggested = paths.exports_dir() / f"{self.run.table.source.stem}-reconciled.xlsx"
        path = self.ask_result_path(self, suggested)
        if path is None:
            return
        run = self.run

        def work(progress: ProgressCallback, cancel: CancelToken) -> list[Path]:
            from optout_desk.workflows.reconcile import write_result

            return write_result(run, path, progress=progress, cancel=cancel)

        self._start(f"Writing {path.name}…", work, self._exported)

    def _exported(self, written: list[Path]) -> None:
        self.host.notify("Wrote " + ", ".join(str(p) for p in written), "info")

    # --- tasks -------------------------------------------------------------------------------

    def _start(self, text: str, work: Any, on_success: Any) -> None:
        self.status.setText(text)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.cancel_button.show()

        def done(result: Any) -> None:
            self._finish()
            on_success(result)

        self._task = run_task(self, work, on_success=done, on_failure=self._failed,
                              on_progress=self._progressed, name="reconcile")
        self._update_buttons()

    @Slot(object)
    def _progressed(self, progress: Progress) -> None:
        if progress.total:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)
        else:
            self.progress_bar.setRange(0, 0)
        if progress.message:
            self.status.setText(progress.message)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, Cancelled):
            self.status.setText("Cancelled; nothing was changed.")
        elif isinstance(exc, DeskError):
            self.status.setText(exc.message)
            self.host.notify(exc.message, "warning")
        else:
            self.host.show_error(exc)

    def _finish(self) -> None:
        self._task = None
        self.progress_bar.hide()
        self.cancel_button.hide()
        self._update_buttons()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def _clear_tabs(self) -> None:
        while self.tabs.count():
            widget = self.tabs.widget(0)
            self.tabs.removeTab(0)
            widget.deleteLater()
        self.tables = {}

    def tab_titles(self) -> list[str]:
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def _update_buttons(self) -> None:
        idle = self._task is None
        self.open_button.setEnabled(idle)
        self.compare_button.setEnabled(idle and self.table is not None
                                       and self.against_value() is not None)
        self.export_button.setEnabled(idle and self.run is not None)
        self.submit_button.setEnabled(idle and bool(self.run is not None
                                                    and self.run.counts["to_submit"]))
