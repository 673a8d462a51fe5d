"""myKaarma and Dynamic Yield in the desktop app: the connection dialog shows what each system
declares (a required department UUID, its settings), the Submit page offers "Check these
identifiers" for a look-up destination, and Reconcile compares a spreadsheet with myKaarma's
answers, saying Missing from CRM cannot be known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
from PySide6.QtCore import Qt

from optout_desk import secrets
from optout_desk.core.identifiers import normalise_email
from optout_desk.core.plan import PlanInput
from optout_desk.store import connections
from optout_desk.store.connections import ConnectionProfile
from optout_desk.store.db import connect
from optout_desk.ui.dialogs.connection import ConnectionDialog, available_systems


def add_mykaarma(box: Any, name: str = "mk") -> None:
    db = connect()
    try:
        connections.add(db, ConnectionProfile(name, "mykaarma", box.base_url, "", settings={
            "department_uuid": box.department_uuid}))
    finally:
        db.close()
    secrets.store_secret(name, "USERNAME", box.username, session_only=True)
    secrets.store_secret(name, "PASSWORD", box.password, session_only=True)


def test_the_dialog_shows_each_systems_declared_fields(qtbot: Any) -> None:
    dialog = ConnectionDialog(None, available_systems())
    qtbot.addWidget(dialog)
    labels = {dialog.system.itemData(i) for i in range(dialog.system.count())}
    assert labels == {"checkmarket", "mykaarma", "dynamic-yield", "inbox-relay"}
    dialog.system.setCurrentIndex(dialog.system.findData("mykaarma"))
    assert set(dialog.secret_fields) == {"USERNAME", "PASSWORD"}
    uuid = dialog.setting_fields["department_uuid"]
    assert uuid.placeholderText() == "required" and uuid.parent() is not dialog.more_body
    assert dialog.setting_fields["entries_per_request"].placeholderText() == "default: 1"
    assert "check given identifiers and take opt-outs" in dialog.abilities.text()
    dialog.name.setText("mk")
    dialog.secret_fields["USERNAME"].setText("u")
    dialog.secret_fields["PASSWORD"].setText("p")
    dialog.region.setCurrentIndex(dialog.region.findData("custom"))
    dialog.custom_url.setText("http://127.0.0.1:1/communications/")
    assert dialog.problem() == "Enter the Department UUID."
    uuid.setText("dept-1")
    dialog.setting_fields["entries_per_request"].setText("zero")
    assert "Values per request" in dialog.problem() and "give a number" in dialog.problem()
    dialog.setting_fields["entries_per_request"].setText("25")
    assert dialog.problem() == ""
    assert dialog.value().settings["department_uuid"] == "dept-1"
    dialog.system.setCurrentIndex(dialog.system.findData("dynamic-yield"))
    assert set(dialog.secret_fields) == {"API_KEY"} and "department_uuid" not in (
        dialog.setting_fields)
    assert [dialog.region.itemData(i) for i in range(dialog.region.count())] == [
        "us", "eu", "custom"]


def test_check_these_identifiers_asks_mykaarma_then_leaves_out_what_it_holds(
        qtbot: Any, main_window: Any, mykaarma_sandbox: Any) -> None:
    box = mykaarma_sandbox
    add_mykaarma(box)
    held = sorted(box.state.opted_out_values(box.department_uuid, "EMAIL"))[:2]
    inputs = [PlanInput(normalise_email(e)) for e in [*held, "fresh@example.com"]]
    main_window.send_to_submit(inputs, "test")
    page = main_window.current_page()
    qtbot.waitUntil(lambda: page.matrix_preview is not None and page.plan_task is None,
                    timeout=10_000)
    assert page.check_button.isVisible()
    assert page.matrix.item(0, 1).text() == "3"  # nothing known yet
    page.matrix.set_ticked("mk", True)
    qtbot.mouseClick(page.check_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Checked: mk: 2 of 3 already opted out" in
                    main_window.message_bar.text.text(), timeout=10_000)
    qtbot.waitUntil(lambda: page.plan_task is None and page.matrix.item(0, 1).text() == "1",
                    timeout=10_000)
    assert "2 already on the destination" in page.matrix.item(0, 6).text()


def test_reconcile_against_mykaarma_says_missing_cannot_be_known(
        qtbot: Any, main_window: Any, mykaarma_sandbox: Any, tmp_path: Path) -> None:
    from optout_desk.ui.dialogs.mapping import MappingChoice, MappingDialog

    box = mykaarma_sandbox
    add_mykaarma(box)
    held = sorted(box.state.opted_out_values(box.department_uuid, "EMAIL"))[:2]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Email"])
    for index, email in enumerate([*held, "fresh@example.com"]):
        sheet.append([f"P{index}", email])
    crm = tmp_path / "crm.xlsx"
    book.save(crm)
    MappingDialog.ask = classmethod(  # type: ignore[method-assign, assignment]
        lambda cls, parent, table, mapping, *args, **kwargs: MappingChoice(None, mapping))
    page = main_window.show_page("reconcile")
    page._load_connections()
    qtbot.waitUntil(lambda: page.against.findData("mk") >= 0, timeout=10_000)
    page.against.setCurrentIndex(page.against.findData("mk"))
    page.open_file(crm)
    qtbot.waitUntil(lambda: page.run is not None, timeout=20_000)
    titles = [page.tabs.tabText(i) for i in range(page.tabs.count())]
    assert "To submit (1)" in titles and "Already in sync (2)" in titles
    assert "Missing from CRM (—)" in titles
    assert "cannot be known" in page.status.text()


def test_the_mapping_step_marks_a_column_as_push_tokens(qtbot: Any, tmp_path: Path) -> None:
    from optout_desk.files.mapping import propose_mapping
    from optout_desk.files.spreadsheet import read_table
    from optout_desk.ui.dialogs.mapping import MappingDialog
    from optout_desk.workflows.importing import plan_inputs

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Email", "Device"])
    sheet.append(["a@example.com", " fcm:AbC "])
    path = tmp_path / "devices.xlsx"
    book.save(path)
    table = read_table(path)
    mapping = propose_mapping(table)
    assert mapping.push_columns == []  # never guessed from content
    dialog = MappingDialog(table, mapping, None)
    qtbot.addWidget(dialog)
    dialog.push_list.item(1).setCheckState(Qt.CheckState.Checked)
    chosen = dialog.choice().mapping
    assert chosen.push_columns == [1]
    inputs = plan_inputs(table, chosen)
    assert [(i.identifier.kind.value, i.identifier.key) for i in inputs] == [
        ("email", "a@example.com"), ("push_token", "fcm:AbC")]
