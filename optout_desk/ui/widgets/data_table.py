"""DataTable: search box + table + count line + copy + export, reused by every page.

The table is a QTableView over a ColumnarTableModel with fixed row heights (no per-row resize,
so a million rows cost what the visible rows cost). The search box filters as you type; on
large data the model filters off the GUI thread and the box stays responsive, with a short
debounce so a burst of keystrokes costs one scan. Copy puts the selected rows on the clipboard
as TSV with a header line (pastes into Excel); Export writes the SHOWN rows (filtered, in the
shown order) to xlsx or csv through files/export.py in a background task, starting in the
folder last chosen for this kind of export (documents by default).

A cell too narrow for its text shows the whole text as a tooltip. A `detail_column` (Explain)
is not squeezed into the table: the selected row's text appears in a pane under it. Ctrl+E
exports even while the search box has the focus (a line edit would take it as "end of line").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QHelpEvent, QKeyEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.ui.formatting import number, plural_word
from optout_desk.ui.host import PageHost
from optout_desk.ui.models.columnar import ColumnarTableModel
from optout_desk.ui.save_paths import SaveDialog, SavePaths

log = logging.getLogger(__name__)

SEARCH_DEBOUNCE_MS = 80  # for large data only; small tables filter on every keystroke
EXPORT_FILTERS = "Excel workbook (*.xlsx);;CSV, comma separated (*.csv)"
_EXPORT_KEYS = QKeySequence("Ctrl+E")


def _plural(count: int, noun: tuple[str, str]) -> str:
    return plural_word(count, *noun)


class DataTable(QWidget):
    """A searchable, sortable, copyable, exportable table over a ColumnarTableModel."""

    exported = Signal(str)  # the path written

    def __init__(
        self,
        model: ColumnarTableModel,
        *,
        noun: tuple[str, str] = ("row", "rows"),
        search_placeholder: str = "Search",
        export_name: str = "export",
        host: PageHost | None = None,
        detail_column: str | None = None,
        keep_columns: tuple[str, ...] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.noun = noun
        self.export_name = export_name
        self.host = host
        self.detail_column = detail_column
        self.keep_columns = keep_columns
        self.status_suffix = ""
        self.empty_text = ""
        self._export_task: Any = None
        self._caps: dict[str, int] | None = None
        self._sized_while_hidden = False

        self.search = QLineEdit()
        self.search.setPlaceholderText(search_placeholder)
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
        self.search.installEventFilter(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._apply_search)

        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selected rows, with a header line (Ctrl+C)")
        self.copy_button.clicked.connect(self.copy_selection)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the rows shown to an Excel or CSV file (Ctrl+E)")
        self.export_button.clicked.connect(self.export_shown)

        self.view = QTableView()
        self.view.setModel(model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        self.view.setCornerButtonEnabled(False)
        self.view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vertical = self.view.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 8)
        vertical.hide()
        horizontal = self.view.horizontalHeader()
        horizontal.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        horizontal.setStretchLastSection(True)
        # A header cut down to fit ends in "…" (a header view's default clips both ends:
        # "Customer number" read "ustomer r"); its tooltip has the whole title.
        horizontal.setTextElideMode(Qt.TextElideMode.ElideRight)
        horizontal.setSortIndicatorShown(True)
        horizontal.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSortingEnabled(True)

        self.view.viewport().installEventFilter(self)
        self.count_label = QLabel()
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail = QLabel()
        self.detail.setObjectName("detailPane")
        self.detail.setWordWrap(True)
        self.detail.setFrameShape(QFrame.Shape.StyledPanel)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setMargin(6)
        self.detail.setVisible(detail_column is not None)
        self.detail_placeholder = "Select a row to see why it is here."
        if detail_column is not None:
            self.detail.setText(self.detail_placeholder)
            self.view.setColumnHidden(model.columns.index(detail_column), True)
            self.view.selectionModel().currentRowChanged.connect(self._show_detail)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.copy_button)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.count_label)

        for text, keys, slot in (
            ("Find", QKeySequence.StandardKey.Find, self.focus_search),
            ("Copy", QKeySequence.StandardKey.Copy, self.copy_selection),
        ):
            action = QAction(text, self)
            action.setShortcut(keys)
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)

        model.modelReset.connect(self._model_reset)
        model.layoutChanged.connect(self.update_count)
        model.busyChanged.connect(self._busy_changed)
        self.update_count()

    # --- events ----------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search and event.type() == QEvent.Type.ShortcutOverride:
            assert isinstance(event, QKeyEvent)
            if QKeySequence(event.keyCombination()) == _EXPORT_KEYS:
                # Not the line edit's "end of line": let the window's Export shortcut run.
                event.ignore()
                return True
        if watched is self.view.viewport() and event.type() == QEvent.Type.ToolTip:
            assert isinstance(event, QHelpEvent)
            self._cell_tooltip(event)
            return True
        return super().eventFilter(watched, event)

    def _cell_tooltip(self, event: QHelpEvent) -> None:
        """The whole text of a cell too narrow for it (nothing for a cell that shows it all)."""
        index = self.view.indexAt(event.pos())
        text = str(self.model.data(index) or "") if index.isValid() else ""
        width = self.view.columnWidth(index.column()) if index.isValid() else 0
        if text and self.view.fontMetrics().horizontalAdvance(text) + 12 > width:
            QToolTip.showText(event.globalPos(), text, self.view)
        else:
            QToolTip.hideText()

    def cell_tooltip_text(self, view_row: int, column: int) -> str:
        """What `_cell_tooltip` shows for a cell ("" when it fits): for tests."""
        index = self.model.index(view_row, column)
        text = str(self.model.data(index) or "")
        fits = self.view.fontMetrics().horizontalAdvance(text) + 12 <= self.view.columnWidth(
            column)
        return "" if fits else text

    @Slot()
    def _model_reset(self) -> None:
        self.update_count()
        if self.detail_column is not None:
            self.detail.setText(self.detail_placeholder)

    @Slot()
    def _show_detail(self, *_args: Any) -> None:
        rows = self.selected_view_rows()
        current = self.view.currentIndex()
        row = current.row() if current.isValid() else (rows[0] if rows else -1)
        if row < 0 or self.detail_column is None or row >= self.model.shown_rows:
            return
        values = self.model.row_values(self.model.data_row(row))
        self.detail.setText(str(values[self.model.columns.index(self.detail_column)] or ""))

    # --- count line ------------------------------------------------------------------------

    def set_status_suffix(self, text: str) -> None:
        """Text after the count, e.g. "last synced 2026-11-22 09:14"."""
        self.status_suffix = text
        self.update_count()

    @Slot()
    def update_count(self) -> None:
        total, shown = self.model.total_rows, self.model.shown_rows
        if total == 0 and self.empty_text:
            text = self.empty_text
        elif self.model.filter_text:
            text = f"{number(shown)} of {number(total)} shown"
        else:
            text = f"{number(total)} {_plural(total, self.noun)}"
        if self.status_suffix:
            text += f" · {self.status_suffix}"
        if self.model.busy:
            text += " · searching…"
        self.count_label.setText(text)
        has_rows = shown > 0
        self.copy_button.setEnabled(has_rows)
        self.export_button.setEnabled(has_rows and self._export_task is None)

    @Slot(bool)
    def _busy_changed(self, _busy: bool) -> None:
        self.update_count()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._sized_while_hidden:
            # Sized before it had its real width (a tab made while another one showed).
            QTimer.singleShot(0, lambda: self.resize_columns_to_sample(caps=self._caps))

    def resize_columns_to_sample(self, sample_rows: int = 100,
                                 caps: dict[str, int] | None = None) -> None:
        """Size columns from the first rows only (ResizeToContents would read every row).

        Reads the model's data directly rather than through model.index()/data(): each Qt call
        is a GIL round trip, which costs milliseconds while a worker thread is busy."""
        self._caps = caps
        self._sized_while_hidden = not self.isVisible()
        header = self.view.horizontalHeader()
        metrics = self.view.fontMetrics()
        model = self.model
        rows = [model.row_values(model.data_row(r))
                for r in range(min(sample_rows, model.shown_rows))]
        widths: list[int] = []
        minimums: list[int] = []
        for column, title in enumerate(model.header_titles()):
            if self.view.isColumnHidden(column):  # the detail column shows in its pane
                widths.append(0)
                minimums.append(0)
                continue
            texts = {model.display_text(column, row[column]) for row in rows}
            header_width = metrics.horizontalAdvance(title) + 32
            content = max((metrics.horizontalAdvance(t) + 16 for t in texts), default=0)
            cap = (caps or {}).get(model.columns[column], 320)
            width = min(max(header_width, content), cap)
            widths.append(width)
            # The columns the operator reads by (emails, phones) keep their width; the others
            # may go down to their content (their header then ends in "…").
            keep = model.columns[column] in self.keep_columns
            minimums.append(width if keep else min(width, max(content, 48)))
        widths = fit_widths(widths, minimums, self.view.viewport().width() - 2)
        for column, width in enumerate(widths):
            if not self.view.isColumnHidden(column):
                header.resizeSection(column, width)

    # --- search ----------------------------------------------------------------------------

    @Slot()
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    @Slot(str)
    def _search_changed(self, _text: str) -> None:
        if self.model.total_rows >= self.model.async_threshold:
            self._debounce.start()
        else:
            self._apply_search()

    @Slot()
    def _apply_search(self) -> None:
        self.model.set_filter_text(self.search.text())
        self.update_count()

    # --- copy ------------------------------------------------------------------------------

    def selected_view_rows(self) -> list[int]:
        selection = self.view.selectionModel()
        if selection is None:
            return []
        return sorted({index.row() for index in selection.selectedIndexes()})

    def selection_as_tsv(self) -> str:
        rows = self.selected_view_rows()
        if not rows:
            return ""
        lines = ["\t".join(self.model.header_titles())]
        for view_row in rows:
            values = self.model.row_values(self.model.data_row(view_row))
            lines.append("\t".join(
                _tsv_cell(self.model.display_text(c, v)) for c, v in enumerate(values)
            ))
        return "\n".join(lines) + "\n"

    @Slot()
    def copy_selection(self) -> int:
        """Copy the selected rows; returns how many were copied."""
        text = self.selection_as_tsv()
        if not text:
            self._notify("Select the rows to copy first.", "info")
            return 0
        clipboard = QGuiApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text)
        count = text.count("\n") - 1
        self._notify(f"Copied {number(count)} {_plural(count, self.noun)}.", "success")
        return count

    # --- export ----------------------------------------------------------------------------

    def save_paths(self) -> SavePaths:
        if self.host is not None:
            return self.host.exports
        from optout_desk.ui.main_window import open_settings

        return SavePaths(open_settings())

    @Slot()
    def export_shown(self) -> None:
        if self.model.shown_rows == 0 or self._export_task is not None:
            return
        path = SaveDialog.ask(self, self.save_paths(), "table-export", "Export the rows shown",
                              f"{self.export_name}.xlsx", EXPORT_FILTERS)
        if path is None:
            return
        if path.suffix.lower() not in (".xlsx", ".csv"):
            path = path.with_suffix(".xlsx")
        self.start_export(path)

    def start_export(self, path: Path) -> None:
        from optout_desk.ui.tasks import run_task

        model = self.model
        headers = model.export_titles()
        rows_index = model.shown_data_rows().copy()
        row_values = model.export_row

        def work(progress: ProgressCallback, cancel: CancelToken) -> Path:
            from optout_desk.files.export import export_rows

            rows = (row_values(int(r)) for r in rows_index)
            export_rows(path, headers, rows, progress=progress, cancel=cancel)
            return path

        self._export_task = run_task(
            self, work, on_success=self._export_done, on_failure=self._export_failed,
            name="export",
        )
        self.update_count()

    def _export_done(self, path: Path) -> None:
        self._export_task = None
        self.update_count()
        count = self.model.shown_rows
        self.save_paths().exported(path)
        self._notify(f"Exported {number(count)} {_plural(count, self.noun)} to {path}.",
                     "success")
        self.exported.emit(str(path))

    def _export_failed(self, exc: BaseException) -> None:
        from optout_desk.ui.tasks import report_failure

        self._export_task = None
        self.update_count()
        report_failure(self, exc, "The export failed")

    def _notify(self, text: str, level: str) -> None:
        window = self.host if self.host is not None else self.window()
        if isinstance(window, PageHost):
            window.notify(text, level)


def fit_widths(widths: list[int], minimums: list[int], available: int) -> list[int]:
    """Column widths that fit `available` pixels when they can: the widest columns are cut
    down to one common width first (narrow ones keep theirs), never below a column's header
    width; a cut cell shows its whole text as a tooltip. When even the header widths do not
    fit, nothing is cut (the table scrolls sideways instead of squeezing every column)."""
    if available <= 0 or sum(widths) <= available:
        return widths
    if sum(minimums) > available:
        return widths  # too many columns to fit anyway: natural widths, and a scroll bar

    def capped(level: int) -> list[int]:
        return [min(width, max(level, minimum)) for width, minimum in zip(widths, minimums,
                                                                            strict=True)]

    low, high = 0, max(widths)
    while low < high:  # the largest common cap that fits
        middle = (low + high + 1) // 2
        if sum(capped(middle)) <= available:
            low = middle
        else:
            high = middle - 1
    return capped(low)


def _tsv_cell(text: str) -> str:
    # Tabs and line breaks inside a cell would shift the pasted columns.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
