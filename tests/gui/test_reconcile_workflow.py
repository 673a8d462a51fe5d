"""The Reconcile page as an operator uses it (issue 13): what the file is, phones by country,
rows versus identifiers, "against" never beside the wrong result, accepted suggestions that
change the counts, a corrupt file that keeps the previous result, the Explain pane and phone
search in any format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from PySide6.QtCore import Qt

from optout_desk.core.reconcile import FileRole
from optout_desk.store import history
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
    write_xlsx(folder / "contacts.xlsx", [
        ["Name", "Email", "Mobile", "Country", "Newsletter"],
        ["Ann", "ann@example.com", "0470 12 34 56", "Belgium", "Unsubscribed"],
        ["Ben", "ben@example.com", None, "BE", "Subscribed"],
        ["Cleo", "cleo@example.com", "07700 900123", "United Kingdom", "Unsubscribed"],
        ["Dirk", "dirk@example.com", None, "BE", "Subscribed"],
        ["Elke", "elke.x@gmial.com", None, "Deutschland", "Unsubscribed"],
    ])
    write_xlsx(folder / "list.xlsx", [
        ["Email", "Phone"], ["ann@example.com", None], ["dirk@example.com", None],
        ["elkex@gmail.com", None], [None, "+447700900123"],
    ])
    write_xlsx(folder / "other-list.xlsx", [["Email"], ["ben@example.com"]])
    return folder


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The mapping dialog is built for real; `adjust(dialog)` may change it before OK."""
    from optout_desk.ui.dialogs.mapping import MappingDialog

    state: dict[str, Any] = {"adjust": None, "seen": []}

    def ask(cls: Any, parent: Any, table: Any, mapping: Any) -> Any:
        dialog = MappingDialog(table, mapping, parent)
        state["seen"].append({"role": dialog.role(), "values": dialog.opted_out_values(),
                              "country": dialog.country_column.currentText()})
        if state["adjust"] is not None:
            state["adjust"](dialog)
        choice = dialog.choice()
        dialog.deleteLater()
        return choice

    monkeypatch.setattr(MappingDialog, "ask", classmethod(ask))
    return state


@pytest.fixture
def page(main_window: Any, dialogs: dict[str, Any]) -> Any:
    return main_window.show_page("reconcile")


def open_and_wait(page: Any, qtbot: Any, path: Path) -> None:
    page.open_file(path)
    qtbot.waitUntil(lambda: not page.busy and page.run is not None
                    and page.run.table.source == path, timeout=20_000)


