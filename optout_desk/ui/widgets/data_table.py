"""DataTable: search box + table + count line + copy + export, reused by every page.

The table is a QTableView over a ColumnarTableModel with fixed row heights (no per-row resize,
so a million rows cost what the visible rows cost). The search box filters as you type; on
large data the model filters off the GUI thread and the box stays responsive, with a short
debounce so a burst of keystrokes costs one scan. Copy puts the selected rows on the clipboard
as TSV with a header line (pastes into Excel); Export writes the SHOWN rows (filtered, in the
shown order) to xlsx or csv through files/export.py in a background task.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from optout_desk import paths
from optout_desk.core.progress import CancelToken, ProgressCallback
from optout_desk.ui.models.columnar import ColumnarTableModel

log = logging.getLogger(__name__)

SEARCH_DEBOUNCE_MS = 80  # for large data only; small tables filter on every keystroke


def _plural(count: int, noun: tuple[str, str]) -> str:
    return noun[0] if count == 1 else noun[1]


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
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.noun = noun
        self.export_name = export_name
        self.status_suffix = ""
        self.empty_text = ""
        self._export_task: Any = None

        self.search = QLineEdit()
        self.search.setPlaceholderText(search_placeholder)
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
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
        horizontal.setSortIndicatorShown(True)
        horizontal.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSortingEnabled(True)

        self.count_label = QLabel()
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.copy_button)
        top.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
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

        model.modelReset.connect(self.update_count)
        model.layoutChanged.connect(self.update_count)
        model.busyChanged.connect(self._busy_changed)
        self.update_count()

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
            text = f"{shown:,} of {total:,} shown"
        else:
            text = f"{total:,} {_plural(total, self.noun)}"
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

    def resize_columns_to_sample(self, sample_rows: int = 100) -> None:
        """Size columns from the first rows only (ResizeToContents would read every row).

        Reads the model's data directly rather than through model.index()/data(): each Qt call
        is a GIL round trip, which costs milliseconds while a worker thread is busy."""
        header = self.view.horizontalHeader()
        metrics = self.view.fontMetrics()
        model = self.model
        rows = [model.row_values(model.data_row(r))
                for r in range(min(sample_rows, model.shown_rows))]
        for column, title in enumerate(model.header_titles()):
            texts = {model.display_text(column, row[column]) for row in rows}
            width = max([metrics.horizontalAdvance(title) + 32,
                         *(metrics.horizontalAdvance(t) + 16 for t in texts)])
            header.resizeSection(column, min(width, 320))

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
        self._notify(f"Copied {count:,} {_plural(count, self.noun)}.", "success")
        return count

    # --- export ----------------------------------------------------------------------------

    @classmethod
    def ask_export_path(cls, parent: QWidget, suggested: Path) -> Path | None:
        """The file to export to, or None if the user cancelled (tests patch this)."""
        name, _ = QFileDialog.getSaveFileName(
            parent, "Export the rows shown", str(suggested),
            "Excel workbook (*.xlsx);;CSV, comma separated (*.csv)",
        )
        return Path(name) if name else None

    @Slot()
    def export_shown(self) -> None:
        if self.model.shown_rows == 0 or self._export_task is not None:
            return
        path = self.ask_export_path(self, paths.exports_dir() / f"{self.export_name}.xlsx")
        if path is None:
            return
        if path.suffix.lower() not in (".xlsx", ".csv"):
            path = path.with_suffix(".xlsx")
        self.start_export(path)

    def start_export(self, path: Path) -> None:
        from optout_desk.ui.tasks import run_task

        model = self.model
        headers = model.header_titles()
        rows_index = model.shown_data_rows().copy()
        row_values = model.row_values

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
        self._notify(f"Exported {count:,} {_plural(count, self.noun)} to {path}.", "success")
        self.exported.emit(str(path))

    def _export_failed(self, exc: BaseException) -> None:
        self._export_task = None
        self.update_count()
        window: Any = self.window()
        if hasattr(window, "show_error"):
            window.show_error(exc)
        else:
            raise exc

    def _notify(self, text: str, level: str) -> None:
        window: Any = self.window()
        if hasattr(window, "notify"):
            window.notify(text, level)


def _tsv_cell(text: str) -> str:
    # Tabs and line breaks inside a cell would shift the pasted columns.
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
