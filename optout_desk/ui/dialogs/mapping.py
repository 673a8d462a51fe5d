"""The mapping step: what the file is, which sheet, which columns hold emails and phones, and in
which country each row's phones are read.

The proposal comes from the import workflow (files.mapping.propose_mapping, by content): the
operator confirms or changes it. "What is this file?" is always asked, because it decides what
is submitted: a list of opt-outs (every row), a contact list (only the rows whose status column
holds one of the ticked "opted out" values — the dialog counts them as the ticks change), or a
send list to scrub (nothing is submitted). Choosing another sheet returns that sheet name: the
page reads it and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from optout_desk.core.identifiers import cell_text
from optout_desk.core.reconcile import FileRole
from optout_desk.files.mapping import (
    ColumnMapping,
    distinct_values,
    opted_out_values_for,
    status_key,
    unknown_countries,
)
from optout_desk.files.spreadsheet import ImportedTable
from optout_desk.ui.formatting import counted, number
from optout_desk.ui.widgets.region_picker import RegionPicker

SAMPLES = 3
_NO_COLUMN = -1
ROLE_TEXTS = {
    FileRole.OPTOUTS: ("A list of opt-outs",
                       "Every row is a person who opted out: all of them can be submitted."),
    FileRole.CONTACTS: ("A contact list with a status column",
                        "Only the rows whose status means “opted out” are opt-outs; the others "
                        "are subscribed and are never submitted."),
    FileRole.SEND_LIST: ("A send list to scrub",
                         "People you are about to contact: everyone who opted out is removed. "
                         "Nothing is submitted."),
}


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
        self.setWindowTitle(f"What is in {table.source.name}?")
        self.table = table
        self.proposal = mapping
        self.setMinimumWidth(760)
        self.resize(820, 700)

        self.sheet = QComboBox()
        self.sheet.addItems(table.sheet_names)
        if table.sheet is not None:
            self.sheet.setCurrentText(table.sheet)
        self.sheet.setEnabled(len(table.sheet_names) > 1)
        header = QLabel(
            f"Header on row {table.header_row_number}; {counted(len(table.rows), 'data row')}. "
            "The proposed columns are ticked; each shows sample values.")
        header.setWordWrap(True)
        notes = QLabel("\n".join(table.notes))
        notes.setWordWrap(True)
        notes.setVisible(bool(table.notes))

        # --- what the file is -----------------------------------------------------------
        self.role_group = QButtonGroup(self)
        self.role_buttons: dict[FileRole, QRadioButton] = {}
        roles = QGroupBox("What is this file?")
        role_layout = QGridLayout(roles)
        for position, role in enumerate(FileRole):
            title, explanation = ROLE_TEXTS[role]
            button = QRadioButton(title)
            button.setObjectName(f"role-{role.value}")
            button.setToolTip(explanation)
            self.role_group.addButton(button, position)
            self.role_buttons[role] = button
            role_layout.addWidget(button, position, 0)
            hint = QLabel(explanation)
            hint.setWordWrap(True)
            hint.setEnabled(False)
            role_layout.addWidget(hint, position, 1)
        role_layout.setColumnStretch(1, 1)
        self.status_box = QWidget()
        status_layout = QHBoxLayout(self.status_box)
        status_layout.setContentsMargins(24, 0, 0, 0)
        self.status_column = QComboBox()
        self.status_column.setObjectName("statusColumn")
        self.status_column.addItem("Choose the status column…", _NO_COLUMN)
        for index in range(table.column_count):
            self.status_column.addItem(table.column_label(index), index)
        self.status_values = QListWidget()
        self.status_values.setObjectName("optedOutValues")
        self.status_values.setMaximumHeight(90)
        self.status_count = QLabel()
        self.status_count.setObjectName("statusCount")
        self.status_count.setWordWrap(True)
        left = QFormLayout()
        left.addRow("Status column", self.status_column)
        left.addRow(self.status_count)
        status_layout.addLayout(left, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("Values that mean “opted out”"))
        right.addWidget(self.status_values)
        status_layout.addLayout(right, 1)
        role_layout.addWidget(self.status_box, len(FileRole), 0, 1, 2)

        # --- identifiers ----------------------------------------------------------------
        self.email_list = self._column_list(mapping.email_columns)
        self.phone_list = self._column_list(mapping.phone_columns)
        self.push_list = self._column_list(mapping.push_columns)
        self.push_list.setToolTip("Push tokens are kept exactly as written (only surrounding "
                                  "spaces are ignored); Dynamic Yield takes them")
        for widget in (self.email_list, self.phone_list, self.push_list):
            widget.setMinimumHeight(150)
        lists = QHBoxLayout()
        for title, widget in (("Email columns", self.email_list),
                              ("Phone columns", self.phone_list),
                              ("Push token columns", self.push_list)):
            box = QVBoxLayout()
            box.addWidget(QLabel(f"<b>{title}</b>"))
            box.addWidget(widget)
            lists.addLayout(box)

        # --- phones by country ----------------------------------------------------------
        self.country_column = QComboBox()
        self.country_column.setObjectName("countryColumn")
        self.country_column.addItem("None: every phone in the region below", _NO_COLUMN)
        for index in range(table.column_count):
            self.country_column.addItem(table.column_label(index), index)
        self.region = RegionPicker(mapping.region)
        self.country_note = QLabel()
        self.country_note.setWordWrap(True)
        self.country_note.setObjectName("countryNote")
        phones = QFormLayout()
        phones.addRow("Sheet", self.sheet)
        phones.addRow("Country of each row", self.country_column)
        phones.addRow("Phone region", self.region)
        phones.addRow(self.country_note)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addWidget(notes)
        layout.addWidget(roles)
        layout.addLayout(phones)
        layout.addLayout(lists, 1)
        layout.addWidget(self.buttons)

        self.role_buttons[mapping.role].setChecked(True)
        if mapping.status_column is not None:
            self.status_column.setCurrentIndex(self.status_column.findData(mapping.status_column))
        self._fill_values(mapping.opted_out_values)
        if mapping.country_column is not None:
            self.country_column.setCurrentIndex(
                self.country_column.findData(mapping.country_column))
        self.role_group.idToggled.connect(self._role_toggled)
        self.status_column.currentIndexChanged.connect(self._status_column_changed)
        self.status_values.itemChanged.connect(self._update)
        self.country_column.currentIndexChanged.connect(self._update)
        self.region.regionChanged.connect(self._update)
        for widget in (self.email_list, self.phone_list, self.push_list):
            widget.itemChanged.connect(self._update)
        self._update()

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

    # --- status values ----------------------------------------------------------------------

    def role(self) -> FileRole:
        for role, button in self.role_buttons.items():
            if button.isChecked():
                return role
        return FileRole.OPTOUTS

    def set_role(self, role: FileRole) -> None:
        self.role_buttons[role].setChecked(True)

    def _status_index(self) -> int | None:
        value = self.status_column.currentData()
        return None if value in (None, _NO_COLUMN) else int(value)

    def _fill_values(self, chosen: tuple[str, ...] | None = None) -> None:
        """The status column's values with their row counts; `chosen` ticked (None: the ones
        that read as opted out)."""
        index = self._status_index()
        self.status_values.blockSignals(True)
        self.status_values.clear()
        if index is not None:
            values = distinct_values(self.table, index)
            if chosen is None:
                chosen = opted_out_values_for(self.table.headers[index], values)
            wanted = {status_key(value) for value in chosen}
            for value in values:
                item = QListWidgetItem(f"{value.text or '(empty)'} — {counted(value.rows, 'row')}")
                item.setData(Qt.ItemDataRole.UserRole, value.text)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if status_key(value.text) in wanted
                                   else Qt.CheckState.Unchecked)
                self.status_values.addItem(item)
        self.status_values.blockSignals(False)

    def opted_out_values(self) -> tuple[str, ...]:
        return tuple(
            str(self.status_values.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.status_values.count())
            if self.status_values.item(i).checkState() == Qt.CheckState.Checked)

    def set_value_checked(self, text: str, checked: bool) -> None:
        for i in range(self.status_values.count()):
            item = self.status_values.item(i)
            if status_key(item.data(Qt.ItemDataRole.UserRole)) == status_key(text):
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    @Slot(int, bool)
    def _role_toggled(self, _id: int, _checked: bool) -> None:
        self._update()

    @Slot()
    def _status_column_changed(self, *_args: object) -> None:
        self._fill_values()
        self._update()

    # --- state ------------------------------------------------------------------------------

    def opted_out_rows(self) -> int:
        index = self._status_index()
        if index is None:
            return 0
        wanted = {status_key(value) for value in self.opted_out_values()}
        return sum(status_key(row[index]) in wanted for row in self.table.rows)

    def problem(self) -> str:
        if not (self._checked(self.email_list) or self._checked(self.phone_list)
                or self._checked(self.push_list)):
            return "Tick at least one email, phone or push token column."
        if self.role() is FileRole.CONTACTS:
            if self._status_index() is None:
                return "Choose the status column."
            if not self.opted_out_values():
                return "Tick the status values that mean “opted out”."
        return ""

    @Slot()
    def _update(self, *_args: object) -> None:
        contacts = self.role() is FileRole.CONTACTS
        self.status_box.setVisible(contacts)
        rows = len(self.table.rows)
        if contacts:
            opted = self.opted_out_rows()
            self.status_count.setText(
                f"{number(opted)} of {counted(rows, 'row')} are opted out: only those can be "
                "submitted.")
        country = self.country_column.currentData()
        if country not in (None, _NO_COLUMN):
            unknown = unknown_countries(self.table, self.choice().mapping)
            missing = sum(value.rows for value in unknown)
            self.country_note.setText(
                "Each row's phones are read in its own country"
                + (f"; {counted(missing, 'row')} name no country the desk knows ("
                   + ", ".join(f"“{v.text}”" for v in unknown[:3])
                   + ") and use the phone region." if missing else "."))
        else:
            self.country_note.setText("Phones written without +CC are read in this region.")
        problem = self.problem()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not problem)
        ok.setToolTip(problem)

    def choice(self) -> MappingChoice:
        sheet = self.sheet.currentText() if self.table.sheet_names else None
        role = self.role()
        status = self._status_index() if role is FileRole.CONTACTS else None
        country = self.country_column.currentData()
        mapping = replace(
            self.proposal,
            email_columns=self._checked(self.email_list),
            phone_columns=self._checked(self.phone_list),
            push_columns=self._checked(self.push_list),
            region=self.region.region(),
            role=role,
            status_column=status,
            opted_out_values=self.opted_out_values() if status is not None else (),
            country_column=None if country in (None, _NO_COLUMN) else int(country),
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
