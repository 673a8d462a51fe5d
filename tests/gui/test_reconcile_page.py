"""The Reconcile page driven like a user: open a real xlsx, map, compare, read tabs, export,
accept a suggestion, send to Submit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from optout_desk.core.records import OptOutRecord
from optout_desk.store import cache, connections
from optout_desk.store.db import connect


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    write_xlsx(folder / "crm.xlsx", [
        ["Name", "Email", "Phone"],
        ["Alice", "Alice@Example.com", "0470 12 34 56"],
        ["Bob", "bob@example.com", None],
        ["Carl", "nope", None],
        ["Alice again", "alice@example.com", None],
        ["Dora", "dora.x@gmial.com", None],
    ])
    write_xlsx(folder / "list.xlsx", [
        ["Email"], ["alice@example.com"], ["dorax@gmail.com"], ["zed@example.com"],
    ])
    return folder


@pytest.fixture
def page(main_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from optout_desk.ui.dialogs.mapping import MappingChoice, MappingDialog
    from optout_desk.ui.pages.reconcile import ReconcilePage

    def accept_proposal(cls: Any, parent: Any, table: Any, mapping: Any) -> MappingChoice:
        dialog = MappingDialog(table, mapping, parent)  # built for real, then accepted as is
        choice = dialog.choice()
        dialog.deleteLater()
        return choice

    monkeypatch.setattr(MappingDialog, "ask", classmethod(accept_proposal))
    page = main_window.show_page("reconcile")
    assert isinstance(page, ReconcilePage)
    return page


def open_via_button(page: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(type(page), "ask_open_path", classmethod(lambda cls, parent: path))
    page.open_button.click()
    qtbot.waitUntil(lambda: page.tabs.count() > 0 and not page.busy, timeout=20_000)


def test_open_compare_export_and_send(
    page: Any, main_window: Any, qtbot: Any, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page.set_against_file(files / "list.xlsx")
    open_via_button(page, qtbot, monkeypatch, files / "crm.xlsx")
    assert page.tab_titles() == [
        "To submit (2)", "Missing from CRM (2)", "Already in sync (1)", "Invalid (1)",
        "Duplicates (1)", "Suggestions (1)",
    ]
    in_sync = page.tables["in_sync"]
    row = in_sync.model.row_values(0)
    assert "email, case and spaces ignored" in row[-1]  # the Explain column
    duplicates = page.tables["duplicate"].model.row_values(0)
    assert "Duplicate of row 2" in duplicates[-1]
    # Search narrows the table.
    to_submit = page.tables["to_submit"]
    to_submit.search.setText("bob")
    qtbot.waitUntil(lambda: to_submit.model.shown_rows == 1, timeout=5_000)

    # Export through the patched file dialog.
    target = files / "result.xlsx"
    from optout_desk.ui.save_paths import SaveDialog

    monkeypatch.setattr(SaveDialog, "ask", classmethod(lambda cls, *args: target))
    page.export_button.click()
    qtbot.waitUntil(lambda: target.exists() and not page.busy, timeout=20_000)
    assert openpyxl.load_workbook(target).sheetnames[0] == "Summary"

    # Accepting the Gmail/typo suggestion keeps Dora out of what goes to Submit.
    assert {i.identifier.key for i in page.submit_inputs()} == {
        "bob@example.com", "dora.x@gmial.com"}
    page.decide_suggestions(True, [0])
    assert page.tables["suggestions"].model.row_values(0)[-1] == "accepted"
    assert {i.identifier.key for i in page.submit_inputs()} == {"bob@example.com"}
    page.submit_button.click()
    qtbot.waitUntil(lambda: main_window.current_page() is not page, timeout=5_000)
    submit = main_window.current_page()
    assert [i.identifier.key for i in submit.inputs] == ["bob@example.com"]
    assert submit.inputs[0].row_number == 3
    assert submit.inputs[0].source_file == "crm.xlsx"


def test_against_a_connection_and_recent_files(
    page: Any, main_window: Any, qtbot: Any, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = connect()
    try:
        profile = connections.add(db, connections.ConnectionProfile(
            name="acme", system="checkmarket",
            base_url="https://api-eu.agileresearch.medallia.com/"))
        assert profile.id is not None
        cache.apply_fetch(db, profile.id, "", [
            OptOutRecord("2024-01-02T10:00:00.0000000Z", email="bob@example.com", contact_id=1),
        ], replace=True, synced_at="2024-01-05T00:00:00Z")
    finally:
        db.close()
    main_window.changes.connectionsChanged.emit()  # connections are listed off the GUI thread
    qtbot.waitUntil(lambda: page.against.findData("acme") >= 0, timeout=5_000)
    page.against.setCurrentIndex(page.against.findData("acme"))
    open_via_button(page, qtbot, monkeypatch, files / "crm.xlsx")
    assert page.tab_titles()[:3] == ["To submit (2)", "Missing from CRM (0)",
                                     "Already in sync (1)"]
    assert "acme" in page.status.text()
    assert page.recent_files()[0] == str(files / "crm.xlsx")
    assert [a.text() for a in page.recent_menu.actions()] == [str(files / "crm.xlsx")]


def test_drop_on_the_window_opens_the_page(
    page: Any, main_window: Any, qtbot: Any, files: Path
) -> None:
    page.set_against_file(files / "list.xlsx")
    main_window.show_page("connections")
    assert main_window.open_file(files / "crm.xlsx")
    assert main_window.current_page() is page
    qtbot.waitUntil(lambda: page.tabs.count() > 0 and not page.busy, timeout=20_000)
    assert page.tab_titles()[0] == "To submit (2)"


def test_bad_file_is_a_message_not_a_crash(
    page: Any, qtbot: Any, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = files / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not a workbook")
    monkeypatch.setattr(type(page), "ask_open_path", classmethod(lambda cls, parent: broken))
    page.open_button.click()
    qtbot.waitUntil(lambda: not page.busy and "broken.xlsx" in page.status.text(),
                    timeout=10_000)
    assert page.tabs.count() == 0
    assert not page.export_button.isEnabled()


@pytest.mark.parametrize("far", ["XFD1048576", "BZ1048576"])
def test_a_workbook_that_aborted_the_app_is_a_message(
    page: Any, qtbot: Any, files: Path, monkeypatch: pytest.MonkeyPatch, main_window: Any,
    far: str,
) -> None:
    """A 2 KB xlsx with cells at A1 and XFD1048576 made python-calamine abort the whole
    process (the GUI closed); now the page says why it will not read it, and the app goes on
    to read the next file."""
    from tests.fixtures.hostile import xlsx_far_cell

    hostile = xlsx_far_cell(files / "far.xlsx", far)
    monkeypatch.setattr(type(page), "ask_open_path", classmethod(lambda cls, parent: hostile))
    page.open_button.click()
    qtbot.waitUntil(lambda: not page.busy and "far.xlsx" in page.status.text(),
                    timeout=20_000)
    assert f"has a cell at {far}" in page.status.text()
    bar = main_window.message_bar
    assert bar.level == "warning" and f"has a cell at {far}" in bar.text.text()
    assert page.tabs.count() == 0
    page.set_against_file(files / "list.xlsx")
    open_via_button(page, qtbot, monkeypatch, files / "crm.xlsx")  # the app still works
    assert page.tab_titles()[0] == "To submit (2)"


def test_mapping_dialog_proposes_and_previews(qtbot: Any, files: Path) -> None:
    from optout_desk.files.mapping import detect_columns
    from optout_desk.files.spreadsheet import read_table
    from optout_desk.ui.dialogs.mapping import MappingDialog

    table = read_table(files / "crm.xlsx")
    dialog = MappingDialog(table, detect_columns(table, "BE"))
    qtbot.addWidget(dialog)
    assert "Alice@Example.com" in dialog.email_list.item(1).text()
    choice = dialog.choice()
    assert choice.mapping.email_columns == [1] and choice.mapping.region == "BE"
    for i in range(dialog.email_list.count()):
        dialog.email_list.item(i).setCheckState(dialog.email_list.item(i).checkState().Unchecked)
    for i in range(dialog.phone_list.count()):
        dialog.phone_list.item(i).setCheckState(dialog.phone_list.item(i).checkState().Unchecked)
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
