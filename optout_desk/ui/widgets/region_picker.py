"""RegionPicker: the one phone-region control, a list of countries with search, shared by
Reconcile (the mapping step) and Submit.

    picker = RegionPicker(default="BE")
    picker.region()            # "BE"
    picker.set_region("GB")
    picker.regionChanged.connect(...)

Each entry reads "Belgium (BE) +32". Typing filters the list by any part of the name (in the
operators' languages: "België", "Deutschland"), the code or the calling code; Enter or a click
chooses. A typed text that names no region leaves the last valid choice in place, so the
control always holds a region phonenumbers knows.
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

from optout_desk.files import countries


def region_label(region: str) -> str:
    import phonenumbers

    return (f"{countries.name_of(region)} ({region}) "
            f"+{phonenumbers.country_code_for_region(region)}")


class RegionPicker(QComboBox):
    """A searchable list of phone regions; `region()` is always a valid two-letter code."""

    regionChanged = Signal(str)

    def __init__(self, default: str = "US", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("regionPicker")
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMaxVisibleItems(15)
        self.setMinimumContentsLength(22)
        self.setToolTip("Country of phone numbers written without +CC (type to search)")
        regions = sorted(countries.REGIONS, key=countries.name_of)
        for region in regions:
            self.addItem(region_label(region), region)
        completer = QCompleter(self)
        completer.setModel(self._labels_model(regions))
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        # The text overload (the completion chosen), not the model-index one.
        completer.activated[str].connect(self._completed)  # type: ignore[index]
        self.setCompleter(completer)
        self._current = ""
        edit = self.lineEdit()
        assert edit is not None  # an editable combo box has one
        self._edit = edit
        self.currentIndexChanged.connect(self._index_changed)
        edit.editingFinished.connect(self._edited)
        self.set_region(default)

    def _labels_model(self, regions: list[str]) -> QStringListModel:
        # The completer matches anywhere in its lines: each holds the label, then a few of the
        # names in other languages, so "België" or "Deutschland" finds its country.
        return QStringListModel([f"{region_label(r)}  ·  {' '.join(countries.NAMES[r][1:4])}"
                                 for r in regions], self)

    # --- value ------------------------------------------------------------------------------

    def region(self) -> str:
        return self._current

    def set_region(self, region: str) -> bool:
        """Choose `region` (a code, a name, or a label); False if it names none."""
        code = self._code_for(region)
        if code is None:
            return False
        index = self.findData(code)
        self.setCurrentIndex(index)
        self._index_changed(index)
        return True

    def _code_for(self, text: str) -> str | None:
        text = text.strip()
        if not text:
            return None
        head = text.split("  ·  ", 1)[0]
        if head.endswith(")") or "(" in head:
            inside = head[head.rfind("(") + 1:head.find(")", head.rfind("("))]
            if inside.upper() in countries.REGIONS:
                return inside.upper()
        return countries.region_of(head)

    @Slot(int)
    def _index_changed(self, index: int) -> None:
        code = str(self.itemData(index) or "")
        if code and code != self._current:
            self._current = code
            self.regionChanged.emit(code)

    @Slot(str)
    def _completed(self, text: str) -> None:
        self.set_region(text)

    @Slot()
    def _edited(self) -> None:
        # A search that names a region chooses it; anything else shows the choice again.
        if not self.set_region(self._edit.text()):
            self.setCurrentIndex(self.findData(self._current))
            self._edit.setText(self.itemText(self.currentIndex()))
