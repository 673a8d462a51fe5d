"""The Opt-outs page driven like a user: fetch from the sandbox, see rows and the chart,
search, sort, copy, export, cancel a slow fetch, and a wrong key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from optout_desk.ui.save_paths import SaveDialog

pytestmark = pytest.mark.usefixtures("sandbox_connection")


def fetch_and_wait(page: Any, qtbot: Any) -> None:
    qtbot.mouseClick(page.fetch_button, Qt.MouseButton.LeftButton)
    assert page.fetching
    qtbot.waitUntil(lambda: not page.fetching, timeout=30_000)
    qtbot.waitUntil(lambda: page._load_task is None, timeout=10_000)


def test_fetch_shows_the_rows_the_count_and_the_chart(optouts_page: Any, qtbot: Any,
                                                      sandbox: Any, main_window: Any) -> None:
    page = optouts_page
    assert page.connection.currentText() == "sbx"
    assert page.model.total_rows == 0
    # The cached list loads in the background when the page is shown.
    qtbot.waitUntil(lambda: "No opt-outs cached yet" in page.table.count_label.text(),
                    timeout=10_000)
    fetch_and_wait(page, qtbot)
    expected = len(sandbox.state.optouts())
    assert page.model.total_rows == expected
    assert page.table.count_label.text().startswith(f"{expected:,} opt-outs · last synced 20")
    assert int(page.chart.counts.counts.sum()) == expected
    assert main_window.message_bar.level == "success"
    assert f"{expected:,} in the list" in main_window.message_bar.text.text()
    emails = {r["EmailAddress"] for r in sandbox.state.optouts() if r.get("EmailAddress")}
    column = page.model.columns.index("Email")
    shown = {page.model.data(page.model.index(r, column)) for r in range(page.model.rowCount())}
    assert emails <= shown


def test_search_filters_as_you_type_and_sorting_works(optouts_page: Any, qtbot: Any) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    email_column = page.model.columns.index("Email")
    some_email = next(v for v in (page.model.data(page.model.index(r, email_column))
                                  for r in range(page.model.rowCount())) if v)
    page.table.focus_search()
    qtbot.keyClicks(page.table.search, some_email[:-4].upper())
    qtbot.waitUntil(lambda: page.model.filter_text != "", timeout=5000)
    assert 1 <= page.model.rowCount() < page.model.total_rows
    assert " of " in page.table.count_label.text()
    page.table.search.clear()
    qtbot.waitUntil(lambda: page.model.rowCount() == page.model.total_rows, timeout=5000)
    page.table.view.sortByColumn(email_column, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not page.model.busy, timeout=5000)
    emails = [page.model.data(page.model.index(r, email_column))
              for r in range(page.model.rowCount())]
    assert emails == sorted(emails, key=str.lower, reverse=True)


def test_copy_puts_selected_rows_with_a_header_on_the_clipboard(optouts_page: Any,
                                                                 qtbot: Any) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    page.table.view.selectRow(0)
    page.table.view.setFocus()
    qtbot.keyClick(page.table.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    lines = QGuiApplication.clipboard().text().splitlines()
    assert lines[0].split("\t")[:3] == ["Opted out", "Email", "Phone"]  # as shown: local
    assert len(lines) == 2


def test_export_writes_the_shown_rows(optouts_page: Any, qtbot: Any, tmp_path: Path,
                                      monkeypatch: Any) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    page.model.set_filter_text("example")
    shown = page.model.rowCount()
    assert 0 < shown
    target = tmp_path / "shown.xlsx"
    monkeypatch.setattr(SaveDialog, "ask", classmethod(lambda cls, *args: target))
    # Ctrl+E works while the search box has the focus (a line edit takes it as "end").
    page.table.search.setFocus()
    with qtbot.waitSignal(page.table.exported, timeout=20_000):
        qtbot.keyClick(page.table.search, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    book = openpyxl.load_workbook(target)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    first = book.worksheets[0]["A2"]
    book.close()
    assert rows[0][:2] == ("Opted out (UTC)", "Email")  # readable headers, UTC said
    assert first.is_date and first.number_format == "yyyy-mm-dd hh:mm:ss"
    assert not any(str(row[8]).find("OptoutSourceId") >= 0 for row in rows[1:])
    assert len(rows) - 1 == shown


def test_cancelling_a_slow_fetch_leaves_the_old_list(optouts_page: Any, qtbot: Any,
                                                     sandbox: Any, main_window: Any) -> None:
    page = optouts_page
    fetch_and_wait(page, qtbot)
    before = page.model.total_rows
    sandbox.state.add_optouts(40)
    sandbox.state.set_latency(150)
    page.full.setChecked(True)
    qtbot.mouseClick(page.fetch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "pages" in page.panel.status.text(), timeout=20_000)
    assert page.panel.cancel_button.isVisible()
    qtbot.mouseClick(page.panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.fetching, timeout=20_000)
    qtbot.waitUntil(lambda: page._load_task is None, timeout=10_000)
    assert "cancelled" in main_window.message_bar.text.text()
    assert page.model.total_rows == before
    assert not page.panel.isVisible() and page.panel.status.text() == ""  # no stale line
    assert page.fetch_button.isEnabled()


def test_f5_fetches(optouts_page: Any, qtbot: Any, main_window: Any) -> None:
    page = optouts_page
    main_window.activateWindow()
    qtbot.keyClick(main_window, Qt.Key.Key_F5)
    assert page.fetching
    qtbot.waitUntil(lambda: not page.fetching, timeout=30_000)
    qtbot.waitUntil(lambda: page.model.total_rows > 0, timeout=10_000)


@pytest.mark.usefixtures("wrong_key_connection")
def test_a_wrong_key_shows_the_operator_message(optouts_page: Any, qtbot: Any,
                                                main_window: Any) -> None:
    page = optouts_page
    qtbot.waitUntil(lambda: page.connection.count() == 2, timeout=10_000)
    page.connection.setCurrentText("wrong")
    fetch_and_wait(page, qtbot)
    assert main_window.message_bar.isVisible()
    assert main_window.message_bar.level == "warning"
    assert "key" in main_window.message_bar.text.text().lower()
    assert page.model.total_rows == 0
