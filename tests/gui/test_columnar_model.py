"""ColumnarTableModel: qtmodeltester empty/filled/sorted/filtered, sort and filter semantics,
the off-thread path and stale-result dropping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt

from optout_desk.core.records import RECORD_COLUMNS
from optout_desk.ui.models.columnar import RAW_ROLE, ROW_ID_ROLE, ColumnarTableModel
from tests.fixtures.gui import sample_columns

SEARCH = ("Email", "Phone", "FirstName", "LastName")


def make_model(rows: int = 6) -> ColumnarTableModel:
    model = ColumnarTableModel(RECORD_COLUMNS, search_columns=SEARCH)
    model.set_columns(sample_columns(rows))
    return model


def column_values(model: ColumnarTableModel, name: str, role: int = RAW_ROLE) -> list[Any]:
    column = model.columns.index(name)
    return [model.data(model.index(r, column), role) for r in range(model.rowCount())]


def test_empty_model_passes_the_model_tester(qtmodeltester: Any) -> None:
    model = ColumnarTableModel(RECORD_COLUMNS, search_columns=SEARCH)
    qtmodeltester.check(model)
    assert model.rowCount() == 0
    assert model.columnCount() == len(RECORD_COLUMNS)


def test_filled_sorted_and_filtered_models_pass_the_model_tester(qtmodeltester: Any) -> None:
    model = make_model(40)
    qtmodeltester.check(model)
    model.sort(model.columns.index("FirstName"), Qt.SortOrder.DescendingOrder)
    qtmodeltester.check(model)
    model.set_filter_text("user0001")
    qtmodeltester.check(model)
    model.set_columns({})
    qtmodeltester.check(model)


def test_sorting_text_ignores_case_and_puts_empty_first() -> None:
    model = make_model(12)
    model.sort(model.columns.index("FirstName"))
    names = column_values(model, "FirstName")
    assert names[:2] == [None, None]
    rest = [n for n in names if n is not None]
    assert rest == sorted(rest, key=str.lower)
    model.sort(model.columns.index("FirstName"), Qt.SortOrder.DescendingOrder)
    assert column_values(model, "FirstName") == names[::-1]


def test_sorting_numbers_with_gaps_is_numeric() -> None:
    model = make_model(30)
    model.sort(model.columns.index("ContactId"))
    ids = column_values(model, "ContactId")
    present = [i for i in ids if i is not None]
    assert ids[: ids.count(None)] == [None] * ids.count(None)
    assert present == sorted(present)
    assert model.data(model.index(0, 0), Qt.ItemDataRole.DisplayRole) is not None


def test_filter_matches_email_phone_and_names_case_insensitively() -> None:
    model = make_model(30)
    model.set_filter_text("USER0001")
    emails = column_values(model, "Email")
    assert emails and all("user0001" in e for e in emails)
    model.set_filter_text("+32470120003")
    assert column_values(model, "Phone") == ["+32470120003"]
    model.set_filter_text("éloïse")
    assert set(column_values(model, "FirstName")) == {"Éloïse"}
    model.set_filter_text("nobody-has-this")
    assert model.rowCount() == 0
    assert model.total_rows == 30
    model.set_filter_text("")
    assert model.rowCount() == 30


def test_sort_applies_within_a_filter_and_row_ids_follow() -> None:
    model = make_model(30)
    model.set_filter_text("name")
    model.sort(model.columns.index("Email"), Qt.SortOrder.DescendingOrder)
    emails = column_values(model, "Email")
    assert emails == sorted(emails, reverse=True)
    ids = column_values(model, "Email", ROW_ID_ROLE)
    source = sample_columns(30)["Email"]
    assert [source[i] for i in ids] == emails


def test_selection_survives_sorting(qtbot: Any) -> None:
    from PySide6.QtCore import QItemSelectionModel

    model = make_model(20)
    selection = QItemSelectionModel(model)
    selection.select(model.index(3, 0), QItemSelectionModel.SelectionFlag.Select
                     | QItemSelectionModel.SelectionFlag.Rows)
    chosen = model.data(model.index(3, 0), ROW_ID_ROLE)
    model.sort(model.columns.index("LastName"))
    rows = {i.row() for i in selection.selectedIndexes()}
    assert len(rows) == 1
    assert model.data(model.index(rows.pop(), 0), ROW_ID_ROLE) == chosen


def test_large_data_sorts_and_filters_off_the_gui_thread(qtbot: Any, qtmodeltester: Any) -> None:
    model = make_model(2000)
    model.async_threshold = 100
    with qtbot.waitSignal(model.indexApplied, timeout=10_000):
        model.sort(model.columns.index("Email"))
    assert not model.busy
    emails = column_values(model, "Email")
    assert emails == sorted(emails)
    with qtbot.waitSignal(model.indexApplied, timeout=10_000):
        model.set_filter_text("user0012")
    assert model.rowCount() == sum(1 for e in emails if "user0012" in e)
    qtmodeltester.check(model)


def test_a_stale_filter_result_is_dropped(qtbot: Any) -> None:
    model = make_model(3000)
    model.async_threshold = 100
    applied: list[int] = []
    model.indexApplied.connect(lambda: applied.append(model.rowCount()))
    model.set_filter_text("user00")  # superseded before it can be applied
    with qtbot.waitSignal(model.indexApplied, timeout=10_000):
        model.set_filter_text("user00123")
    qtbot.waitUntil(lambda: not model.busy)
    from optout_desk.ui import tasks

    tasks.cancel_all_and_wait(5000)
    assert applied == [1]
    assert column_values(model, "Email") == ["user00123@example.com"]


def test_numpy_columns_are_shown_as_python_values() -> None:
    model = ColumnarTableModel(("n", "s"))
    model.set_columns({"n": np.array([3, 1, 2]), "s": ["c", "a", "b"]})
    model.sort(0)
    assert column_values(model, "n") == [1, 2, 3]
    assert type(model.data(model.index(0, 0), RAW_ROLE)) is int
    assert column_values(model, "s") == ["a", "b", "c"]


def test_columns_of_different_lengths_are_refused() -> None:
    model = ColumnarTableModel(("a", "b"))
    with pytest.raises(ValueError):
        model.set_columns({"a": [1, 2], "b": [1]})


def test_text_sort_is_case_blind_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from optout_desk.ui.models import columnar

    monkeypatch.setattr(columnar, "_CHUNK", 3)
    values = ["B", "C", "A", "b", "a", "c", "ZZ", "T1", "x"]
    order = columnar.ColumnIndexer({"v": values}, ())._argsort(values)
    assert [values[i].lower() for i in order] == sorted(v.lower() for v in values)
    stamps = ["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "2025-12-31T00:00:00Z"] * 3
    order = columnar.ColumnIndexer({"v": stamps}, ())._argsort(stamps)
    assert [stamps[i] for i in order] == sorted(stamps)


def test_the_same_sort_asked_twice_in_flight_is_computed_once(
    qtbot: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """QTableView.sortByColumn asks the model to sort twice; a million-row sort must not run
    twice side by side."""
    from PySide6.QtWidgets import QTableView

    from optout_desk.ui.models import columnar

    model = make_model(3000)
    model.async_threshold = 100
    computed: list[str | None] = []
    original = columnar.ColumnIndexer.compute

    def counting(self: Any, column: str | None, *args: Any, **kwargs: Any) -> Any:
        computed.append(column)
        return original(self, column, *args, **kwargs)

    monkeypatch.setattr(columnar.ColumnIndexer, "compute", counting)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSortingEnabled(True)
    with qtbot.waitSignal(model.indexApplied, timeout=10_000):
        view.sortByColumn(model.columns.index("Email"), Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not model.busy)
    assert computed.count("Email") == 1
    emails = column_values(model, "Email")
    assert emails == sorted(emails, reverse=True)