def test_a_contact_list_reconciles_into_the_right_buckets(
    page: Any, qtbot: Any, files: Path, dialogs: dict[str, Any]
) -> None:
    page.set_against_file(files / "list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    proposal = dialogs["seen"][0]
    assert proposal["role"] is FileRole.CONTACTS  # the Newsletter column was recognised
    assert proposal["values"] == ("Unsubscribed",)
    assert proposal["country"] == "D (Country)"
    assert page.tab_titles() == [
        "To submit (1)", "Missing from CRM (2)", "Already in sync (2)", "Subscribed (2)",
        "Invalid (0)", "Duplicates (0)", "Suggestions (1)",
    ]
    # Cleo's UK number was read as British and matched the platform's +44 opt-out.
    in_sync = page.tables["in_sync"].model
    name = in_sync.columns.index("c0")
    assert sorted(in_sync.row_values(r)[name] for r in range(in_sync.total_rows)) == [
        "Ann", "Cleo"]
    missing = page.tables["missing_from_crm"].model.row_values(0)
    assert missing[1] == "dirk@example.com"
    assert "as subscribed (row 5, status 'Subscribed')" in missing[-1]
    assert "(a contact list)" in page.status.text()
    assert "of which 1 the CRM holds as subscribed" in page.status.text()


def test_rows_and_identifiers_and_accepting_a_suggestion_changes_the_counts(
    page: Any, qtbot: Any, files: Path, dialogs: dict[str, Any], main_window: Any
) -> None:
    dialogs["adjust"] = lambda d: d.set_role(FileRole.OPTOUTS)  # every row an opt-out
    page.set_against_file(files / "other-list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    status = page.status.text()
    assert "To submit: 4 rows · 6 identifiers (4 emails, 2 phones)." in status
    assert page.submit_button.text() == "Send 4 rows to Submit"
    page.set_against_file(files / "list.xlsx")  # compares again, see the next test
    qtbot.waitUntil(lambda: not page.busy and page.compared_against == str(
        files / "list.xlsx"), timeout=20_000)
    assert page.tab_titles()[0] == "To submit (2)"
    assert "2 rows · 2 identifiers (2 emails)" in page.status.text()
    suggestions = page.tables["suggestions"]
    suggestions.view.selectRow(0)
    page.accept_button.click()
    assert page.tab_titles()[0] == "To submit (1)"
    assert "1 row · 1 identifier (1 email) (1 accepted suggestion left out)" in (
        page.status.text())
    assert page.submit_button.text() == "Send 1 row to Submit"
    assert "1 identifier left out of what goes to Submit (now 1)" in (
        main_window.message_bar.text.text())
    page.reject_button.click()
    assert page.tab_titles()[0] == "To submit (2)"


def test_changing_against_compares_again_never_a_result_under_the_old_name(
    page: Any, qtbot: Any, files: Path, dialogs: dict[str, Any]
) -> None:
    dialogs["adjust"] = lambda d: d.set_role(FileRole.OPTOUTS)
    page.set_against_file(files / "list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    assert "list.xlsx" in page.status.text()
    page.set_against_file(files / "other-list.xlsx")
    # At once: no result under the new name until the new comparison is done.
    assert page.run is None or page.compared_against == str(files / "other-list.xlsx")
    qtbot.waitUntil(lambda: not page.busy and page.run is not None, timeout=20_000)
    assert page.compared_against == str(files / "other-list.xlsx")
    assert "other-list.xlsx" in page.status.text()
    assert page.tab_titles()[2] == "Already in sync (1)"  # only ben is on the other list


def test_a_corrupt_file_keeps_the_previous_result_and_says_what_is_wrong(
    page: Any, qtbot: Any, files: Path, main_window: Any
) -> None:
    page.set_against_file(files / "list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    titles = page.tab_titles()
    broken = files / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is a truncated download")
    page.open_file(broken)
    qtbot.waitUntil(lambda: not page.busy and "broken.xlsx" in page.status.text(),
                    timeout=10_000)
    assert page.tab_titles() == titles  # the previous result is still there
    assert page.run is not None and page.run.table.source.name == "contacts.xlsx"
    assert "broken.xlsx could not be opened:" in page.status.text()
    assert "still the one for contacts.xlsx" in page.status.text()
    assert main_window.message_bar.level == "warning"
    db = connect()
    try:
        runs = history.list_runs(db, 10)
    finally:
        db.close()
    assert ("reconcile", "failed", "broken.xlsx") in [
        (r.kind, r.outcome, r.source_file) for r in runs]


def test_explain_pane_and_phone_search_in_any_format(
    page: Any, qtbot: Any, files: Path, dialogs: dict[str, Any]
) -> None:
    dialogs["adjust"] = lambda d: d.set_role(FileRole.OPTOUTS)
    page.set_against_file(files / "other-list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    table = page.tables["to_submit"]
    explain = table.model.columns.index("explain")
    assert table.view.isColumnHidden(explain)  # not squeezed into a column
    table.view.selectRow(0)
    assert table.detail.text().startswith("Not on other-list.xlsx:")
    phones = table.model.columns.index("keys")
    assert table.model.row_values(0)[phones] == "+32470123456"  # how the number was read
    for query in ("+32 470 12 34 56", "0470123456", "0032470123456", "470-12-34"):
        table.search.setText(query)
        qtbot.waitUntil(lambda: table.model.shown_rows == 1, timeout=5_000)
        name = table.model.columns.index("c0")
        assert table.model.row_values(table.model.data_row(0))[name] == "Ann"


def test_a_send_list_is_scrubbed_not_submitted(
    page: Any, qtbot: Any, files: Path, dialogs: dict[str, Any], monkeypatch: Any
) -> None:
    from optout_desk.ui.save_paths import SaveDialog

    dialogs["adjust"] = lambda d: d.set_role(FileRole.SEND_LIST)
    page.set_against_file(files / "list.xlsx")
    open_and_wait(page, qtbot, files / "contacts.xlsx")
    assert page.tab_titles()[:2] == ["Safe to send (2)", "Opted out: remove (3)"]
    assert not page.submit_button.isVisible()
    target = files / "send.xlsx"
    monkeypatch.setattr(SaveDialog, "ask", classmethod(lambda cls, *a: target))
    page.export_button.click()
    qtbot.waitUntil(lambda: target.exists() and not page.busy, timeout=20_000)
    assert openpyxl.load_workbook(target).sheetnames == ["Send list", "Summary"]


def test_mapping_dialog_counts_the_opted_out_rows_as_values_are_ticked(
    qtbot: Any, files: Path
) -> None:
    from optout_desk.files.mapping import propose_mapping
    from optout_desk.files.spreadsheet import read_table
    from optout_desk.ui.dialogs.mapping import MappingDialog

    table = read_table(files / "contacts.xlsx")
    dialog = MappingDialog(table, propose_mapping(table, "BE"))
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert dialog.status_count.text().startswith("3 of 5 rows are opted out")
    dialog.set_value_checked("Unsubscribed", False)
    assert not ok.isEnabled() and "Tick the status values" in ok.toolTip()
    dialog.set_value_checked("Subscribed", True)
    assert dialog.status_count.text().startswith("2 of 5 rows are opted out")
    assert ok.isEnabled()
    dialog.role_buttons[FileRole.OPTOUTS].click()
    assert not dialog.status_box.isVisible()
    assert dialog.choice().mapping.status_column is None
    assert "own country" in dialog.country_note.text()
    dialog.country_column.setCurrentIndex(0)
    assert dialog.choice().mapping.country_column is None
    dialog.region.set_region("GB")
    assert dialog.choice().mapping.region == "GB"
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
