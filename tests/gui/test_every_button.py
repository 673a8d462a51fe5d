"""Every button on every page (but Submit, which has its own tests), clicked like an operator
would, with results on screen: nothing may raise or open the error dialog.

This is the test that would have caught Submit's "Export receipt…" crash: a clicked(bool)
signal connected to a slot whose first parameter is a path handed it `False`. The dialogs the
buttons open are answered "cancel" through their classmethods, so each button's own code runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QToolButton

from optout_desk.core.records import OptOutRecord
from optout_desk.store import cache, connections, history
from optout_desk.store.db import connect

PAGES = ("connections", "optouts", "reconcile", "history")


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every dialog a button can open, answered "cancel"; records what was asked."""
    from optout_desk.ui.dialogs.connection import ConnectionDialog
    from optout_desk.ui.dialogs.mapping import MappingDialog
    from optout_desk.ui.pages.connections import ConnectionsPage
    from optout_desk.ui.pages.reconcile import ReconcilePage
    from optout_desk.ui.save_paths import SaveDialog

    asked: list[str] = []

    def answer(name: str, value: Any = None) -> Any:
        def ask(cls: Any, *args: Any, **kwargs: Any) -> Any:
            asked.append(name)
            return value

        return classmethod(ask)

    monkeypatch.setattr(SaveDialog, "ask", answer("save"))
    monkeypatch.setattr(ReconcilePage, "ask_open_path", answer("open"))
    monkeypatch.setattr(ConnectionDialog, "ask", answer("connection"))
    monkeypatch.setattr(ConnectionsPage, "confirm_remove", answer("remove", False))

    def accept(cls: Any, parent: Any, table: Any, mapping: Any) -> Any:
        dialog = MappingDialog(table, mapping, parent)
        choice = dialog.choice()
        dialog.deleteLater()
        return choice

    monkeypatch.setattr(MappingDialog, "ask", classmethod(accept))
    return asked


@pytest.fixture
def with_data(tmp_path: Path, main_window: Any, qtbot: Any) -> Path:
    """A connection with a cached list, a run in the history, and a compared spreadsheet. The
    connection has no keys: Fetch and Test fail before any request (nothing leaves the
    machine) and say so in the message bar."""
    db = connect()
    try:
        profile = connections.add(db, connections.ConnectionProfile(
            name="acme", system="checkmarket",
            base_url="https://api-eu.agileresearch.medallia.com/"))
        assert profile.id is not None
        cache.apply_fetch(db, profile.id, "", [
            OptOutRecord("2024-01-02T10:00:00.0000000Z", email="a@example.com", contact_id=1),
            OptOutRecord("2024-01-03T10:00:00.0000000Z", email="bx@gmail.com", contact_id=2),
        ], replace=True, synced_at="2024-01-05T00:00:00Z")
        # A run with a receipt file: a path parameter handed `False` fails on it.
        receipt = tmp_path / "receipt.csv"
        receipt.write_text("identifier\na@example.com\n", encoding="utf-8")
        history.record_run(db, kind="fetch", connection="acme", source_file=None,
                           source_sha256=None, counts={"fetched": 1}, outcome="ok",
                           receipt_path=str(receipt))
    finally:
        db.close()
    sheet = tmp_path / "crm.xlsx"
    workbook = openpyxl.Workbook()
    active = workbook.active
    assert active is not None
    for row in (["Email"], ["a@example.com"], ["b@example.com"], ["b.x@gmial.com"]):
        active.append(row)
    workbook.save(sheet)
    main_window.changes.connectionsChanged.emit()
    return sheet


def buttons_of(page: Any) -> list[QAbstractButton]:
    return [b for b in page.findChildren(QAbstractButton)
            if b.isVisibleTo(page) and b.isEnabled() and b.text()]


def test_every_button_on_every_page(main_window: Any, qtbot: Any, answered: list[str],
                                    with_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[BaseException] = []
    monkeypatch.setattr(main_window, "show_error",
                        lambda exc, title="": errors.append(exc))
    reconcile = main_window.show_page("reconcile")
    qtbot.waitUntil(lambda: reconcile.against.findData("acme") >= 0, timeout=10_000)
    reconcile.against.setCurrentIndex(reconcile.against.findData("acme"))
    reconcile.open_file(with_data)
    qtbot.waitUntil(lambda: reconcile.run is not None and not reconcile.busy, timeout=20_000)
    clicked: dict[str, list[str]] = {}
    for key in PAGES:
        page = main_window.show_page(key)
        qtbot.wait(50)
        if key == "connections":
            qtbot.waitUntil(lambda p=page: bool(p.rows), timeout=10_000)
            page.select("acme")
        if key == "optouts":
            qtbot.waitUntil(lambda p=page: p.model.total_rows > 0, timeout=10_000)
            page.table.view.selectRow(0)
        if key == "history":
            qtbot.waitUntil(lambda p=page: p.model.rowCount() > 0, timeout=10_000)
            page.table.view.selectRow(0)
        def show_suggestions(page: Any = page, key: str = key) -> None:
            """Before each click: a row selected, as an operator would have (a click may
            have reloaded the table)."""
            if key == "reconcile" and "suggestions" in page.tables:
                page.tabs.setCurrentWidget(page.tables["suggestions"])
                page.tables["suggestions"].view.selectRow(0)
            if key == "connections":
                page.select("acme")
            if key in ("optouts", "history"):
                qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=10_000)
                runs = getattr(page, "runs", [])
                page.table.view.selectRow(next(
                    (i for i, run in enumerate(runs) if run.receipt_path), 0))

        show_suggestions()
        names = clicked.setdefault(key, [])
        # By text: a click may rebuild part of the page (Compare remakes the tabs' buttons).
        for text in [b.text() for b in buttons_of(page)]:
            button = next((b for b in buttons_of(page) if b.text() == text), None)
            if button is None or (key == "reconcile" and button is reconcile.submit_button):
                continue  # gone, or leaves the page (clicked last, below)
            names.append(text)
            if isinstance(button, QToolButton) and button.menu() is not None:
                button.click()  # the main action, not the menu
            else:
                qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
            qtbot.wait(30)
            from optout_desk.ui import tasks

            qtbot.waitUntil(lambda: not [t for t in tasks.running_tasks()
                                         if t.name not in ("index for search",)],
                            timeout=20_000)
            main_window.show_page(key)
            show_suggestions()
    assert errors == [], errors
    assert "Export receipt…" in clicked["history"] and "Refresh" in clicked["history"]
    assert {"Add…", "Edit…", "Remove", "Test"} <= set(clicked["connections"])
    assert {"Fetch", "Copy", "Export…"} <= set(clicked["optouts"])
    assert {"Open spreadsheet…", "Compare", "Export result…", "Accept selected",
            "Reject selected"} <= set(clicked["reconcile"])
    assert {"save", "open", "connection", "remove"} <= set(answered)
    reconcile = main_window.show_page("reconcile")
    qtbot.waitUntil(lambda: reconcile.run is not None and not reconcile.busy, timeout=20_000)
    assert reconcile.submit_button.isEnabled()
    qtbot.mouseClick(reconcile.submit_button, Qt.MouseButton.LeftButton)
    assert main_window.current_key == "submit"
    assert errors == [], errors
