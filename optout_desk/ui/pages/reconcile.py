"""The Reconcile page: a spreadsheet against a connection's opt-outs or another file.

Open (Ctrl+O, the recent-files menu, or a drop on the window) a spreadsheet: the one import
workflow (workflows.importing) reads it in the background and proposes a mapping; the mapping
step asks what the file is (opt-outs, a contact list with a status column, a send list to scrub),
the columns, and each row's country. The comparison (workflows.reconcile, the CLI's
`reconcile`) runs with progress and Cancel in the page's TaskPanel. Each bucket of that kind of
file is a tab with its row count; the selected row's explanation shows in a pane under the
table. Suggestions (possible matches) have their own tab: accepting one leaves its row out of
what "Send to Submit" hands over, and the counts say so at once.

Whatever is on screen belongs to the list named beside "against": choosing another list
compares again (or clears the result while nothing is loaded). A file that cannot be read
leaves the previous result in place and says what is wrong with the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.errors import Cancelled, DeskError
from optout_desk.core.progress import CancelToken, Progress, ProgressCallback
from optout_desk.core.reconcile import Bucket, FileRole
from optout_desk.core.wording import rows_and_identifiers
from optout_desk.ui.dialogs.mapping import MappingDialog
from optout_desk.ui.formatting import counted, number
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.save_paths import SaveDialog
from optout_desk.ui.tasks import TaskHandle, report_failure, run_task
from optout_desk.ui.widgets.data_table import DataTable
from optout_desk.ui.widgets.task_panel import TaskPanel

if TYPE_CHECKING:
    from optout_desk.files.mapping import ColumnMapping
    from optout_desk.files.spreadsheet import ImportedTable
    from optout_desk.workflows.reconcile import ReconcileRun

log = logging.getLogger(__name__)

RECENT_KEY = "reconcile/recent_files"
RECENT_MAX = 8
OTHER_FILE = "Another file…"
RESULT_FILTERS = "Excel workbook (*.xlsx);;CSV (*.csv);;JSON lines (*.jsonl)"
ROLE_NAMES = {FileRole.OPTOUTS: "a list of opt-outs", FileRole.CONTACTS: "a contact list",
              FileRole.SEND_LIST: "a send list"}


@dataclass
class BucketTable:
    columns: dict[str, list[Any]]
    headers: dict[str, str]
    order: list[str]
    phone_columns: list[str]


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value(RECENT_KEY, [])
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value] if isinstance(value, list) else []


def remember_recent_file(settings: QSettings, path: Path) -> None:
    """Put `path` first in the recent files (also used by demo mode for its spreadsheet)."""
    text = str(Path(path))
    recent = [text, *[p for p in recent_files(settings) if p != text]][:RECENT_MAX]
    settings.setValue(RECENT_KEY, recent)


def bucket_table(run: ReconcileRun, bucket: Bucket) -> BucketTable:
    """A bucket as columns for the table: sheet row, how its phones were read (E.164: what a
    search in any format matches), the original columns, Explain."""
    headers = run.bucket_headers(bucket)[:-3]
    with_keys = bucket is not Bucket.MISSING_FROM_CRM and bool(run.mapping.phone_columns)
    order = ["row", *(["keys"] if with_keys else []),
             *[f"c{i}" for i in range(len(headers))], "explain"]
    # Times are shown in local time on screen (exports keep UTC and say so).
    titles = {"row": "Row", "explain": "Why", "keys": "Phone read as",
              **{f"c{i}": (header or f"Column {i + 1}").replace(" (UTC)", "")
                 for i, header in enumerate(headers)}}
    data: dict[str, list[Any]] = {name: [] for name in order}
    if with_keys:
        # run.columns holds the email columns first, then the phone columns (mapping order).
        phones = run.columns[len(run.mapping.email_columns):]
        data["keys"] = [" ".join(identifier.key for column in phones
                                 if (identifier := column[row]) is not None and identifier.key)
                        for row in run.rows_in(bucket)]
    cells = [data[f"c{i}"] for i in range(len(headers))]
    rows, explains = data["row"], data["explain"]
    for values in run.bucket_rows(bucket):
        *original, number_, _status, reason = values
        rows.append(number_)
        for column, value in zip(cells, original, strict=False):
            column.append(value)
        explains.append(reason)
    if bucket is Bucket.MISSING_FROM_CRM:
        searched = [f"c{i}" for i, header in enumerate(headers)
                    if header in ("Phone", "Identifier")]
    else:
        searched = ["keys", *[f"c{i}" for i in run.mapping.phone_columns]] if with_keys else []
    return BucketTable(data, titles, order, searched)



def suggestion_table(run: ReconcileRun) -> BucketTable:
    order = ["row", "column", "value", "other", "why", "decision"]
    titles = {"row": "Row", "column": "Column", "value": "Value", "other": "Possible opt-out",
              "why": "Why", "decision": "Decision"}
    data: dict[str, list[Any]] = {name: [] for name in order}
    for values in run.suggestion_rows():
        for name, value in zip(order, values, strict=False):
            data[name].append(value)
        data["decision"].append("to review")
    return BucketTable(data, titles, order, [])


def list_comparable(_progress: ProgressCallback, _cancel: CancelToken) -> list[str]:
    """Connections that can be compared with: they list their opt-outs or look them up."""
    from optout_desk.connectors.base import Capability
    from optout_desk.workflows.connections import connections_that

    names = [p.name for p in connections_that(Capability.LIST)]
    names += [p.name for p in connections_that(Capability.LOOKUP) if p.name not in names]
    return sorted(names)


class ReconcilePage(QWidget):
    def __init__(self, host: PageHost) -> None:
        super().__init__()
        self.host = host
        self.run: ReconcileRun | None = None
        self.compared_against: str | None = None  # what `run` was compared with
        self.table: ImportedTable | None = None
        self.mapping: ColumnMapping | None = None
        self.against_file: Path | None = None
        self.accepted_rows: set[int] = set()
        self._task: TaskHandle[Any] | None = None
        self.tables: dict[str, DataTable] = {}

        self.open_button = QToolButton()
        self.open_button.setText("Open spreadsheet…")
        self.open_button.setToolTip("Open a spreadsheet or text file (Ctrl+O); the arrow lists "
                                    "recent files")
        self.open_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.open_button.clicked.connect(self.choose_file)
        self.recent_menu = QMenu(self)
        self.recent_menu.aboutToShow.connect(self._refresh_recent)
        self.open_button.setMenu(self.recent_menu)
        self.against = QComboBox()
        self.against.setMinimumWidth(220)
        self.against.setToolTip("The opt-out list to compare with: a connection, or a file")
        self.against.activated.connect(self._against_chosen)
        self.against.currentIndexChanged.connect(self._against_changed)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.compare)
        self.export_button = QPushButton("Export result…")
        self.export_button.clicked.connect(self.export_result)
        self.submit_button = QPushButton("Send to Submit")
        self.submit_button.setToolTip("Hand the To submit bucket to the Submit page; nothing is "
                                      "sent before you confirm there")
        self.submit_button.clicked.connect(self.send_to_submit)

        controls = QHBoxLayout()
        controls.addWidget(self.open_button)
        controls.addWidget(QLabel("against"))
        controls.addWidget(self.against)
        controls.addWidget(self.compare_button)
        controls.addStretch(1)
        controls.addWidget(self.export_button)
        controls.addWidget(self.submit_button)

        self.panel = TaskPanel()
        self.status = QLabel("Open or drop a spreadsheet to compare it with an opt-out list.")
        self.status.setObjectName("reconcileStatus")
        self.status.setWordWrap(True)
        self.tabs = QTabWidget()

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Reconcile</h2>"))
        layout.addLayout(controls)
        layout.addWidget(self.panel)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._refresh_recent()
        self._update_buttons()
        host.changes.connectionsChanged.connect(self._load_connections)
        self._load_connections()

    # --- page protocol ---------------------------------------------------------------------

    def on_shown(self) -> None:
        self._refresh_recent()

    def accepts_drop(self, path: Path) -> bool:
        return self._task is None

    def open_file(self, path: Path, sheet: str | None = None) -> None:
        """Read `path` in the background, then ask for the mapping. Until a new mapping is
        accepted, the result on screen stays as it was."""
        if self._task is not None:
            self.host.notify("A comparison is running; wait for it or cancel it.", "warning")
            return
        path = Path(path)
        self._remember(path)
        against = self.against_value() or ""

        def work(progress: ProgressCallback, cancel: CancelToken) -> Any:
            from optout_desk.files.mapping import default_region
            from optout_desk.workflows.importing import open_spreadsheet

            return open_spreadsheet(path, sheet=sheet, region=default_region(),
                                    purpose="reconcile", against=against, progress=progress,
                                    cancel=cancel)

        self._start(f"Reading {path.name}…", work, self._table_read,
                    on_failure=lambda exc: self._read_failed(path, exc))

    def _read_failed(self, path: Path, exc: BaseException) -> None:
        self.host.changes.historyChanged.emit()  # the failed read is in the history
        if isinstance(exc, Cancelled):
            self.status.setText(f"Reading {path.name} was cancelled; "
                                + ("the result below is unchanged." if self.run else
                                   "nothing was changed."))
            return
        if isinstance(exc, DeskError):
            kept = (f" The result below is still the one for {self.run.table.source.name}."
                    if self.run is not None else "")
            self.status.setText(f"{path.name} could not be opened: {exc.message}{kept}")
            self.host.notify(f"{path.name} could not be opened: {exc.message}", "warning")
            return
        report_failure(self, exc, "The file could not be read")

    def shutdown(self) -> None:
        self.cancel()

    # --- choosing ----------------------------------------------------------------------------

    @classmethod
    def ask_open_path(cls, parent: QWidget) -> Path | None:
        """The spreadsheet to open, or None (tests patch this)."""
        from optout_desk.workflows.importing import open_filter

        name, _ = QFileDialog.getOpenFileName(parent, "Open a spreadsheet", "", open_filter())
        return Path(name) if name else None

    @Slot()
    def choose_file(self) -> None:
        path = self.ask_open_path(self)
        if path is not None:
            self.open_file(path)

    def set_against_file(self, path: Path) -> None:
        self.against_file = Path(path)
        label = f"File: {self.against_file.name}"
        index = self.against.findData(str(self.against_file))
        if index < 0:
            self.against.insertItem(self.against.count() - 1, label, str(self.against_file))
            index = self.against.findData(str(self.against_file))
        self.against.setCurrentIndex(index)
        self._update_buttons()

    @Slot(int)
    def _against_chosen(self, index: int) -> None:
        if self.against.itemData(index) == OTHER_FILE:
            path = self.ask_open_path(self)
            if path is not None:
                self.set_against_file(path)
            else:
                self.against.setCurrentIndex(max(self.against.findData(
                    self.compared_against or ""), 0))

    @Slot(int)
    def _against_changed(self, _index: int) -> None:
        """Never a result beside the wrong name: compare again with the new list, or clear."""
        against = self.against_value()
        if self.run is None or against == self.compared_against or against is None:
            self._update_buttons()
            return
        if self.table is not None and self.mapping is not None and self._task is None:
            self.compare()
        else:
            self._clear_result(f"Choose Compare to compare with {self.against.currentText()}.")

    @Slot()
    def _load_connections(self) -> None:
        run_task(self, list_comparable, on_success=self._connections_listed,
                 name="list comparable connections")

    def _connections_listed(self, names: list[str]) -> None:
        current = self.against.currentData()
        self.against.blockSignals(True)
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
        self.against.blockSignals(False)
        self._against_changed(self.against.currentIndex())

    def against_value(self) -> str | None:
        value = self.against.currentData()
        return None if value in (None, OTHER_FILE) else str(value)

    # --- recent files ------------------------------------------------------------------------

    def recent_files(self) -> list[str]:
        return recent_files(self.host.settings)

    def _remember(self, path: Path) -> None:
        remember_recent_file(self.host.settings, path)
        self._refresh_recent()

    @Slot()
    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for text in self.recent_files():
            action = self.recent_menu.addAction(text)
            action.setData(text)
            action.triggered.connect(self._recent_chosen)
        self.recent_menu.setEnabled(bool(self.recent_files()))

    @Slot()
    def _recent_chosen(self) -> None:
        action = self.sender()
        data = action.data() if action is not None else None  # type: ignore[attr-defined]
        if data:
            self.open_file(Path(str(data)))

    # --- reading and comparing ---------------------------------------------------------------

    def _table_read(self, opened: Any) -> None:
        table, mapping = opened.table, opened.mapping
        choice = MappingDialog.ask(self, table, mapping)
        if choice is None:
            self.status.setText(f"{table.source.name}: mapping cancelled; "
                                + ("the result below is unchanged." if self.run else
                                   "nothing was compared."))
            return
        if choice.sheet is not None and choice.sheet != table.sheet:
            self.open_file(table.source, sheet=choice.sheet)
            return
        self.table = table
        self.mapping = choice.mapping
        self._clear_result(
            f"{table.source.name} ({ROLE_NAMES[choice.mapping.role]}), sheet "
            f"{table.sheet or '(text)'}: {counted(len(table.rows), 'row')}. Pick the list to "
            "compare with and press Compare.")
        if self.against_value() is not None:
            self.compare()

    @Slot()
    def compare(self) -> None:
        against = self.against_value()
        if self.table is None or self.mapping is None or self._task is not None:
            return
        if against is None:
            self.host.notify("Pick a connection or a file to compare with.", "warning")
            return
        table, mapping = self.table, self.mapping

        def work(progress: ProgressCallback, cancel: CancelToken) -> tuple[Any, Any, Any]:
            from optout_desk.workflows.reconcile import reconcile_table

            run = reconcile_table(table, mapping, against, progress=progress, cancel=cancel)
            progress(Progress(0, None, "rows", "Preparing the tables…"))
            tables = {}
            for bucket in run.buckets:
                cancel.raise_if_cancelled()
                tables[bucket.value] = bucket_table(run, bucket)
            return run, tables, suggestion_table(run)

        self._clear_result(f"Comparing {table.source.name} with "
                           f"{self.against.currentText().split(': ', 1)[-1]}…")
        self._start(f"Comparing {table.source.name}…", work,
                    lambda result: self._compared(against, result),
                    on_failure=self._compare_failed)

    def _compare_failed(self, exc: BaseException) -> None:
        self.host.changes.historyChanged.emit()
        if isinstance(exc, DeskError):
            self.status.setText(exc.message)
        report_failure(self, exc, "The comparison failed")

    def _compared(self, against: str,
                  result: tuple[ReconcileRun, dict[str, BucketTable], BucketTable]) -> None:
        run, tables, suggestions = result
        self.run = run
        self.compared_against = against
        self.accepted_rows = set()
        self._clear_tabs()
        for bucket in run.buckets:
            unknown = bucket is Bucket.MISSING_FROM_CRM and not run.other.complete
            self._add_tab(bucket.value, run.bucket_labels[bucket], tables[bucket.value],
                          unknown=run.other.missing_note if unknown else "")
        if suggestions.columns["row"]:
            self._add_tab("suggestions", "Suggestions", suggestions)
            self._add_suggestion_buttons()
        self._show_counts()
        self.host.changes.historyChanged.emit()
        if self.against_value() != against:
            self._against_changed(self.against.currentIndex())  # changed while comparing

    def _show_counts(self) -> None:
        """The status line and the To submit tab, with accepted suggestions left out."""
        run = self.run
        if run is None:
            return
        role = run.role
        lines = [f"{run.table.source.name} ({ROLE_NAMES[role]}): "
                 f"{counted(run.result.row_count, 'row')} compared with "
                 f"{run.other.description}."]
        if role is FileRole.SEND_LIST:
            kept = len(run.result.scrubbed_rows())
            lines.append(f"Safe to send: {number(kept)}; opted out, to remove: "
                         f"{number(run.result.row_count - kept)}.")
        else:
            inputs = self.submit_inputs()
            rows = len({item.row_number for item in inputs})
            kinds: dict[str, int] = {}
            for item in inputs:
                kinds[item.identifier.kind.value] = kinds.get(item.identifier.kind.value, 0) + 1
            text = rows_and_identifiers(rows, kinds, number)
            left_out = len(self.accepted_rows)
            lines.append(f"To submit: {text}"
                         + (f" ({counted(left_out, 'accepted suggestion')} left out)."
                            if left_out else "."))
            index = self._tab_index("to_submit")
            if index >= 0:
                self.tabs.setTabText(index, f"{run.bucket_labels[Bucket.TO_SUBMIT]} "
                                            f"({number(rows)})")
            self.submit_button.setText(f"Send {counted(rows, 'row')} to Submit" if rows
                                       else "Send to Submit")
        if run.other.complete and role is not FileRole.SEND_LIST:
            held = len(run.result.subscribed_match)
            lines.append(f"Missing from the CRM: {number(len(run.result.missing))}"
                         + (f", of which {number(held)} the CRM holds as subscribed." if held
                            else "."))
        elif role is not FileRole.SEND_LIST:
            lines.append(f"Missing from the CRM {run.other.missing_note}.")
        self.status.setText(" ".join(lines))
        self._update_buttons()

    def _tab_index(self, key: str) -> int:
        widget = self.tables.get(key)
        return self.tabs.indexOf(widget) if widget is not None else -1

    def _add_tab(self, key: str, title: str, table: BucketTable, unknown: str = "") -> None:
        """A bucket's tab; `unknown` says why its content cannot be known (a look-up source
        has no list to find what is missing from the CRM)."""
        searchable = [name for name in table.order if name != "explain"]
        model = ColumnarTableModel(table.order, headers=table.headers, search_columns=searchable,
                                   phone_columns=table.phone_columns)
        model.set_columns(table.columns)
        detail = "explain" if "explain" in table.order else None
        mapped = ([*self.run.mapping.email_columns, *self.run.mapping.phone_columns]
                  if self.run is not None and key != "missing_from_crm" else [])
        keep = ("row", "keys", *(f"c{i}" for i in mapped))
        widget = DataTable(model, export_name=f"reconcile-{key}", host=self.host,
                           detail_column=detail, keep_columns=tuple(keep),
                           search_placeholder="Search any column; phones in any format")
        widget.resize_columns_to_sample()
        if unknown:
            widget.empty_text = f"{title}: {unknown}."
        self.tables[key] = widget
        count = "—" if unknown else number(len(table.columns["row"]))
        self.tabs.addTab(widget, f"{title} ({count})")

    def _add_suggestion_buttons(self) -> None:
        widget = self.tables["suggestions"]
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept selected")
        self.accept_button.setToolTip("Treat these rows as already opted out: they are not sent "
                                      "to Submit")
        self.reject_button = QPushButton("Reject selected")
        self.accept_button.clicked.connect(self._accept_selected)
        self.reject_button.clicked.connect(self._reject_selected)
        row.addStretch(1)
        row.addWidget(self.accept_button)
        row.addWidget(self.reject_button)
        layout = widget.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.addLayout(row)

    @Slot()
    def _accept_selected(self) -> None:
        self.decide_suggestions(True)

    @Slot()
    def _reject_selected(self) -> None:
        self.decide_suggestions(False)

    def decide_suggestions(self, accept: bool, view_rows: list[int] | None = None) -> None:
        """Accept or reject suggestions (the selected ones by default); the counts follow."""
        if self.run is None:
            return
        widget = self.tables["suggestions"]
        rows = view_rows if view_rows is not None else widget.selected_view_rows()
        if not rows:
            self.host.notify("Select the suggestions to decide about first.", "info")
            return
        before = len(self.submit_inputs())
        for view_row in rows:
            data_row = widget.model.data_row(view_row)
            suggestion = self.run.suggestions[data_row]
            widget.model.set_value(data_row, "decision", "accepted" if accept else "rejected")
            if accept:
                self.accepted_rows.add(suggestion.row)
            else:
                self.accepted_rows.discard(suggestion.row)
        self._show_counts()
        after = len(self.submit_inputs())
        if before != after:
            change = before - after
            self.host.notify(
                f"{counted(abs(change), 'identifier')} "
                + ("left out of" if change > 0 else "back in") + " what goes to Submit "
                f"(now {number(after)}).", "info")

    # --- results out -------------------------------------------------------------------------

    def submit_inputs(self) -> list[Any]:
        if self.run is None:
            return []
        source, numbers = self.run.table.source.name, self.run.table.row_numbers
        skipped = {numbers[row] for row in self.accepted_rows}
        return [item for item in self.run.to_submit_inputs()
                if not (item.source_file == source and item.row_number in skipped)]

    @Slot()
    def send_to_submit(self) -> None:
        inputs = self.submit_inputs()
        if not inputs or self.run is None:
            return
        against = self.compared_against if self.run.other.kind != "file" else None
        self.host.send_to_submit(inputs, f"reconcile of {self.run.table.source.name}",
                                 against=against)

    @Slot()
    def export_result(self) -> None:
        if self.run is None or self._task is not None:
            return
        run = self.run
        scrub = run.role is FileRole.SEND_LIST
        suffix = "send-list" if scrub else "reconciled"
        path = SaveDialog.ask(self, self.host.exports, "reconcile-result", "Export the result",
                              f"{run.table.source.stem}-{suffix}.xlsx", RESULT_FILTERS)
        if path is None:
            return

        def work(progress: ProgressCallback, cancel: CancelToken) -> list[Path]:
            from optout_desk.workflows.reconcile import write_result

            return write_result(run, path, scrub=scrub, progress=progress, cancel=cancel)

        self._start(f"Writing {path.name}…", work, self._exported)

    def _exported(self, written: list[Path]) -> None:
        for path in written:
            self.host.exports.exported(path)
        self.host.notify("Wrote " + ", ".join(str(p) for p in written), "success")

    # --- tasks -------------------------------------------------------------------------------

    def _start(self, text: str, work: Any, on_success: Any, on_failure: Any = None) -> None:
        def done(result: Any) -> None:
            self._task = None
            self._update_buttons()
            on_success(result)

        def failed(exc: BaseException) -> None:
            self._task = None
            self._update_buttons()
            if on_failure is not None:
                on_failure(exc)
            else:
                report_failure(self, exc)

        self._task = self.panel.run(self, work, text, on_success=done, on_failure=failed,
                                    name="reconcile")
        self._update_buttons()

    @Slot()
    def cancel(self) -> None:
        self.panel.cancel()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def _clear_result(self, status: str) -> None:
        self.run = None
        self.compared_against = None
        self.accepted_rows = set()
        self._clear_tabs()
        self.status.setText(status)
        self.submit_button.setText("Send to Submit")
        self._update_buttons()

    def _clear_tabs(self) -> None:
        while self.tabs.count():
            widget = self.tabs.widget(0)
            self.tabs.removeTab(0)
            if widget is not None:
                widget.deleteLater()
        self.tables = {}

    def tab_titles(self) -> list[str]:
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def _update_buttons(self) -> None:
        idle = self._task is None
        self.open_button.setEnabled(idle)
        self.against.setEnabled(idle)
        self.compare_button.setEnabled(idle and self.table is not None
                                       and self.against_value() is not None)
        self.export_button.setEnabled(idle and self.run is not None)
        can_submit = self.run is not None and self.run.role is not FileRole.SEND_LIST
        self.submit_button.setVisible(self.run is None or can_submit)
        self.submit_button.setEnabled(idle and can_submit and bool(self.submit_inputs()))
