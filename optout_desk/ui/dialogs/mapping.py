"""The column-mapping dialog: which sheet, which columns hold emails and phones, which region.

The proposal comes from files.mapping.detect_columns (by content); every column is listed with
a few sample values so the operator can confirm or change it. Choosing another sheet returns
that sheet name: the page reads it and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.identifiers import cell_text
from optout_desk.files.mapping import ColumnMapping
from optout_desk.files.spreadsheet import ImportedTable

SAMPLES = 3


@dataclass(frozen=True)
class MappingChoice:
    sheet: str | None
    mapping: ColumnMapping


def sample_values(table: ImportedTable, column: int, count: int = SAMPLES) -> list[str]:
    values: list[str] = []
    for row in table.rows:
        value = row[column]
        if value is not None and value != "":
            values.append(cell_text(value))
            if len(values) >= count:
                break
    return values


class MappingDialog(QDialog):
    def __init__(
        self, table: ImportedTable, mapping: ColumnMapping, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Columns of {table.source.name}")
        self.table = table

        self.sheet = QComboBox()
        self.sheet.addItems(table.sheet_names)
        if table.sheet is not None:
            self.sheet.setCurrentText(table.sheet)
        self.sheet.setEnabled(len(table.sheet_names) > 1)

        self.email_list = self._column_list(mapping.email_columns)
        self.phone_list = self._column_list(mapping.phone_columns)

        self.region = QComboBox()
        self.region.addItems(sorted(phonenumbers.SUPPORTED_REGIONS))
        self.region.setCurrentText(mapping.region)

        form = QFormLayout()
        form.addRow("Sheet", self.sheet)
        form.addRow("Phone region", self.region)
        lists = QHBoxLayout()
        for title, widget in (("Email columns", self.email_list),
                              ("Phone columns", self.phone_list)):
            box = QVBoxLayout()
            box.addWidget(QLabel(f"<b>{title}</b>"))
            box.addWidget(widget)
            lists.addLayout(box)
        header = QLabel(
            f"Header on row {table.header_row_number}; {len(table.rows):,} data rows. The "
            "proposed columns are ticked; each shows sample values."
        )
        header.setWordWrap(True)
        notes = QLabel("\n".join(table.notes))
        notes.setWordWrap(True)
        notes.setVisible(bool(table.notes))
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        for widget in (self.email_list, self.phone_list):
            widget.itemChanged.connect(self._update_ok)

        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(notes)
        layout.addLayout(form)
        layout.addLayout(lists, 1)
        layout.addWidget(self.buttons)
        self._update_ok()

    def _column_list(self, checked: list[int]) -> QListWidget:
        widget = QListWidget()
        for index in range(self.table.column_count):
            samples = ", ".join(sample_values(self.table, index))
            item = QListWidgetItem(f"{self.table.column_label(index)} — {samples}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if index in checked else Qt.CheckState.Unchecked
            )
            widget.addItem(item)
        return widget

    @staticmethod
    def _checked(widget: QListWidget) -> list[int]:
        return [
            int(widget.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(widget.count())
            if widget.item(i).checkState() == Qt.CheckState.Checked
        ]

    def _update_ok(self, *_: object) -> None:
        ok = bool(self._checked(self.email_list) or self._checked(self.phone_list))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def choice(self) -> MappingChoice:
        sheet = self.sheet.currentText() if self.table.sheet_names else None
        mapping = ColumnMapping(
            self._checked(self.email_list), self._checked(self.phone_list),
            self.region.currentText(),
        )
        return MappingChoice(sheet, mapping)

    @classmethod
    def ask(
        cls, parent: QWidget, table: ImportedTable, mapping: ColumnMapping
    ) -> MappingChoice | None:
        """The operator's mapping, or None if cancelled (tests patch this)."""
        dialog = cls(table, mapping, parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.choice()
